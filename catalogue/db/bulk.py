"""Bulk writes with PostgreSQL COPY, inside the caller's transaction."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from psycopg import sql
from sqlalchemy import Connection


def _plain(value: Any) -> Any:
    """numpy scalars → Python; NaN → NULL (SQL aggregates ignore NULL, not NaN)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def copy_rows(
    conn: Connection, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> int:
    """COPY `rows` into `table` within the transaction of the SQLAlchemy connection `conn`."""
    raw = conn.connection.driver_connection
    assert raw is not None
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table), sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    )
    n = 0
    with raw.cursor() as cur, cur.copy(statement) as copy:
        for row in rows:
            copy.write_row([_plain(v) for v in row])
            n += 1
    return n


def copy_columns(conn: Connection, table: str, columns: Mapping[str, Any]) -> int:
    """COPY column arrays of equal length (numpy arrays, lists or scalars broadcast)."""
    names = list(columns)
    lengths = {len(v) for v in columns.values() if not np.isscalar(v) and v is not None}
    if not lengths:
        return 0
    if len(lengths) != 1:
        raise ValueError(f"columns for {table} have different lengths: {sorted(lengths)}")
    (n,) = lengths
    arrays = [
        [columns[c]] * n
        if np.isscalar(columns[c]) or columns[c] is None
        else np.asarray(columns[c]).tolist()
        for c in names
    ]
    return copy_rows(conn, table, names, zip(*arrays, strict=True))
