"""Bulk writes with PostgreSQL COPY, inside the caller's transaction.

`copy_columns` takes column arrays (what the result writers have) and sends them
as binary COPY built with numpy: each column is converted once, as an array, to
its table column's type in network byte order, and the values are laid out by
offsets into one buffer, so no Python object is made per value. NaN in a float
column and masked or None entries are NULL (SQL aggregates ignore NULL, not
NaN). The column types come from the table in `catalogue.db.schema`; a table or
column it does not know, or a type without a binary layout here (jsonb,
arrays, timestamps), goes through `copy_rows`.

`copy_rows` takes rows of Python values (ratings, AM panels: a few at a time)
and sends text COPY through psycopg, one row at a time.

Measured on the million-unit catalogue of `bench/db.py` (2 cores): the text
path with a Python conversion of every value wrote 14,000-36,000 `unit_metrics`
rows/s depending on load; the binary path spends about 1 µs of numpy per row,
so the server's own COPY (tuple formation, foreign-key checks, indexes) is what
is left.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from psycopg import sql
from sqlalchemy import Boolean, Connection, Float, Integer, SmallInteger, String
from sqlalchemy.types import BigInteger, TypeEngine

from catalogue.db.schema import Base

#: the binary COPY signature, flags and header extension; the trailer
_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
_TRAILER = b"\xff\xff"
#: rows encoded at once (bounds the index arrays numpy builds)
_CHUNK_ROWS = 1 << 13


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


# ---------------------------------------------------------------------- binary COPY


@dataclass(frozen=True)
class BinaryType:
    """How a column type is sent in binary COPY: numpy dtype in network order (None: text)."""

    name: str
    dtype: np.dtype | None

    @property
    def width(self) -> int:
        return 0 if self.dtype is None else self.dtype.itemsize


INT2 = BinaryType("smallint", np.dtype(">i2"))
INT4 = BinaryType("integer", np.dtype(">i4"))
INT8 = BinaryType("bigint", np.dtype(">i8"))
FLOAT8 = BinaryType("double precision", np.dtype(">f8"))
FLOAT4 = BinaryType("real", np.dtype(">f4"))
BOOL = BinaryType("boolean", np.dtype("?"))
TEXT = BinaryType("text", None)


def binary_type(column_type: TypeEngine[Any]) -> BinaryType | None:
    """The binary layout of a schema column type; None when there is none here."""
    if isinstance(column_type, Boolean):
        return BOOL
    if isinstance(column_type, BigInteger):
        return INT8
    if isinstance(column_type, SmallInteger):
        return INT2
    if isinstance(column_type, Integer):
        return INT4
    if isinstance(column_type, Float):  # Double is a Float
        precision = getattr(column_type, "precision", None)
        return FLOAT4 if precision is not None and precision <= 24 else FLOAT8
    if isinstance(column_type, String):  # Text is a String
        return TEXT
    return None


def table_types(table: str, columns: Sequence[str]) -> list[BinaryType] | None:
    """Binary layouts of `table`'s `columns` from the schema; None if any has none."""
    known = Base.metadata.tables.get(table)
    if known is None or any(c not in known.c for c in columns):
        return None
    types = [binary_type(known.c[c].type) for c in columns]
    return None if any(t is None for t in types) else types  # type: ignore[return-value]


