"""One module per command group; `ingest.cli` assembles them."""
