"""The summaries kept by triggers (`catalogue.db.summaries`) and the views that read them.

After every kind of change — scoring, re-scoring, a failed run, dissection (ties across
concepts and runs), ratings inserted, changed and deleted, a renamed layer, run deletion,
constant units — the summary tables equal a slow literal computation from the base tables
written here, `layer_detectors` equals both that computation and the view as the revision
before the summaries defined it (created from its literal SQL beside the current one), and
every view the summaries revision replaced returns the same rows as before.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections import Counter, defaultdict
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Connection, Engine, text

from catalogue.db import migrate
from catalogue.db.identities import register_concepts
from catalogue.db.ratings import RatingRecord, ensure_participants, write_ratings
from catalogue.db.results import write_dissection
from catalogue.db.runs import recorded_run
from catalogue.measures import CORRELATED_BESIDE, CRITERIA, NOT_CONSTANT, UNIT_MEASURES
from tests.catalogue_builders import register_toy, write_scores
from tests.ui_fixtures import UICatalogue

MEDIANS = ("max_informedness", "false_alarm_rate", "recall_at_mi")


def _before_summaries() -> str:
    """The revision before the one whose `unit_catalogue` reads the summaries."""
    ids = migrate.revisions()
    for below, revision in itertools.pairwise(ids):
        if "unit_best_concept" in migrate.revision_views(revision).get("unit_catalogue", ""):
            return below
    raise AssertionError("no revision makes unit_catalogue read unit_best_concept")


def _create_previous_views(engine: Engine) -> dict[str, str]:
    """The views as they were before the summaries, in schema `previous`."""
    views = migrate.revision_views(_before_summaries())
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS previous CASCADE"))
        conn.execute(text("CREATE SCHEMA previous"))
        conn.execute(text("SET LOCAL search_path TO previous, public"))
        for name, select in views.items():
            conn.execute(text(f"CREATE VIEW previous.{name} AS {select}"))
    return views


def _key(value: Any) -> Any:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else round(value, 12)
    return value


def _rows(conn: Connection, relation: str) -> tuple[list[str], list[tuple]]:
    result = conn.execute(text(f"SELECT * FROM {relation}"))
    rows = sorted((tuple(_key(v) for v in r) for r in result), key=repr)
    return list(result.keys()), rows


# ------------------------------------------------------------------ literal computations


def literal_best_concept(conn: Connection) -> dict[int, tuple[int, int, float]]:
    """unit -> (run, concept, IoU) of the highest IoU; ties: newer run, then lower concept."""
    best: dict[int, tuple[int, int, float]] = {}
    for unit, run, concept, iou in conn.execute(
        text("SELECT unit_id, run_id, concept_id, iou FROM dissection")
    ):
        if unit not in best:
            best[unit] = (run, concept, iou)
            continue
        b_run, b_concept, b_iou = best[unit]
        if (iou, run, -concept) > (b_iou, b_run, -b_concept):
            best[unit] = (run, concept, iou)
    return best


def literal_rating_stats(conn: Connection) -> dict[int, tuple[int, int, str | None]]:
    """unit -> (ratings, yes answers, the name given most often with a yes; ties: A-Z)."""
    answers: dict[int, list[bool]] = defaultdict(list)
    names: dict[int, Counter[str]] = defaultdict(Counter)
    for unit, answer, given in conn.execute(text("SELECT unit_id, answer, names FROM rating")):
        answers[unit].append(answer)
        if answer:
            names[unit].update(given)
    out = {}
    for unit, given in answers.items():
        counted = sorted(names[unit].items(), key=lambda kv: (-kv[1], kv[0]))
        out[unit] = (len(given), sum(given), counted[0][0] if counted else None)
    return out


def literal_layer_detectors(conn: Connection) -> set[tuple]:
    """`layer_detectors` from unit_metrics, the identity tables and the literal best IoU,
    with the registry's Python predicates and medians over the non-constant units."""
    best = literal_best_concept(conn)
    measures = ", ".join(f"um.{m.name}" for m in UNIT_MEASURES)
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for row in conn.execute(
        text(
            f"SELECT um.run_id, m.name AS model, l.name AS layer, l.position, um.unit_id, "
            f"{measures} FROM unit_metrics um JOIN unit u ON u.id = um.unit_id "
            "JOIN layer l ON l.id = u.layer_id JOIN model m ON m.id = l.model_id"
        )
    ).mappings():
        record = dict(row)
        record["best_iou"] = best[row["unit_id"]][2] if row["unit_id"] in best else None
        groups[(row["run_id"], row["model"], row["layer"], row["position"])].append(record)
    out = set()
    for key, records in groups.items():
        live = [r for r in records if NOT_CONSTANT.test(r)]
        counts = [sum(1 for r in live if c.test(r) is True) for c in CRITERIA if c.count_column]
        medians = []
        for m in MEDIANS:
            values = [r[m] for r in live if r[m] is not None]
            medians.append(_key(float(statistics.median(values))) if values else None)
        n_constant = sum(1 for r in records if r["constant"] is True)
        out.add((*key, len(records), n_constant, *counts, *medians))
    return out