def _broadcast(value: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(values, NULL mask) of one column given as an array, a sequence or a scalar."""
    if value is None:
        return np.zeros(n, dtype=np.int64), np.ones(n, dtype=bool)
    if np.isscalar(value):
        return np.full(n, value), np.zeros(n, dtype=bool)
    if isinstance(value, np.ma.MaskedArray):
        return np.ma.getdata(value), np.ma.getmaskarray(value).copy()
    array = np.asarray(value)
    if array.dtype == object:
        null = np.fromiter((v is None for v in array.tolist()), dtype=bool, count=len(array))
        if null.any():
            filled = array.copy()
            filled[null] = 0
            return np.asarray(filled.tolist()), null
        return np.asarray(array.tolist()), null
    return array, np.zeros(len(array), dtype=bool)


def _encode_fixed(values: np.ndarray, null: np.ndarray, kind: BinaryType, name: str) -> np.ndarray:
    """Values as `kind`'s dtype (NaN in a float column is NULL: `null` is updated)."""
    assert kind.dtype is not None
    if kind.dtype.kind == "f":
        out = np.asarray(values, dtype=np.float64)
        null |= np.isnan(out)
        return out.astype(kind.dtype)
    if kind.dtype.kind == "b":
        return np.asarray(values).astype(bool)
    # integers: refuse fractions and values out of range, as the server would
    array = np.asarray(values)
    if array.dtype.kind == "f":
        null |= np.isnan(array)
        live = array[~null]
        if not np.array_equal(live, np.trunc(live)):
            raise ValueError(f"column {name}: {kind.name} values must be whole numbers")
    elif array.dtype.kind not in "iub":
        raise ValueError(f"column {name}: cannot send {array.dtype} as {kind.name}")
    live = array[~null]
    info = np.iinfo(kind.dtype)
    if live.size and (live.min() < info.min or live.max() > info.max):
        raise ValueError(f"column {name}: a value is out of range for {kind.name}")
    return np.where(null, 0, array).astype(kind.dtype)


def _encode_text(values: np.ndarray, null: np.ndarray) -> tuple[list[bytes], np.ndarray]:
    """UTF-8 bytes of each value (b"" where NULL) and their lengths."""
    encoded = [b"" if isnull else str(v).encode() for v, isnull in zip(values, null, strict=True)]
    return encoded, np.fromiter((len(b) for b in encoded), dtype=np.int64, count=len(encoded))


def _row_dtype(types: Sequence[BinaryType], null: np.ndarray) -> np.dtype:
    """The packed layout of a row whose NULL columns are `null`: field count, then per
    column its length word and, unless NULL, its value."""
    fields: list[tuple[str, Any]] = [("n", ">i2")]
    for j, (kind, isnull) in enumerate(zip(types, null.tolist(), strict=True)):
        fields.append((f"w{j}", ">i4"))
        if not isnull:
            fields.append((f"v{j}", kind.dtype))
    return np.dtype(fields)


def _fixed_rows(data: Sequence[np.ndarray], null: np.ndarray, types: Sequence[BinaryType]) -> bytes:
    """Binary COPY tuples of fixed-width columns: rows with the same NULL columns share a
    packed layout, filled a column at a time; rows keep their order."""
    n, k = null.shape
    if k < 64:
        keys = null.astype(np.uint64) @ (np.uint64(1) << np.arange(k, dtype=np.uint64))
        if (keys == keys[0]).all():
            patterns, which = keys[:1], np.zeros(n, dtype=np.int64)
        else:
            patterns, which = np.unique(keys, return_inverse=True)
    else:
        patterns, which = np.unique(np.packbits(null, axis=1), axis=0, return_inverse=True)
    which = which.reshape(-1)
    blocks: list[np.ndarray] = []
    row_size = np.empty(len(patterns), dtype=np.int64)
    for p in range(len(patterns)):
        rows = np.flatnonzero(which == p) if len(patterns) > 1 else slice(None)
        pattern_null = null[rows][0] if len(patterns) > 1 else null[0]
        dtype = _row_dtype(types, pattern_null)
        block = np.empty(n if len(patterns) == 1 else len(rows), dtype=dtype)
        block["n"] = k
        for j, kind in enumerate(types):
            if pattern_null[j]:
                block[f"w{j}"] = -1
            else:
                block[f"w{j}"] = kind.width
                block[f"v{j}"] = data[j][rows]
        blocks.append(block.view(np.uint8).reshape(-1))
        row_size[p] = dtype.itemsize
    if len(patterns) == 1:
        return blocks[0].tobytes()
    # gather each row's bytes from its pattern's block back into the original order
    grouped = np.concatenate(blocks)
    order = np.argsort(which, kind="stable")
    sizes = row_size[which]
    grouped_start = np.empty(n, dtype=np.int64)
    grouped_start[order] = np.concatenate([[0], np.cumsum(sizes[order])[:-1]])
    out_start = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    index = np.repeat(grouped_start - out_start, sizes) + np.arange(int(sizes.sum()))
    return grouped[index].tobytes()


def _scattered_rows(
    data: Sequence[Any],
    lengths: Sequence[np.ndarray | None],
    null: np.ndarray,
    types: Sequence[BinaryType],
) -> bytes:
    """Binary COPY tuples with text columns: every field placed at its offset."""
    n, k = null.shape
    sizes = np.empty((n, k), dtype=np.int64)
    for j, kind in enumerate(types):
        width = lengths[j] if kind.dtype is None else kind.width
        sizes[:, j] = 4 + np.where(null[:, j], 0, width)
    row_size = 2 + sizes.sum(axis=1)
    row_start = np.zeros(n, dtype=np.int64)
    np.cumsum(row_size[:-1], out=row_start[1:])
    field_start = row_start[:, None] + 2 + np.cumsum(sizes, axis=1) - sizes
    buf = np.empty(int(row_size.sum()), dtype=np.uint8)
    buf[row_start[:, None] + np.arange(2)] = np.frombuffer(np.array(k, ">i2").tobytes(), np.uint8)
    for j, kind in enumerate(types):
        starts = field_start[:, j]
        width = lengths[j] if kind.dtype is None else kind.width
        words = np.where(null[:, j], -1, width).astype(">i4")
        buf[starts[:, None] + np.arange(4)] = words.view(np.uint8).reshape(n, 4)
        live = ~null[:, j]
        if kind.dtype is None:
            blob = np.frombuffer(b"".join(data[j]), dtype=np.uint8)
            if blob.size:
                counts = lengths[j][live]
                first = np.repeat(starts[live] + 4, counts)
                within = np.arange(blob.size) - np.repeat(np.cumsum(counts) - counts, counts)
                buf[first + within] = blob
        elif live.any():
            cells = np.ascontiguousarray(data[j][live]).view(np.uint8).reshape(-1, kind.width)
            buf[(starts[live] + 4)[:, None] + np.arange(kind.width)] = cells
    return buf.tobytes()


def binary_copy_data(
    columns: Sequence[tuple[np.ndarray, np.ndarray]],
    types: Sequence[BinaryType],
    names: Sequence[str],
) -> bytes:
    """The rows of `columns` ((values, NULL mask) each, of equal length) in PostgreSQL's binary
    COPY tuple format (without signature and trailer), in their order."""
    n = len(columns[0][0])
    null = np.empty((n, len(columns)), dtype=bool)
    data: list[Any] = []
    lengths: list[np.ndarray | None] = []
    for j, ((values, isnull), kind) in enumerate(zip(columns, types, strict=True)):
        null[:, j] = isnull
        if kind.dtype is None:
            encoded, size = _encode_text(values, null[:, j])
            data.append(encoded)
            lengths.append(size)
        else:
            column_null = null[:, j].copy()
            data.append(_encode_fixed(values, column_null, kind, names[j]))
            null[:, j] = column_null
            lengths.append(None)
    if n == 0:
        return b""
    if any(kind.dtype is None for kind in types):
        return _scattered_rows(data, lengths, null, types)
    return _fixed_rows(data, null, types)


def copy_columns(conn: Connection, table: str, columns: Mapping[str, Any]) -> int:
    """COPY column arrays of equal length (numpy arrays, masked arrays, lists with None, or
    scalars broadcast) into `table`, within the transaction of `conn`. NaN, masked entries
    and None are NULL."""
    names = list(columns)
    lengths = {len(v) for v in columns.values() if not np.isscalar(v) and v is not None}
    if not lengths:
        return 0
    if len(lengths) != 1:
        raise ValueError(f"columns for {table} have different lengths: {sorted(lengths)}")
    (n,) = lengths
    types = table_types(table, names)
    if types is None:
        arrays = [
            [columns[c]] * n
            if np.isscalar(columns[c]) or columns[c] is None
            else np.ma.asarray(columns[c]).astype(object).filled(None).tolist()
            if isinstance(columns[c], np.ma.MaskedArray)
            else np.asarray(columns[c]).tolist()
            for c in names
        ]
        return copy_rows(conn, table, names, zip(*arrays, strict=True))
    prepared = [_broadcast(columns[c], n) for c in names]
    raw = conn.connection.driver_connection
    assert raw is not None
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
        sql.Identifier(table), sql.SQL(", ").join(sql.Identifier(c) for c in names)
    )
    with raw.cursor() as cur, cur.copy(statement) as copy:
        copy.write(_SIGNATURE)
        for start in range(0, n, _CHUNK_ROWS):
            part = [
                (v[start : start + _CHUNK_ROWS], m[start : start + _CHUNK_ROWS])
                for v, m in prepared
            ]
            copy.write(binary_copy_data(part, types, names))
        copy.write(_TRAILER)
    return n
