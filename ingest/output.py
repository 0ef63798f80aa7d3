"""Output that fits where it goes: a terminal, a file or a pipe, or another program.

On a terminal a table is rich's, laid out for the terminal's width. Written to a
file or a pipe (`unitcat runs > runs.txt`, the demo's report in a log) rich would
assume 80 columns, cut headers to "lay…" and wrap each row over several lines;
there the same table is drawn at its full width instead, and lines of text are
not wrapped. With `--format csv|tsv|json` a command writes its rows for another
program: CSV as `psql --csv` writes it (`csv_cell`), TSV the same with tabs, JSON
an array of objects with the catalogue's column names (a report of several tables:
one object, a key per table).
"""

from __future__ import annotations

import csv
import json
import math
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import IO, Any, Literal

import typer
from rich.console import Console, RenderableType
from rich.table import Table

from ingest.console import console


class OutputFormat(StrEnum):
    table = "table"
    csv = "csv"
    tsv = "tsv"
    json = "json"


def format_option() -> Any:
    """The `--format` option of a command that prints rows."""
    return typer.Option(
        OutputFormat.table,
        "--format",
        case_sensitive=False,
        help="table (on a terminal as it fits; in a file or pipe at full width), or rows for "
        "another program: csv (as psql --csv), tsv or json.",
    )


def _text(value: object) -> str:
    return "" if value is None else str(value)


@dataclass(frozen=True)
class Column:
    """A column of a command's rows: its key in the rows (and in csv/tsv/json), its header in
    the table, how a value reads in the table (rich markup allowed), and where it shows: in
    both, only in the table (a summary for people) or only in the rows for programs."""

    key: str
    header: str
    text: Callable[[Any], str] = _text
    shown_in: Literal["both", "table", "rows"] = "both"


@dataclass(frozen=True)
class Rows:
    """One table of a command's output."""

    columns: Sequence[Column]
    rows: Sequence[Mapping[str, Any]]
    title: str | None = None

    def table(self) -> Table:
        columns = [c for c in self.columns if c.shown_in != "rows"]
        table = Table(*(c.header for c in columns), title=self.title)
        for row in self.rows:
            table.add_row(*(c.text(row[c.key]) for c in columns))
        return table

    def keys(self) -> list[str]:
        return [c.key for c in self.columns if c.shown_in != "table"]

    def values(self) -> list[list[Any]]:
        return [[row[key] for key in self.keys()] for row in self.rows]

    def records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.keys(), values, strict=True)) for values in self.values()]


def print_table(table: Table, out: Console | None = None) -> None:
    """On a terminal as rich lays it out; in a file or a pipe at the table's full width, so
    that no header or cell is cut or wrapped."""
    out = out or console
    if out.is_terminal:
        out.print(table)
        return
    wide = out.options.update_width(1_000_000)
    width = max(out.measure(table, options=wide).maximum, 20)
    Console(
        file=out.file, width=width, no_color=out.no_color, highlight=False, soft_wrap=False
    ).print(table)


def say(renderable: RenderableType, out: Console | None = None, **kwargs: Any) -> None:
    """A line of text: wrapped to a terminal, left whole in a file or a pipe."""
    out = out or console
    out.print(renderable, soft_wrap=not out.is_terminal, **kwargs)


def write_rows(rows: Rows, fmt: OutputFormat, out: IO[str] | None = None) -> None:
    """`rows` in `fmt`: a table (`print_table`), CSV, TSV or JSON."""
    if fmt is OutputFormat.table:
        print_table(rows.table())
    elif fmt is OutputFormat.json:
        write_json(rows.records(), out)
    else:
        write_csv(rows.keys(), rows.values(), out, tabs=fmt is OutputFormat.tsv)


def write_sections(
    sections: Mapping[str, Rows | object], fmt: OutputFormat, out: IO[str] | None = None
) -> None:
    """A report of several tables and single values for another program. JSON: one object, a
    key per section. CSV/TSV: the single values first as `# name: value` lines, then each
    table after an empty line and a `# name` line."""
    out = out or sys.stdout
    if fmt is OutputFormat.json:
        write_json({k: v.records() if isinstance(v, Rows) else v for k, v in sections.items()}, out)
        return
    tables = {k: v for k, v in sections.items() if isinstance(v, Rows)}
    values = {k: v for k, v in sections.items() if k not in tables}
    for name, value in values.items():
        out.write(f"# {name}: {' '.join(csv_cell(value).split())}\n")
    apart = bool(values)
    for name, rows in tables.items():
        out.write(f"\n# {name}\n" if apart else f"# {name}\n")
        write_csv(rows.keys(), rows.values(), out, tabs=fmt is OutputFormat.tsv)
        apart = True


def write_json(data: object, out: IO[str] | None = None) -> None:
    """JSON with the values as JSON has them: times in ISO 8601, NaN and infinities as null."""
    (out or sys.stdout).write(json.dumps(_plain(data), indent=2, ensure_ascii=False) + "\n")


def _plain(value: object) -> object:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float | Decimal):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, datetime | date):
        return value.isoformat()
    if value is None or isinstance(value, str | int | bool):
        return value
    if hasattr(value, "item"):  # a numpy scalar
        return _plain(value.item())
    return str(value)


def write_csv(
    columns: Sequence[str],
    rows: Sequence[Sequence[object]],
    out: IO[str] | None = None,
    *,
    tabs: bool = False,
) -> None:
    """CSV like `psql --csv`: LF line ends, minimal quoting, values as `csv_cell` (TSV: the
    same with tabs)."""
    writer = csv.writer(out or sys.stdout, lineterminator="\n", delimiter="\t" if tabs else ",")
    writer.writerow(columns)
    writer.writerows([csv_cell(v) for v in row] for row in rows)


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
