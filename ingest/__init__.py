"""The `unitcat` command line: thin Typer commands over the `catalogue` library."""
