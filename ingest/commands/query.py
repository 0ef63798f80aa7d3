"""`unitcat query "SQL"`: read-only SQL against the catalogue."""

from __future__ import annotations

import csv
import sys

import typer
from rich.table import Table

from catalogue.db.console import run_readonly
from catalogue.db.engine import get_reader_engine
from catalogue.db.migrate import ensure_readable
from ingest.console import console


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
    as_csv: bool = typer.Option(False, "--csv", help="Write CSV to stdout instead of a table."),
    limit: int = typer.Option(1000, help="Show at most this many rows (0: all)."),
) -> None:
    """Run one read-only SQL statement and print the result; statements that write are refused.

    It runs as the SELECT-only reader role (`unitcat db url --reader`).
    """
    ensure_readable()
    engine = get_reader_engine()
    result = run_readonly(engine, statement, max_rows=limit or None)
    if as_csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(result.columns)
        writer.writerows(["" if v is None else v for v in row] for row in result.rows)
        return
    table = Table(*result.columns, header_style="bold", show_lines=False)
    for row in result.rows:
        table.add_row(*(_cell(v) for v in row))
    console.print(table)
    more = f" (first {limit}; --limit 0 for all)" if result.truncated else ""
    console.print(f"{len(result.rows)} row{'s' if len(result.rows) != 1 else ''}{more}")
