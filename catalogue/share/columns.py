"""Columns of a dump mapped to the importing catalogue's ids, and made ready for COPY."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def distinct(
    columns: Sequence[pa.ChunkedArray | pa.Array],
) -> tuple[np.ndarray, list[tuple[Any, ...]]]:
    """Each row's index into the distinct tuples of `columns`, and those tuples."""
    codes: list[np.ndarray] = []
    values: list[list[Any]] = []
    for column in columns:
        if isinstance(column, pa.ChunkedArray):
            column = column.combine_chunks()
        encoded = pc.dictionary_encode(column)
        indices = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False)
        codes.append(indices.astype(np.int64) + 1)  # 0: null
        values.append([None, *encoded.dictionary.to_pylist()])
    combined = codes[0]
    for code, vals in zip(codes[1:], values[1:], strict=True):
        combined = combined * len(vals) + code
    unique, inverse = np.unique(combined, return_inverse=True)
    tuples = []
    for value in unique.tolist():
        parts = []
        for vals in reversed(values[1:]):
            value, part = divmod(value, len(vals))
            parts.append(vals[part])
        parts.append(values[0][value])
        tuples.append(tuple(reversed(parts)))
    return inverse.reshape(-1), tuples


def mapped(columns: Sequence[Any], lookup: Callable[[tuple[Any, ...]], int | None]) -> np.ndarray:
    """The id of each row's key (-1 where `lookup` gives None)."""
    inverse, tuples = distinct(columns)
    ids = np.array([_id(lookup(t)) for t in tuples], dtype=np.int64)
    return ids[inverse] if len(inverse) else np.zeros(0, dtype=np.int64)


def _id(value: int | None) -> int:
    return -1 if value is None else int(value)


def column_values(column: Any) -> Any:
    """A column for a binary COPY: numbers and booleans as numpy (NaN or None = NULL)."""
    if not isinstance(column, pa.ChunkedArray | pa.Array):
        return column
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if column.null_count and pa.types.is_integer(column.type):
        return np.ma.masked_array(
            pc.fill_null(column, 0).to_numpy(zero_copy_only=False),
            mask=column.is_null().to_numpy(zero_copy_only=False),
        )
    return column.to_numpy(zero_copy_only=False)


def python_list(values: Any, n: int) -> list[Any]:
    if isinstance(values, pa.ChunkedArray | pa.Array):
        return values.to_pylist()
    if isinstance(values, np.ma.MaskedArray):
        return values.astype(object).filled(None).tolist()
    if isinstance(values, np.ndarray):
        return values.tolist()
    if isinstance(values, list):
        return values
    return [values] * n
