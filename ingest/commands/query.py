"""`unitcat query "SQL"`: read-only SQL against the catalogue."""

from __future__ import annotations

import typer
from rich.table import Table

from catalogue.db.engine import get_reader_engine
from catalogue.db.migrate import ensure_readable
from catalogue.db.readonly import run_readonly
from catalogue.errors import InputError
from ingest.output import OutputFormat, format_option, print_table, say, write_csv, write_json


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def query(
    statement: str = typer.Argument(
        ..., help='One SQL statement, e.g. "SELECT * FROM layer_summary".'
    ),
    as_csv: bool = typer.Option(
        False, "--csv", help="Write CSV to stdout instead of a table (as `psql --csv` does)."
    ),
    limit: int = typer.Option(1000, help="Show at most this many rows (0: all)."),
    fmt: OutputFormat = format_option(),
) -> None:
    """Run one read-only SQL statement and print the result; statements that write are refused.

    It runs as the SELECT-only reader role (`unitcat db url --reader`).
    """
    ensure_readable()
    engine = get_reader_engine()
    result = run_readonly(engine, statement, max_rows=limit or None)
    if as_csv or fmt in (OutputFormat.csv, OutputFormat.tsv):
        write_csv(result.columns, result.rows, tabs=fmt is OutputFormat.tsv)
        return
    if fmt is OutputFormat.json:
        _require_distinct(result.columns)
        write_json([dict(zip(result.columns, row, strict=True)) for row in result.rows])
        return
    table = Table(*result.columns, header_style="bold", show_lines=False)
    for row in result.rows:
        table.add_row(*(_cell(v) for v in row))
    print_table(table)
    more = f" (first {limit}; --limit 0 for all)" if result.truncated else ""
    say(f"{len(result.rows)} row{'s' if len(result.rows) != 1 else ''}{more}")


def _require_distinct(columns: list[str]) -> None:
    """JSON rows are objects keyed by column name: two columns of one name would be one."""
    twice = sorted({c for c in columns if columns.count(c) > 1})
    if twice:
        raise InputError(
            f"the result has more than one column named {', '.join(map(repr, twice))}; give "
            "them names of their own (SELECT … AS name) for --format json, or use --format csv."
        )
