"""`unitcat query "SQL"`: read-only SQL against the catalogue."""

from __future__ import annotations

import csv
import json
import math
import re
import sys
from datetime import datetime

import typer
from rich.table import Table

from catalogue.db.engine import get_reader_engine
from catalogue.db.migrate import ensure_readable
from catalogue.db.readonly import run_readonly
from ingest.console import console


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def csv_cell(value: object) -> str:
    """A value as `psql --csv` writes it: NULL empty, booleans t/f, arrays {a,b}, json text."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, list | tuple):
        return "{" + ",".join(_array_item(v) for v in value) + "}"
    if isinstance(value, dict):
        return json.dumps(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
        text = repr(value)  # the shortest exact digits, as PostgreSQL 12+ writes float8
        return text[:-2] if text.endswith(".0") else text
    if isinstance(value, datetime):  # as PostgreSQL: no trailing zeros of seconds, +00
        text = value.isoformat(sep=" ")
        text = re.sub(r"\.(\d*?)0+(?=[+-]|$)", r".\1", text).replace(".+", "+").rstrip(".")
        text = re.sub(r"\.(?=[+-])", "", text)
        return re.sub(r"([+-]\d\d):00$", r"\1", text)
    return str(value)


def _array_item(value: object) -> str:
    if value is None:
        return "NULL"
    text = csv_cell(value)
    if text == "" or any(c in text for c in ',{}"\\ ') or text.upper() == "NULL":
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return text


def write_csv(columns: list[str], rows: list[tuple[object, ...]], out: object = None) -> None:
    """CSV like `psql --csv`: LF line ends, minimal quoting, values as `csv_cell`."""
    writer = csv.writer(out or sys.stdout, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([csv_cell(v) for v in row] for row in rows)


def query(
    statement: str = typer.Argument(
        ..., help='One SQL statement, e.g. "SELECT * FROM layer_summary".'
    ),
    as_csv: bool = typer.Option(
        False, "--csv", help="Write CSV to stdout instead of a table (as `psql --csv` does)."
    ),
    limit: int = typer.Option(1000, help="Show at most this many rows (0: all)."),
) -> None:
    """Run one read-only SQL statement and print the result; statements that write are refused.

    It runs as the SELECT-only reader role (`unitcat db url --reader`).
    """
    ensure_readable()
    engine = get_reader_engine()
    result = run_readonly(engine, statement, max_rows=limit or None)
    if as_csv:
        write_csv(result.columns, result.rows)
        return
    table = Table(*result.columns, header_style="bold", show_lines=False)
    for row in result.rows:
        table.add_row(*(_cell(v) for v in row))
    console.print(table)
    more = f" (first {limit}; --limit 0 for all)" if result.truncated else ""
    console.print(f"{len(result.rows)} row{'s' if len(result.rows) != 1 else ''}{more}")
