"""Rows as CSV text the way `psql --csv` writes them, for the CLI (`unitcat query --csv`)
and the UI's downloads alike, so that a file from either says the same: NULL empty,
booleans t/f, integers without a decimal point, floats in their shortest exact digits,
arrays {a,b}. A frame (the UI's results) is written from its cells' Python values:
pandas' NA and NaN are NULL, numpy scalars their Python values, and a float column that
holds only whole numbers and NULLs (an integer column with NULLs, as pandas reads it)
its integers.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:  # pandas only for frames: the CLI's reads import none
    import pandas as pd


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


def csv_text(columns: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """The rows as `write_csv` writes them, as a string."""
    out = io.StringIO()
    write_csv(columns, rows, out)
    return out.getvalue()


def _python(value: object) -> object:
    """A frame cell's Python value (NULL for pandas' missing values)."""
    import pandas as pd

    if value is None or (not isinstance(value, list | tuple | dict) and pd.isna(value)):
        return None
    return value.item() if hasattr(value, "item") else value


def _column(values: pd.Series) -> list[object]:
    import pandas as pd

    cells = [_python(v) for v in values.tolist()]
    if pd.api.types.is_float_dtype(values.dtype) and values.isna().any():
        whole = [c for c in cells if c is not None]
        if whole and all(float(c).is_integer() for c in whole):  # integers with NULLs
            return [None if c is None else int(c) for c in cells]
    return cells


def frame_csv(frame: pd.DataFrame) -> str:
    """A result frame as `write_csv` writes its rows (see the module docstring)."""
    columns = [_column(frame[c]) for c in frame.columns] if len(frame.columns) else []
    rows = list(zip(*columns, strict=True)) if columns else []
    return csv_text([str(c) for c in frame.columns], rows)
