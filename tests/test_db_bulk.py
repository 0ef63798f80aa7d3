"""The binary COPY writer (`catalogue.db.bulk.copy_columns`): the rows it writes read back
exactly as the rows the text COPY path (`copy_rows`, one Python value at a time) writes from
the same values — NULL for NaN, None and masked entries, rows in order whatever their NULL
pattern — and bad integers are refused as the server would refuse them."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sqlalchemy import Engine, text

from catalogue.db.bulk import FLOAT8, INT4, TEXT, binary_copy_data, copy_columns, copy_rows
from catalogue.db.runs import recorded_run
from tests.catalogue_builders import register_toy


def _runs(engine: Engine, n: int) -> list[int]:
    model, _ = register_toy(engine)
    ids = []
    for i in range(n):
        with recorded_run(engine, "score", {"i": i}, model_id=model.id) as run:
            run.complete(lambda conn, run_id: None)
            ids.append(run.id)
    return ids


def _plain(v: object) -> object:
    return "nan" if isinstance(v, float) and math.isnan(v) else v


def _read(engine: Engine, table: str, columns: str, run_id: int) -> list[tuple]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(f"SELECT {columns} FROM {table} WHERE run_id = :r ORDER BY unit_id, rank"),
            {"r": run_id},
        )
        return [tuple(_plain(v) for v in r) for r in rows]


def _literal_rows(columns: dict[str, object], n: int) -> list[list[object]]:
    """The rows as Python values, NULL (None) for NaN, None and masked entries."""
    out = []
    for i in range(n):
        row = []
        for value in columns.values():
            if np.isscalar(value) or value is None:
                v = value
            elif isinstance(value, np.ma.MaskedArray):
                v = None if value.mask is not np.ma.nomask and value.mask[i] else value.data[i]
            else:
                v = value[i]
            if isinstance(v, np.generic):
                v = v.item()
            if isinstance(v, float) and math.isnan(v):
                v = None
            row.append(v)
        out.append(row)
    return out


def test_binary_copy_reads_back_as_the_text_copy_of_the_same_values(engine: Engine) -> None:
    binary_run, text_run = _runs(engine, 2)
    with engine.connect() as conn:
        units = conn.execute(text("SELECT id FROM unit ORDER BY id")).scalars().all()
    n = 7
    unit_ids = np.repeat(np.asarray(units[:4]), 2)[:n]
    rank = np.tile([1, 2], 4)[:n]
    keys: list[object] = ["a.png", None, "", "été/ünï.png", "b" * 300, None, "x"]
    columns: dict[str, object] = {
        "unit_id": unit_ids,
        "rank": rank.astype(np.float64),  # whole floats are integers
        "image_index": np.ma.masked_array(np.arange(n) * 1000, mask=[0] * n),
        "image_key": keys,
        "class_index": [3, 0, -2, 2**31 - 1, -(2**31), 5, 6],
        "activation": np.array([1.5, 0.1, -0.0, 1e300, -1e-300, np.inf, 2.0]),
    }
    with engine.begin() as conn:
        copy_columns(conn, "unit_top_image", {"run_id": binary_run, **columns})
        literal = {**columns, "rank": rank.tolist()}  # the text path wants integers
        copy_rows(
            conn,
            "unit_top_image",
            ["run_id", *columns],
            _literal_rows({"run_id": text_run, **literal}, n),
        )
    names = "unit_id, rank, image_index, image_key, class_index, activation"
    got = _read(engine, "unit_top_image", names, binary_run)
    assert got == _read(engine, "unit_top_image", names, text_run)
    assert [r[3] for r in got] == keys
    assert [r[5] for r in got][:2] == [1.5, 0.1]


def test_rows_keep_their_order_whatever_their_null_columns(engine: Engine) -> None:
    """Fixed-width rows are laid out per NULL pattern and gathered back: a row's values
    must stay together and in order (unit_metrics: integers, floats, booleans)."""
    binary_run, text_run = _runs(engine, 2)
    with engine.connect() as conn:
        units = conn.execute(text("SELECT id FROM unit ORDER BY id")).scalars().all()
    rng = np.random.default_rng(3)
    n = len(units)
    precision = rng.random(n)
    precision[rng.random(n) < 0.4] = np.nan
    ccmas = np.ma.masked_array(rng.random(n), mask=rng.random(n) < 0.3)
    cls = np.ma.masked_array(np.arange(n), mask=rng.random(n) < 0.5)
    columns: dict[str, object] = {
        "unit_id": np.asarray(units),
        "n_images": 100,
        "precision": precision,
        "precision_class": cls,
        "ccmas": ccmas,
        "localist": rng.random(n) < 0.5,
        "constant": [None if i % 3 == 0 else bool(i % 2) for i in range(n)],
    }
    with engine.begin() as conn:
        assert copy_columns(conn, "unit_metrics", {"run_id": binary_run, **columns}) == n
        copy_rows(
            conn,
            "unit_metrics",
            ["run_id", *columns],
            _literal_rows({"run_id": text_run, **columns}, n),
        )
    names = ", ".join(columns)
    with engine.connect() as conn:
        rows = {
            r: [
                tuple(x)
                for x in conn.execute(
                    text(f"SELECT {names} FROM unit_metrics WHERE run_id = :r ORDER BY unit_id"),
                    {"r": r},
                )
            ]
            for r in (binary_run, text_run)
        }
    assert rows[binary_run] == rows[text_run]
    assert rows[binary_run][0][-1] is None and rows[binary_run][1][-1] is True
    assert len({tuple(v is None for v in r) for r in rows[binary_run]}) > 2  # several patterns


def test_bad_integers_are_refused_and_write_nothing(engine: Engine) -> None:
    (run_id,) = _runs(engine, 1)
    with engine.connect() as conn:
        unit = conn.execute(text("SELECT min(id) FROM unit")).scalar_one()
    base = {"run_id": run_id, "unit_id": [unit], "image_index": [1], "class_index": [0]}
    for rank, message in (([1.5], "whole numbers"), ([2**31], "out of range"), (["1"], "cannot")):
        with pytest.raises(ValueError, match=message), engine.begin() as conn:
            copy_columns(conn, "unit_top_image", {**base, "rank": rank})
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM unit_top_image")).scalar_one() == 0


def test_many_columns_and_empty_input(engine: Engine) -> None:
    """Rows of 70 columns (NULL patterns keyed by packed bits), read back by the server."""
    k, n = 70, 50
    rng = np.random.default_rng(0)
    values = rng.normal(size=(n, k))
    values[rng.random((n, k)) < 0.2] = np.nan
    columns = [(values[:, j], np.zeros(n, dtype=bool)) for j in range(k)]
    names = [f"c{j}" for j in range(k)]
    data = binary_copy_data(columns, [FLOAT8] * k, names)
    assert binary_copy_data([(np.array([]), np.array([], bool))], [INT4], ["x"]) == b""
    assert binary_copy_data([(np.array([]), np.array([], bool))], [TEXT], ["x"]) == b""
    with engine.begin() as conn:
        ddl = ", ".join(f"{c} double precision" for c in names)
        conn.execute(text(f"CREATE TEMP TABLE wide (i serial, {ddl})"))
        raw = conn.connection.driver_connection
        with (
            raw.cursor() as cur,
            cur.copy(f"COPY wide ({', '.join(names)}) FROM STDIN (FORMAT BINARY)") as copy,
        ):
            copy.write(b"PGCOPY\n\xff\r\n\x00" + bytes(8) + data + b"\xff\xff")
        got = conn.execute(text(f"SELECT {', '.join(names)} FROM wide ORDER BY i")).all()
    expected = [[None if math.isnan(v) else v for v in row] for row in values.tolist()]
    assert [list(r) for r in got] == expected
