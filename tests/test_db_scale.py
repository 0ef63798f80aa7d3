"""The catalogue at a zoo's size: per-statement reference checks, their locks, and detector
counts answered from the partial indexes alone.

`unit_metrics` has no row-level foreign keys; its statement trigger checks a statement's
runs and the id range of its units at once (`lock_references`) and falls back to a
row-by-row check when the range has holes or is much wider than the rows. Either way a
missing run or unit is refused, and the runs and layers of the rows are locked as a
foreign key would lock them (FOR KEY SHARE), so they cannot be deleted before the writer
commits.
"""

from __future__ import annotations

import numpy as np
import pytest
from psycopg.errors import ForeignKeyViolation
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError, OperationalError

from catalogue.db.results import write_unit_metrics
from catalogue.db.runs import recorded_run
from tests.catalogue_builders import neutral_metrics, register_toy


def _run(engine: Engine, model_id: int, key: str = "") -> int:
    with recorded_run(engine, "score", {"n": model_id, "key": key}, model_id=model_id) as run:
        run.complete()
        return run.id


def _answer(engine: Engine, runs: list[int], lo: int | None, hi: int | None, n: int) -> bool:
    with engine.begin() as conn:
        return conn.execute(
            text("SELECT lock_references(CAST(:r AS integer[]), :lo, :hi, :n)"),
            {"r": runs, "lo": lo, "hi": hi, "n": n},
        ).scalar_one()


def test_lock_references_passes_only_dense_ranges_of_existing_units(engine: Engine) -> None:
    model, _ = register_toy(engine, layers=(("conv5", "conv", 4), ("fc6", "fc", 6)))
    run = _run(engine, model.id)
    ids = np.concatenate([model.layer("conv5").unit_ids, model.layer("fc6").unit_ids])
    lo, hi = int(ids.min()), int(ids.max())
    assert hi - lo + 1 == 10  # registration gives a model's units consecutive ids
    assert _answer(engine, [run], lo, hi, 10)
    assert _answer(engine, [run], lo + 2, lo + 4, 3)
    assert _answer(engine, [], None, None, 0)  # no rows: nothing to check
    assert not _answer(engine, [run + 1], lo, hi, 10)  # a missing run
    assert not _answer(engine, [run], lo, hi + 1, 11)  # a unit id past the last
    assert not _answer(engine, [run], lo, hi, 4)  # a range much wider than the rows
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM unit WHERE id = :u"), {"u": lo + 5})
    assert not _answer(engine, [run], lo, hi, 10)  # a hole


@pytest.mark.parametrize("spread", [False, True], ids=["one layer", "two models apart"])
def test_a_writers_rows_lock_their_run_and_layers_until_it_commits(
    engine: Engine, spread: bool
) -> None:
    """One layer's rows (the dense path) and rows of two models with more units between
    them than rows (the row-by-row path) lock the same things."""
    first, _ = register_toy(engine, model_name="first")
    for name in ("between", "and between"):  # 20 ids between the two models' rows
        register_toy(engine, model_name=name)
    last, _ = register_toy(engine, model_name="last")
    unit_ids = first.layer("fc6").unit_ids
    layers = [first.layer("fc6").id]
    if spread:
        unit_ids = np.concatenate([unit_ids, last.layer("conv5").unit_ids])
        layers.append(last.layer("conv5").id)
    run = _run(engine, first.id)
    writer = engine.connect()
    try:
        with writer.begin():
            write_unit_metrics(writer, run, unit_ids, neutral_metrics(len(unit_ids)), n_images=5)
            for table, row in [("run", run), *(("layer", layer) for layer in layers)]:
                with (
                    pytest.raises(OperationalError, match="could not obtain lock"),
                    engine.begin() as other,
                ):
                    other.execute(
                        text(f"SELECT 1 FROM {table} WHERE id = :i FOR UPDATE NOWAIT"),
                        {"i": row},
                    )
            with engine.begin() as other:  # a layer the rows do not use stays free
                other.execute(
                    text("SELECT 1 FROM layer WHERE id = :i FOR UPDATE NOWAIT"),
                    {"i": first.layer("conv5").id},
                )
    finally:
        writer.close()
    with engine.connect() as conn:
        n = conn.execute(text("SELECT count(*) FROM unit_metrics WHERE run_id = :r"), {"r": run})
        assert n.scalar_one() == len(unit_ids)