def check(engine: Engine, what: str) -> None:
    """Every summary against its literal computation; the views against the previous ones."""
    columns = ["run_id", "model", "layer", "layer_position", "n_units", "n_constant"]
    columns += [c.count_column for c in CRITERIA if c.count_column]
    columns += [f"median_{m}" for m in MEDIANS]
    with engine.connect() as conn:
        best = {
            u: (r, c, i) for u, r, c, i in conn.execute(text("SELECT * FROM unit_best_concept"))
        }
        assert best == literal_best_concept(conn), what
        stats = {
            u: (n, y, t) for u, n, y, t in conn.execute(text("SELECT * FROM unit_rating_stats"))
        }
        assert stats == literal_rating_stats(conn), what
        assert conn.execute(text("SELECT count(*) FROM layer_detectors_stale")).scalar_one() == 0
        cached = set(
            conn.execute(text("SELECT DISTINCT run_id FROM layer_detectors_cache")).scalars()
        )
        scored = set(conn.execute(text("SELECT DISTINCT run_id FROM unit_metrics")).scalars())
        assert cached == scored, f"{what}: every scoring run's rows are cached, no others"
        names, now = _rows(conn, "layer_detectors")
        assert names == columns
        assert set(now) == literal_layer_detectors(conn), what
        for view in PREVIOUS:
            before = _rows(conn, f"previous.{view}")
            assert _in_order(before[0], _rows(conn, view)[0]), f"{what}: {view}"
            assert _rows(conn, _as_before(view, before[0])) == before, f"{what}: {view}"


def _in_order(before: list[str], now: list[str]) -> bool:
    """Whether every column a view had is still there, in the order it had (later revisions
    add columns: at the end, or a measure's reason beside the measure)."""
    rest = iter(now)
    return all(name in rest for name in before)


def _as_before(view: str, columns: list[str]) -> str:
    """A view as the revision before the summaries had it: its columns then (later revisions
    add columns, such as the 2-AFC accuracy) and, for `measure_correlations`, the pairs of
    the measures it correlated then (later ones pair the measures with `CORRELATED_BESIDE`)."""
    where = ""
    if "measure_a" in columns:
        beside = ", ".join(f"'{m}'" for m in CORRELATED_BESIDE)
        where = f" WHERE measure_a NOT IN ({beside}) AND measure_b NOT IN ({beside})"
    return f"(SELECT {', '.join(columns)} FROM {view}{where}) AS as_before"


#: the views the summaries revision replaced (filled by the fixture)
PREVIOUS: list[str] = []


@pytest.fixture
def toy(engine: Engine) -> Engine:
    previous = _create_previous_views(engine)
    head = migrate.revision_views()
    PREVIOUS[:] = [name for name in head if previous.get(name) != head[name] and name in previous]
    assert {"unit_catalogue", "layer_detectors"} <= set(PREVIOUS)
    return engine


def _dissect(engine: Engine, model: Any, params: dict, rows: list[tuple]) -> int:
    """A dissection run of conv5: rows (unit, concept number, IoU)."""
    with engine.begin() as conn:
        concepts = register_concepts(
            conn, "toy-probe", [(1, "sky", "scene"), (2, "grass", "material"), (3, "red", "color")]
        )
    layer_rows = [
        {
            "unit": u,
            "concept_number": c,
            "rank": 1,
            "iou": iou,
            "threshold": 0.5,
            "detector": iou > 0.04,
        }
        for u, c, iou in rows
    ]
    with recorded_run(engine, "dissect", params, model_id=model.id) as run:
        run.complete(
            lambda conn, run_id: write_dissection(
                conn, run_id, model.layer("conv5").unit_ids, layer_rows, concepts
            )
        )
        return run.id


def _failing_run(engine: Engine, model: Any) -> None:
    """A scoring run whose writer deletes every score, then fails: all of it rolls back."""

    def fail(conn: Connection, run_id: int) -> None:
        conn.execute(text("DELETE FROM unit_metrics"))
        conn.execute(text("DELETE FROM dissection"))
        raise RuntimeError("scorer failed")

    with recorded_run(engine, "score", {"fails": True}, model_id=model.id) as run:
        run.complete(fail)


def test_summaries_follow_every_change_and_the_views_keep_their_rows(toy: Engine) -> None:
    engine = toy
    model, dataset = register_toy(engine, layers=(("conv5", "conv", 5), ("fc6", "fc", 6)))
    check(engine, "empty")

    conv = {
        "precision": [0.8, 0.9, 0.2, 0.8, 0.76],
        "false_alarm_rate": [0.95, 0.5, 0.99, 0.95, 0.91],
        "ccmas": [0.95, np.nan, 0.1, 0.95, 0.3],
        "max_informedness": [0.4, 0.9, 0.1, 0.0, 0.4],
        "recall_at_mi": [0.5, 0.5, np.nan, 0.0, 0.25],
        "detector_bar": [0.6, 0.1, 0.5, 0.0, 0.7],
        "localist": [True, False, False, False, True],
        "constant": [False, False, False, True, False],  # unit 3 would be misleading
    }
    score_conv = write_scores(engine, model, dataset, "conv5", conv)
    check(engine, "scored conv5")
    fc = {
        "precision": [0.9] * 6,
        "false_alarm_rate": [0.95, 0.2, 0.95, 0.95, 0.1, 0.99],
        "constant": [True] * 6,  # a dead layer: no counts, no medians
    }
    score_fc = write_scores(engine, model, dataset, "fc6", fc)
    check(engine, "scored fc6, all constant")
    write_scores(engine, model, dataset, "fc6", {**fc, "constant": [False] * 6})
    check(engine, "re-scored fc6")
    write_scores(engine, model, dataset, "conv5", conv, params={"layer": "conv5", "all": True})
    check(engine, "a second scoring run of conv5")

    # ties: unit 0 has IoU .05 with concepts 2 and 3 (lower concept wins), then the newer run
    first = _dissect(
        engine, model, {"p": 1}, [(0, 2, 0.05), (0, 3, 0.05), (1, 1, 0.03), (4, 1, 0.0)]
    )
    check(engine, "dissected")
    second = _dissect(engine, model, {"p": 2}, [(0, 1, 0.05), (2, 3, 0.2), (1, 2, 0.01)])
    check(engine, "dissected again: ties go to the newer run")
    _dissect(engine, model, {"p": 2}, [(0, 1, 0.01), (3, 3, 0.5)])
    check(engine, "dissection re-run")
    with pytest.raises(RuntimeError, match="scorer failed"):
        _failing_run(engine, model)
    check(engine, "a failed run changed nothing")

    fc6 = model.layer("fc6").unit_ids
    with engine.begin() as conn:
        people = ensure_participants(conn, [f"p{i}" for i in range(6)])
        ratings = [
            RatingRecord(
                participant_id=pid,
                unit_id=int(fc6[u]),
                panel_id=None,
                answer=(i + u) % 3 != 0,
                estimate="60-80" if (i + u) % 3 != 0 else None,
                names=(["dog", "cat"][: 1 + (i % 2)] if u else ["cat", "dog"][: i % 2 + 1])
                if (i + u) % 3 != 0
                else [],
                source="import",
            )
            for i, pid in enumerate(people.values())
            for u in range(3)
        ]
        write_ratings(conn, ratings)
    check(engine, "rated")
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE rating SET answer = false, estimate = NULL, names = '{}' WHERE id % 4 = 0")
        )
    check(engine, "ratings changed")
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM rating WHERE id % 3 = 0"))
    check(engine, "ratings deleted")

    with engine.begin() as conn:
        conn.execute(text("UPDATE layer SET name = 'conv5b' WHERE name = 'conv5'"))
    check(engine, "layer renamed")
    with engine.begin() as conn:
        conn.execute(text("UPDATE model SET name = 'toy-renamed'"))
    check(engine, "model renamed")

    with engine.begin() as conn:
        conn.execute(text("DELETE FROM run WHERE id = :r"), {"r": second})
    check(engine, "dissection run deleted")
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM run WHERE id IN (:a, :b)"), {"a": score_fc, "b": first})
    check(engine, "a scoring run and a dissection run deleted")
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE unit_metrics SET precision = 0.99 WHERE run_id = :r"), {"r": score_conv}
        )
    check(engine, "measures updated in place")
    _dissect(engine, model, {"p": 3}, [(0, 1, 0.3), (4, 2, 0.06)])
    check(engine, "dissected after the rename")
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE dissection, rating"))
    check(engine, "truncated")
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM model"))
    check(engine, "model deleted")