def test_a_missing_unit_inside_a_range_with_holes_is_refused(engine: Engine) -> None:
    model, _ = register_toy(engine, layers=(("fc6", "fc", 6),))
    run = _run(engine, model.id)
    ids = model.layer("fc6").unit_ids
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM unit WHERE id = :u"), {"u": int(ids[2])})
    missing = rf"Key \(unit_id\)=\({int(ids[2])}\) is not present"
    with pytest.raises(ForeignKeyViolation, match=missing), engine.begin() as conn:
        write_unit_metrics(conn, run, ids, neutral_metrics(6), n_images=5)  # binary COPY
    kept = np.delete(ids, 2)  # the same range without the deleted unit: row by row, accepted
    with engine.begin() as conn:
        write_unit_metrics(conn, run, kept, neutral_metrics(5), n_images=5)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM unit_metrics")).scalar_one() == 5


@pytest.mark.parametrize("table", ["unit_class_stats", "unit_top_image"])
def test_per_unit_result_rows_keep_their_references_per_statement(
    engine: Engine, table: str
) -> None:
    """unit_class_stats and unit_top_image, without row-level foreign keys: a missing run or
    unit is refused with the table's name, deleting a unit, a run or a model deletes rows."""
    model, _ = register_toy(engine)
    run = _run(engine, model.id)
    other = _run(engine, model.id, "another run")
    units = [int(u) for u in model.layer("fc6").unit_ids]
    extra = {"unit_class_stats": "class_index", "unit_top_image": "rank"}[table]
    more = ", image_index, class_index, activation" if table == "unit_top_image" else ""
    values = ", 0, 0, 1.0" if table == "unit_top_image" else ""

    def insert(conn, run_id: int, unit_ids: list[int], k: int = 1) -> None:
        conn.execute(
            text(
                f"INSERT INTO {table} (run_id, unit_id, {extra}{more}) "
                f"SELECT :r, u, :k{values} FROM unnest(CAST(:u AS integer[])) AS u"
            ),
            {"r": run_id, "u": unit_ids, "k": k},
        )

    with engine.begin() as conn:
        for k in (1, 2):
            insert(conn, run, units, k)
        insert(conn, other, units[:2])
    for bad_run, bad_unit, what in ((run + 100, units[0], "run_id"), (run, 10**6, "unit_id")):
        with (
            pytest.raises(IntegrityError, match=rf'"{table}" violates its references(.|\n)*{what}'),
            engine.begin() as conn,
        ):
            insert(conn, bad_run, [bad_unit], 9)

    def count() -> int:
        with engine.connect() as conn:
            return conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()

    assert count() == 14
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM unit WHERE id = :u"), {"u": units[0]})
    assert count() == 11
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM run WHERE id = :r"), {"r": other})
    assert count() == 10
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM model"))
    assert count() == 0


def test_a_detector_count_through_the_catalogue_view_needs_only_its_partial_index(
    engine: Engine,
) -> None:
    """The headline query's count: PostgreSQL drops the view's joins a count does not read,
    but fetches the columns they were on; each criterion's partial index includes them, so
    the count can be an index-only scan (the plan with every other access path disabled)."""
    from catalogue.query.report import HEADLINE_SQL

    model, _ = register_toy(engine, layers=(("fc6", "fc", 6),))
    metrics = neutral_metrics(6)
    metrics["precision"] = np.array([0.8, 0.9, 0.1, 0.8, 0.76, 0.99])
    metrics["false_alarm_rate"] = np.array([0.95, 0.5, 0.99, 0.95, 0.91, 0.97])
    metrics["constant"] = np.array([False, False, False, True, False, False])
    run = _run(engine, model.id)
    with engine.begin() as conn:
        write_unit_metrics(conn, run, model.layer("fc6").unit_ids, metrics, n_images=5)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE unit_metrics"))
    with engine.begin() as conn:
        for setting in ("enable_seqscan", "enable_bitmapscan"):  # left: index (only) scans
            conn.execute(text(f"SET LOCAL {setting} = off"))
        count = f"SELECT count(*) FROM ({HEADLINE_SQL}) AS headline"
        plan = "\n".join(r[0] for r in conn.execute(text(f"EXPLAIN {count}")))
        assert "Index Only Scan using ix_unit_metrics_misleading_detectors" in plan, plan
        assert conn.execute(text(count)).scalar_one() == 3  # units 0, 4 and 5