def test_views_keep_their_rows_on_the_test_catalogue(catalogue: UICatalogue) -> None:
    """The UI test catalogue (scoring with class groups, all-images runs, dissection, AM,
    ratings, a failed run): every replaced view returns what it returned before."""
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    engine = create_engine(catalogue.url, poolclass=NullPool)
    try:
        previous = _create_previous_views(engine)
        head = migrate.revision_views()
        replaced = [n for n in head if n in previous and previous[n] != head[n]]
        with engine.connect() as conn:
            for view in replaced:
                before_names, before = _rows(conn, f"previous.{view}")
                assert _in_order(before_names, _rows(conn, view)[0]), view
                _, now = _rows(conn, _as_before(view, before_names))
                assert now == before, view
                assert now, f"{view} is empty on the test catalogue"
            assert conn.execute(text("SELECT count(*) FROM layer_detectors_cache")).scalar_one()
            # the headline query and one unit read the same through both definitions
            for sql in (
                "SELECT count(*) FROM {v}unit_catalogue WHERE precision > 0.75",
                "SELECT count(*) FROM {v}unit_catalogue WHERE run_id IS NULL",
                "SELECT best_concept, share_yes, rating_consensus FROM {v}unit_catalogue "
                "WHERE unit_id = :u ORDER BY run_id",
            ):
                for unit in (catalogue.unit_ids[("conv5", 2)], catalogue.unit_ids[("fc6", 7)]):
                    params = {"u": unit} if ":u" in sql else {}
                    now = conn.execute(text(sql.format(v="")), params).all()
                    assert now == conn.execute(text(sql.format(v="previous.")), params).all()
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA previous CASCADE"))
    finally:
        engine.dispose()


def _revision_module(pattern: str) -> Any:
    import importlib.util

    path = next(migrate.script_location().glob(f"versions/{pattern}"))
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _object(statement: str) -> str:
    """What a CREATE or DROP statement makes or drops: 'FUNCTION name' or 'TRIGGER name'."""
    words = statement.split("(")[0].split()
    words = [w for w in words if w != "CONSTRAINT"]
    return f"{words[1]} {words[2]}"


def test_the_table_revisions_carry_the_summaries_sql_literally() -> None:
    """The revision that made the summaries, less what a later revision removed and with
    what it replaced or added, holds `catalogue.db.summaries`' SQL as it is (a change there
    is a new revision); DROP drops exactly what CREATE makes."""
    from catalogue.db import summaries

    made = _revision_module("*_summaries_kept_by_triggers.py")
    later = _revision_module("*_references_kept_per_statement.py")
    removed = {_object(s) for s in later.REMOVED}
    folded = {_object(s): s.strip() for s in made.CREATE if _object(s) not in removed}
    folded |= {_object(s): s.strip() for s in (*later.FUNCTIONS, *later.TRIGGERS)}
    assert folded == {_object(s): s.strip() for s in summaries.CREATE}
    replaced = {_object(s) for s in later.PREVIOUS_FUNCTIONS}
    assert replaced <= {_object(s) for s in made.CREATE} & {_object(s) for s in later.FUNCTIONS}
    assert sorted(_object(s) for s in summaries.DROP) == sorted(folded)
    assert [s.strip() for s in made.BACKFILL] == [s.strip() for s in summaries.BACKFILL]


def test_unit_metrics_references_hold_per_statement(engine: Engine) -> None:
    """unit_metrics' references to run and unit, without row-level foreign keys: a missing
    run or unit is refused, deleting a run or a unit (or its model) deletes its rows."""
    from sqlalchemy.exc import IntegrityError

    model, dataset = register_toy(engine)
    run_id = write_scores(engine, model, dataset, "fc6", {})
    write_scores(engine, model, dataset, "conv5", {})
    unit = int(model.layer("fc6").unit_ids[0])
    for bad_run, bad_unit, what in ((run_id + 100, unit, "run_id"), (run_id, 10**6, "unit_id")):
        with pytest.raises(IntegrityError, match=f"Key \\({what}\\)"), engine.begin() as conn:
            conn.execute(
                text("INSERT INTO unit_metrics (run_id, unit_id, n_images) VALUES (:r, :u, 1)"),
                {"r": bad_run, "u": bad_unit},
            )
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(text("UPDATE unit_metrics SET unit_id = -1 WHERE unit_id = :u"), {"u": unit})

    def count() -> int:
        with engine.connect() as conn:
            return conn.execute(text("SELECT count(*) FROM unit_metrics")).scalar_one()

    assert count() == 10
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM unit WHERE id = :u"), {"u": unit})
    assert count() == 9
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM run WHERE id = :r"), {"r": run_id})
    assert count() == 4
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM model"))
    assert count() == 0
