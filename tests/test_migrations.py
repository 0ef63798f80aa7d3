"""Migrations: frozen revisions, one step at a time over a catalogue that holds data.

In the spirit of pytest-alembic's four tests (one head; every revision goes up
and down; the models match the head; the views match the code), plus the
checks that make revisions frozen: they carry literal SQL, import no registry,
and a changed registry becomes a new revision that runs both ways. The wheel
test builds and installs the package to show that `migrate` finds its scripts
with no repository on the path.
"""

from __future__ import annotations

import ast
import json
import math
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, Connection, Engine, Integer, MetaData, create_engine, inspect, text
from sqlalchemy import Table as SaTable
from sqlalchemy.exc import IntegrityError

from catalogue.db import migrate, view_revision, views
from catalogue.db.schema import Base
from catalogue.faults import explain
from catalogue.measures import CRITERIA, PRECISION_ABOVE, UNIT_MEASURES, Measure

REPO = Path(__file__).resolve().parents[1]
REPO_MIGRATIONS = REPO / "migrations"

# ------------------------------------------------------------------------------ helpers


def view_definitions(conn: Connection) -> dict[str, str]:
    """The views of the database as PostgreSQL deparses them (layout and spelling normalised)."""
    rows = conn.execute(
        text("SELECT viewname, definition FROM pg_views WHERE schemaname = 'public'")
    ).all()
    return {str(name): str(definition) for name, definition in rows}


def definitions_of(engine: Engine, selects: Mapping[str, str]) -> dict[str, str]:
    """How PostgreSQL deparses `selects` (name -> SELECT, in creation order) in this database.

    The database's own views are dropped and these created inside a transaction
    that is rolled back, so the database is left as it was.
    """
    with engine.connect() as conn:
        transaction = conn.begin()
        try:
            # a view read by a connection still open would block the drop: fail, not hang
            conn.execute(text("SET LOCAL lock_timeout = '30s'"))
            existing = view_definitions(conn)
            if existing:
                conn.execute(text(f"DROP VIEW {', '.join(existing)} CASCADE"))
            for name, select in selects.items():
                conn.execute(text(views.create_statement(name, select)))
            return view_definitions(conn)
        finally:
            transaction.rollback()


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b)


# ------------------------------------------------------------------------------ seed data

_NAN = float("nan")


def _metrics(unit_id: int, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"run_id": 1, "unit_id": unit_id, "n_images": 30}
    for m in UNIT_MEASURES:
        row[m.name] = False if m.kind == "bool" else (0 if m.kind == "class" else 0.1)
    row.update(values)
    return row


#: One row set per table of revision 0001, in foreign-key order; inserted at the
#: first step where the table exists. Ties at the detector cut-offs, NULLs and a NaN.
SEED: dict[str, list[dict[str, Any]]] = {
    "model": [{"id": 1, "name": "toy", "architecture": "alexnet", "weights": "random"}],
    "dataset": [{"id": 1, "name": "toy-data", "kind": "test", "n_classes": 3}],
    "concept": [{"id": 1, "probe": "broden", "number": 7, "name": "dog", "category": "object"}],
    "participant": [{"id": 1, "code": "p01", "list_index": 0}],
    "image_class": [
        {"id": i + 1, "dataset_id": 1, "class_index": i, "key": f"k{i}", "name": f"class {i}"}
        for i in range(3)
    ],
    "class_group": [{"id": 1, "dataset_id": 1, "name": "bus"}],
    "class_group_member": [{"group_id": 1, "class_id": 1}, {"group_id": 1, "class_id": 2}],
    "layer": [
        {
            "id": 1,
            "model_id": 1,
            "name": "fc6",
            "kind": "fc",
            "n_units": 4,
            "position": 0,
            "output_shape": [4],
        }
    ],
    "unit": [{"id": i + 1, "layer_id": 1, "unit_index": i} for i in range(4)],
    "run": [
        {"id": 1, "kind": "score", "key": "s", "model_id": 1, "dataset_id": 1, "status": "done"},
        {"id": 2, "kind": "dissect", "key": "d", "model_id": 1, "status": "done"},
        {"id": 3, "kind": "am", "key": "a", "model_id": 1, "status": "done", "params": {"k": 1}},
        {"id": 4, "kind": "ablate", "key": "b", "model_id": 1, "dataset_id": 1, "status": "done"},
    ],
    "unit_metrics": [
        _metrics(
            1, localist=True, precision=0.9, false_alarm_rate=0.95, ccmas=0.95, precision_class=1
        ),
        _metrics(2, localist=False, precision=0.75, false_alarm_rate=0.99, ccmas=0.9),
        _metrics(3, localist=None, precision=None, false_alarm_rate=None, ccmas=None),
        _metrics(4, precision=0.8, false_alarm_rate=0.9, ccmas=_NAN, recall_at_p95=_NAN),
    ],
    "unit_class_stats": [
        {"run_id": 1, "unit_id": 1, "class_index": 1, "informedness": 0.5, "rank_by_mean": 1}
    ],
    "unit_group_metrics": [{"run_id": 1, "unit_id": 1, "group_id": 1, "mu_in": 2.0, "mu_out": 1.0}],
    "unit_top_image": [
        {
            "run_id": 1,
            "unit_id": 1,
            "rank": 0,
            "image_index": 5,
            "image_key": "a.png",
            "class_index": 1,
            "activation": 3.5,
        }
    ],
    "dissection": [
        {
            "run_id": 2,
            "unit_id": u,
            "concept_id": 1,
            "rank": 1,
            "iou": iou,
            "threshold": 1.0,
            "is_detector": False,
        }
        for u, iou in ((1, 0.05), (2, 0.04))
    ],
    "am_panel": [
        {
            "id": 1,
            "run_id": 3,
            "unit_id": 1,
            "method": "lucent",
            "path": "am/1.png",
            "activations": [1.0, 2.5],
            "dataset_max": 3.0,
        }
    ],
    "rating": [
        {
            "id": 1,
            "participant_id": 1,
            "unit_id": 1,
            "panel_id": 1,
            "answer": True,
            "estimate": "60-80",
            "names": ["dog", "puppy"],
            "source": "ui",
        }
    ],
    "unit_rating_analysis": [
        {"unit_id": 1, "score_run_id": 1, "n_named": 1, "top_name": "dog", "used_wordnet": False}
    ],
    "unit_ablation": [
        {
            "run_id": 4,
            "unit_id": u,
            "score_run_id": 1,
            "replacement": 0.0,
            "n_images": 30,
            "accuracy": 0.5,
            "accuracy_change": change,
            "precision_class": 1,
            "precision_class_change": change,
            "mi_class": None,
            "mi_class_change": None,
            "ccmas_class": 0,
            "ccmas_class_change": _NAN,
        }
        for u, change in ((1, -0.25), (2, 0.0), (3, -0.1))
    ],
    "unit_ablation_class": [
        {"run_id": 4, "unit_id": 1, "rank": 1, "class_index": 1, "accuracy_change": -0.5}
    ],
    "class_ablation_curve": [
        {
            "run_id": 4,
            "layer_id": 1,
            "class_index": 1,
            "ranking": "ablation",
            "k": k,
            "units": units,
            "class_accuracy": acc,
            "other_accuracy": 0.5,
        }
        for k, units, acc in ((0, [], 0.8), (1, [0], 0.4))
    ],
    "chance_metrics": [{**_metrics(1, precision=0.8), "repeat": r} for r in range(2)],
    "unit_bottom_image": [
        {
            "run_id": 1,
            "unit_id": 1,
            "rank": 1,
            "image_index": 7,
            "image_key": "b.png",
            "class_index": 2,
            "activation": 0.0,
        }
    ],
    "twoafc_study": [
        {"id": 1, "name": "pilot", "score_run_id": 1, "params": {"seed": 0}, "n_tasks": 1}
    ],
    "twoafc_trial": [
        {
            "id": i + 1,
            "study_id": 1,
            "task": 1,
            "position": i + 1,
            "unit_id": i + 1,
            "catch": catch,
            "batch": 0,
            "max_query_first": catch,
            "max_query": 5,
            "max_query_key": "a.png",
            "max_query_activation": 3.5,
            "min_query": 7,
            "min_query_key": "b.png",
            "min_query_activation": 0.0,
            "max_references": [5],
            "max_reference_keys": ["a.png"],
            "max_reference_activations": [3.5],
            "min_references": [7],
            "min_reference_keys": ["b.png"],
            "min_reference_activations": [0.0],
        }
        for i, catch in enumerate((False, True))
    ],
    "twoafc_assignment": [{"study_id": 1, "participant_id": 1, "task": 1}],
    "twoafc_response": [
        {
            "id": t,
            "trial_id": t,
            "participant_id": 1,
            "chose_max": True,
            "confidence": 2,
            "rt_ms": 812.5,
            "source": "ui",
        }
        for t in (1, 2)
    ],
}


def _revision_named(slug: str) -> str:
    """The id of the revision whose file is named `<id>_<slug>.py` (ids change when the
    lead renumbers parallel branches' revisions at merge; names do not)."""
    (path,) = (REPO_MIGRATIONS / "versions").glob(f"*_{slug}.py")
    return path.name.split("_", 1)[0]


CCMAS_REVISION = _revision_named("ccmas_undefined_with_its_reason")


def _ccmas_null_not_nan(table: str, row: dict[str, Any]) -> dict[str, Any]:
    """What the CCMAS revision does to a row already there: a NULL or NaN CCMAS is NULL (NaN
    passed CCMAS > .9 in SQL), and so is its class. The SEED's values prove no negative
    activation, so no layer loses its CCMAS."""
    value = row.get("ccmas", 0.0)
    if table in ("unit_metrics", "chance_metrics") and (value is None or math.isnan(value)):
        return {**row, "ccmas": None, "ccmas_class": None}
    return row


#: Revisions that change stored values, and what they do to a row (idempotent).
DATA_CHANGES: dict[str, Callable[[str, dict[str, Any]], dict[str, Any]]] = {
    CCMAS_REVISION: _ccmas_null_not_nan,
}


def _changes_up_to(revision: str | None) -> list[Callable[[str, dict[str, Any]], dict[str, Any]]]:
    """The data changes of the revisions at or below `revision`."""
    ids = migrate.revisions()
    if revision is None:
        return []
    return [f for r, f in DATA_CHANGES.items() if ids.index(r) <= ids.index(revision)]


class SeededCatalogue:
    """A database walked through the revisions, with SEED rows in every table it has."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.seeded: set[str] = set()
        #: the rows as inserted: a table's SEED row less the columns a later revision adds
        self.inserted: dict[str, list[dict[str, Any]]] = {}

    def seed(self) -> None:
        tables = set(inspect(self.engine).get_table_names())
        changes = _changes_up_to(migrate.current_revision(self.engine))
        with self.engine.begin() as conn:
            for name, rows in SEED.items():
                if name in tables and name not in self.seeded:
                    table = SaTable(name, MetaData(), autoload_with=conn)
                    kept = [{k: v for k, v in row.items() if k in table.c} for row in rows]
                    for change in changes:  # rows as the revisions since would leave them
                        kept = [change(name, row) for row in kept]
                    for row in kept:  # rows leave different columns to their defaults
                        conn.execute(table.insert().values(row))
                    self.inserted[name] = kept
                    self.seeded.add(name)

    def check(self, revision: str | None, step: str) -> None:
        """Rows, views and revision as `revision` promises them, after `step`."""
        assert migrate.current_revision(self.engine) == revision, step
        tables = set(inspect(self.engine).get_table_names())
        self.seeded &= tables
        for change in _changes_up_to(revision):  # a downgrade does not undo them
            self.inserted = {n: [change(n, r) for r in rows] for n, rows in self.inserted.items()}
        with self.engine.connect() as conn:
            for name in self.seeded:  # read as rows: reflecting each table took most of the time
                stored = [dict(r._mapping) for r in conn.execute(text(f'SELECT * FROM "{name}"'))]
                for row in self.inserted[name]:
                    assert any(all(_same(s[k], v) for k, v in row.items()) for s in stored), (
                        f"{step}: a row of {name} was lost: {row}"
                    )
            actual = view_definitions(conn)
            for view in actual:  # every view runs over the data
                conn.execute(text(f"SELECT * FROM {view}")).all()
        expected = migrate.revision_views(revision) if revision else {}
        assert actual == definitions_of(self.engine, expected), (
            f"{step}: the views differ from the literal SQL of revision {revision}"
        )


@pytest.fixture
def empty_engine(database_factory: Callable[..., str]) -> Iterator[Engine]:
    engine = create_engine(database_factory(migrated=False))
    yield engine
    engine.dispose()


# ------------------------------------------------------------------------------ the revisions


def test_revisions_form_one_numbered_line() -> None:
    ids = migrate.revisions()
    # numbered upwards along the chain from 0001 (a gap in the numbers is allowed)
    assert ids[0] == "0001"
    assert all(len(i) == 4 and i.isdigit() for i in ids)
    assert [int(i) for i in ids] == sorted({int(i) for i in ids})
    assert migrate.head_revision() == ids[-1]


def test_the_relations_granted_on_are_every_table_and_every_view_of_every_revision() -> None:
    """`catalogue_relations` (what every upgrade grants the reader and the roles' script
    hands to the owner) reads each script once; it names exactly what the views of each
    revision, walked one by one, and the ORM's tables name."""
    from catalogue.db.revisions import catalogue_relations, revisions

    literal = set(Base.metadata.tables) | {"alembic_version"}
    for revision in revisions():
        literal |= set(migrate.revision_views(revision))
    assert catalogue_relations() == sorted(literal)
    assert {"unit_catalogue", "layer_detectors", "unit_metrics", "run"} <= set(literal)


def test_revisions_carry_literal_sql_and_import_no_registry() -> None:
    allowed = {"collections.abc", "alembic", "sqlalchemy", "sqlalchemy.dialects"}
    files = sorted((REPO_MIGRATIONS / "versions").glob("*.py"))
    assert len(files) == len(migrate.revisions())
    for path in files:
        tree = ast.parse(path.read_text())
        imported = {
            alias.name if isinstance(node, ast.Import) else node.module
            for node in ast.walk(tree)
            if isinstance(node, ast.Import | ast.ImportFrom)
            for alias in node.names
        }
        assert imported <= allowed, f"{path.name} imports {sorted(imported - allowed)}"
        assigned = {
            t.id: node.value
            for node in tree.body
            if isinstance(node, ast.AnnAssign | ast.Assign)
            for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
            if isinstance(t, ast.Name)
        }
        for constant in ("VIEWS", "PREVIOUS_VIEWS"):
            if constant in assigned:
                value = assigned[constant]
                assert isinstance(value, ast.Dict), f"{path.name}: {constant} is not a literal"
                assert all(isinstance(v, ast.Constant) for v in value.values), (
                    f"{path.name}: {constant} holds SQL that is not a literal string"
                )


@pytest.mark.slow  # every revision, up and down, over seeded rows
def test_each_revision_goes_up_and_down_one_step_over_a_catalogue_with_data(
    empty_engine: Engine,
) -> None:
    """Up one revision, down one, up again; then head to base one revision at a time.

    At every step the SEED rows of every table that is still there are intact,
    every view runs over them, and the views are exactly the literal SQL of the
    revision the database is at.
    """
    catalogue = SeededCatalogue(empty_engine)
    ids = migrate.revisions()
    catalogue.check(None, "empty")
    previous: str | None = None
    for revision in ids:
        migrate.upgrade(empty_engine, revision)
        catalogue.check(revision, f"upgrade to {revision}")
        catalogue.seed()
        catalogue.check(revision, f"seeded at {revision}")
        migrate.downgrade(empty_engine, previous or "base")
        catalogue.check(previous, f"downgrade from {revision}")
        migrate.upgrade(empty_engine, revision)
        catalogue.check(revision, f"upgrade to {revision} again")
        catalogue.seed()
        previous = revision
    assert catalogue.seeded == set(SEED)
    for revision, below in zip(ids[::-1], [*ids[-2::-1], None], strict=True):
        migrate.downgrade(empty_engine, below or "base")
        catalogue.check(below, f"downgrade from {revision}")
    assert set(inspect(empty_engine).get_table_names()) == {"alembic_version"}


def test_revision_0003_counts_the_detectors_that_0002_counted(empty_engine: Engine) -> None:
    catalogue = SeededCatalogue(empty_engine)
    query = text("SELECT * FROM layer_detectors")
    migrate.upgrade(empty_engine, "0002")
    catalogue.seed()
    with empty_engine.connect() as conn:
        before = [dict(r._mapping) for r in conn.execute(query)]
    migrate.upgrade(empty_engine, "0003")
    with empty_engine.connect() as conn:
        after = [dict(r._mapping) for r in conn.execute(query)]
    assert after == before
    # units: precision .9/.75/NULL/.8, false alarms .95/.99/NULL/.9 (ties at the cut-offs
    # are not above), localist T/F/NULL/F, best IoU .05/.04; PostgreSQL orders NaN above
    # every number, so unit 4's NaN CCMAS counts as above the CCMAS cut-off in SQL.
    counts = {k: v for k, v in after[0].items() if k.startswith("n_")}
    assert counts == {
        "n_units": 4,
        "n_precision": 2,
        "n_ccmas": 2,
        "n_localist": 1,
        "n_iou": 1,
        "n_misleading": 1,
    }


def test_revision_0010_keeps_what_stored_measures_prove_about_constant_units(
    empty_engine: Engine,
) -> None:
    """Rows scored before 0010: all zeros is constant, some zeros is not, else unknown."""
    catalogue = SeededCatalogue(empty_engine)
    migrate.upgrade(empty_engine, "0009")
    catalogue.seed()
    with empty_engine.begin() as conn:
        for unit_id, frac_zero in ((1, 1.0), (2, 0.25), (3, 0.0), (4, None)):
            conn.execute(
                text("UPDATE unit_metrics SET frac_zero = :f WHERE unit_id = :u"),
                {"f": frac_zero, "u": unit_id},
            )
    migrate.upgrade(empty_engine, "0010")
    with empty_engine.connect() as conn:
        rows = conn.execute(
            text("SELECT unit_id, constant, detector_bar FROM unit_metrics ORDER BY unit_id")
        ).all()
    assert [tuple(r) for r in rows] == [
        (1, True, None),
        (2, False, None),
        (3, None, None),
        (4, None, None),
    ]
    migrate.upgrade(empty_engine, "0011")
    with empty_engine.connect() as conn:
        counts = conn.execute(
            text("SELECT n_units, n_constant, n_precision FROM layer_detectors")
        ).one()
        misleading = conn.execute(text("SELECT unit_id FROM misleading_detectors")).scalars().all()
    # unit 1 (precision .9, false alarms .95) is constant now: counted apart, not a detector
    assert tuple(counts) == (4, 1, 1)
    assert misleading == []


def test_the_ccmas_revision_leaves_no_ccmas_outside_its_range(empty_engine: Engine) -> None:
    """Rows scored before it: a layer of logits (a CCMAS of 11, one in range, a NULL beside
    a negative mean) loses every CCMAS with the reason, and so do its chance run and its
    group CCMAS; so does a layer whose only negative value is a least activating image's
    activation; a ReLU layer keeps its CCMAS, its dead unit reads "no positive mean"
    (its NaN is NULL now), a one-class run "one class". Afterwards the constraints
    refuse what the revision removed."""
    ids = migrate.revisions()
    migrate.upgrade(empty_engine, ids[ids.index(CCMAS_REVISION) - 1])
    layers = {"fc7": 1, "fc8": 2, "fc6": 3}
    with empty_engine.begin() as conn:
        for name in ("model", "dataset", "image_class"):
            for row in SEED[name]:
                conn.execute(SaTable(name, MetaData(), autoload_with=conn).insert().values(row))
        for name, layer_id in layers.items():
            conn.execute(
                text(
                    "INSERT INTO layer (id, model_id, name, kind, n_units, position) "
                    "VALUES (:i, 1, :n, 'fc', 4, :i)"
                ),
                {"i": layer_id, "n": name},
            )
            for u in range(4):
                conn.execute(
                    text("INSERT INTO unit (id, layer_id, unit_index) VALUES (:i, :l, :u)"),
                    {"i": 10 * layer_id + u, "l": layer_id, "u": u},
                )
        conn.execute(
            text(
                "INSERT INTO run (id, kind, key, model_id, dataset_id, status, baseline_of) "
                "VALUES (1, 'score', 's', 1, 1, 'done', NULL), (2, 'chance', 'c', 1, 1, 'done', 1), "
                "(3, 'score', 'o', 1, 1, 'done', NULL)"
            )
        )
        metrics = SaTable("unit_metrics", MetaData(), autoload_with=conn)
        rows = [
            _metrics(10, ccmas=0.95, ccmas_class=2),
            _metrics(11, ccmas=_NAN, ccmas_class=0, frac_zero=1.0, max_informedness=0.0),
            _metrics(20, ccmas=11.0, ccmas_class=1),
            _metrics(21, ccmas=0.5, ccmas_class=1),
            _metrics(22, ccmas=None, ccmas_class=None, mean_activation=-0.3),
            _metrics(30, ccmas=0.4, ccmas_class=1),
            {**_metrics(10, ccmas=None, ccmas_class=None, max_informedness=None), "run_id": 3},
        ]
        conn.execute(metrics.insert(), rows)
        chance = SaTable("chance_metrics", MetaData(), autoload_with=conn)
        conn.execute(
            chance.insert(),
            [
                {**_metrics(10, ccmas=0.3, ccmas_class=2), "run_id": 2, "repeat": 0},
                {**_metrics(20, ccmas=0.4, ccmas_class=1), "run_id": 2, "repeat": 0},
            ],
        )
        conn.execute(
            text(
                "INSERT INTO class_group (id, dataset_id, name) VALUES (1, 1, 'bus');"
                "INSERT INTO unit_group_metrics (run_id, unit_id, group_id, ccmas) "
                "VALUES (1, 10, 1, -0.5), (1, 20, 1, 3.0), (1, 21, 1, 0.2);"
                "INSERT INTO unit_bottom_image "
                "(run_id, unit_id, rank, image_index, class_index, activation) "
                "VALUES (1, 10, 1, 0, 0, 0.0), (1, 30, 1, 0, 0, -0.2)"
            )
        )
    migrate.upgrade(empty_engine, CCMAS_REVISION)
    with empty_engine.connect() as conn:

        def read(sql: str) -> list[tuple[Any, ...]]:
            return [tuple(r) for r in conn.execute(text(sql))]

        got = read(
            "SELECT run_id, unit_id, ccmas, ccmas_class, ccmas_undefined FROM unit_metrics "
            "ORDER BY run_id, unit_id"
        )
        assert got == [
            (1, 10, 0.95, 2, None),
            (1, 11, None, None, 3),
            (1, 20, None, None, 1),
            (1, 21, None, None, 1),
            (1, 22, None, None, 1),
            (1, 30, None, None, 1),
            (3, 10, None, None, 2),
        ]
        assert read(
            "SELECT unit_id, ccmas, ccmas_class, ccmas_undefined FROM chance_metrics "
            "ORDER BY unit_id"
        ) == [(10, 0.3, 2, None), (20, None, None, 1)]
        assert read("SELECT unit_id, ccmas FROM unit_group_metrics ORDER BY unit_id") == [
            (10, -0.5),
            (20, None),
            (21, None),
        ]
    refused = (
        "UPDATE unit_metrics SET ccmas = 11 WHERE unit_id = 10 AND run_id = 1",
        "UPDATE unit_metrics SET ccmas = 'NaN' WHERE unit_id = 10 AND run_id = 1",
        "UPDATE unit_metrics SET ccmas_undefined = 1 WHERE unit_id = 10 AND run_id = 1",
        "UPDATE unit_metrics SET ccmas_undefined = 7 WHERE unit_id = 11",
        "UPDATE chance_metrics SET ccmas = -1.5 WHERE unit_id = 10",
        "UPDATE unit_group_metrics SET ccmas = 2 WHERE unit_id = 10",
    )
    for statement in refused:
        with (
            empty_engine.connect() as conn,
            pytest.raises(IntegrityError, match="check constraint") as err,
        ):
            conn.execute(text(statement))
        fault = explain(err.value)  # what a unitcat command that tried would say
        assert fault.exit_code == 5
        assert fault.message.startswith("the database refused the write (constraint ck_")
        assert "nothing was written" in fault.message and "\n" not in fault.message
    migrate.upgrade(empty_engine)
    with empty_engine.connect() as conn:
        shown = conn.execute(
            text(
                "SELECT layer, unit, ccmas, ccmas_undefined FROM unit_catalogue "
                "WHERE run_id = 1 ORDER BY layer, unit"
            )
        ).all()
    assert [tuple(r) for r in shown] == [
        ("fc6", 0, None, "activations can be negative"),
        ("fc7", 0, 0.95, None),
        ("fc7", 1, None, "no positive mean"),
        ("fc8", 0, None, "activations can be negative"),
        ("fc8", 1, None, "activations can be negative"),
        ("fc8", 2, None, "activations can be negative"),
    ]


def test_models_match_the_head_revision(engine: Engine) -> None:
    """`alembic revision --autogenerate` would find nothing to write."""
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_the_model_check_sees_a_column_that_no_revision_adds(engine: Engine) -> None:
    metadata = MetaData()
    for table in Base.metadata.tables.values():
        table.to_metadata(metadata)
    metadata.tables["unit"].append_column(Column("cluster", Integer))
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, metadata)
    assert [(d[0], d[2], d[3].name) for d in diff] == [("add_column", "unit", "cluster")]


# ------------------------------------------------------------------------------ views vs code


def test_the_head_revision_has_the_views_the_registries_generate() -> None:
    head = migrate.head_revision()
    stale = view_revision.changed_views(migrate.revision_views(head), views.VIEWS)
    assert not stale, (
        f"the views {', '.join(stale)} generated by catalogue.db.views differ from those of "
        f"revision {head}. Write a new revision: "
        '`python -m catalogue.db.views --revision "what changed" --write`, read it, commit it.'
    )


def test_the_printed_statements_create_the_head_views(engine: Engine, capsys) -> None:
    assert views.main([]) == 0
    statements = [s for s in capsys.readouterr().out.split(";\n") if s.strip()]
    assert [s.split()[2] for s in statements] == list(views.VIEWS)
    with engine.connect() as conn:
        head = view_definitions(conn)
    selects = {s.split()[2]: s.split(" AS\n", 1)[1] for s in statements}
    assert definitions_of(engine, selects) == head


def test_a_new_measure_replaces_unit_catalogue_and_the_views_that_read_it() -> None:
    measures = (*UNIT_MEASURES, Measure("sparsity", "float", "Sparsity", "Share of zeros."))
    changed = view_revision.changed_views(migrate.revision_views(), views.build_views(measures))
    assert changed == [
        "layer_baselines",  # reads layer_detectors
        "layer_detectors",
        "layer_summary",
        "measure_correlations",
        "misleading_detectors",
        "selectivity_vs_importance",  # reads unit_importance
        "unit_catalogue",
        "unit_importance",  # lists every measure beside the importance
    ]


def test_a_changed_threshold_becomes_a_revision_that_runs_up_and_down(
    empty_engine: Engine, tmp_path: Path
) -> None:
    """The whole workflow: registry changed -> revision written -> upgrade -> downgrade."""
    stricter = replace(PRECISION_ABOVE, value=0.8)
    criteria = tuple(
        replace(c, conditions=tuple(stricter if x == PRECISION_ABOVE else x for x in c.conditions))
        for c in CRITERIA
    )
    current = views.build_views(criteria=criteria)
    scripts = tmp_path / "migrations"
    shutil.copytree(REPO_MIGRATIONS, scripts, ignore=shutil.ignore_patterns("__pycache__"))
    head = migrate.head_revision()
    made = view_revision.revision_for(
        "stricter precision", head, migrate.revision_views(head), current
    )
    assert made is not None
    revision, source = made
    (scripts / "versions" / f"{revision}_stricter_precision.py").write_text(source)

    assert migrate.head_revision(scripts=scripts) == revision
    assert sorted(migrate.revision_views(revision, scripts=scripts)) == sorted(current)
    assert (
        view_revision.changed_views(migrate.revision_views(revision, scripts=scripts), current)
        == []
    )
    catalogue = SeededCatalogue(empty_engine)
    migrate.upgrade(empty_engine, head, scripts=scripts)
    catalogue.seed()
    migrate.upgrade(empty_engine, revision, scripts=scripts)
    with empty_engine.connect() as conn:
        upgraded = view_definitions(conn)
    assert upgraded == definitions_of(empty_engine, {n: v.select for n, v in current.items()})
    with empty_engine.connect() as conn:
        # precision above .8 now: unit 1 (.9) only; unit 4 (.8) is a tie
        assert conn.execute(text("SELECT n_precision FROM layer_detectors")).scalar_one() == 1
        assert conn.execute(text("SELECT count(*) FROM misleading_detectors")).scalar_one() == 1
    migrate.downgrade(empty_engine, head, scripts=scripts)
    with empty_engine.connect() as conn:
        downgraded = view_definitions(conn)
        assert conn.execute(text("SELECT n_precision FROM layer_detectors")).scalar_one() == 2
    assert downgraded == definitions_of(empty_engine, migrate.revision_views(head))


def test_views_agree_with_the_head_so_no_revision_is_written(capsys) -> None:
    assert views.main(["--revision", "nothing changed"]) == 0
    assert "no revision needed" in capsys.readouterr().out


# ------------------------------------------------------------------------------ packaging


def _run(args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, capture_output=True, text=True, **kwargs)
    assert done.returncode == 0, f"{args}\n{done.stdout}\n{done.stderr}"
    return done


def test_alembic_ini_in_the_checkout_migrates(empty_engine: Engine) -> None:
    url = empty_engine.url.render_as_string(hide_password=False)
    _run(
        [sys.executable, "-m", "alembic", "-c", "alembic.ini", "upgrade", "head"],
        cwd=REPO,
        env={**os.environ, "DATABASE_URL": url},
    )
    assert migrate.current_revision(empty_engine) == migrate.head_revision()


@pytest.mark.slow  # builds and installs a wheel
def test_the_wheel_ships_the_migrations_and_migrates_without_the_repository(
    empty_engine: Engine, tmp_path: Path
) -> None:
    source = tmp_path / "source"
    source.mkdir()
    for name in (
        "pyproject.toml",
        "README.md",
        "alembic.ini",
        "migrations",
        "catalogue",
        "ingest",
        "ui",
    ):
        if (REPO / name).is_dir():
            shutil.copytree(
                REPO / name,
                source / name,
                symlinks=True,
                ignore=shutil.ignore_patterns("__pycache__"),
            )
        else:
            shutil.copy2(REPO / name, source / name)
    dist = tmp_path / "dist"
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-q",
            "-w",
            str(dist),
            str(source),
        ]
    )
    (wheel,) = dist.glob("unitcat-*.whl")

    shipped = {
        f"catalogue/migrations/{p.relative_to(REPO_MIGRATIONS).as_posix()}": p.read_bytes()
        for p in REPO_MIGRATIONS.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    shipped["catalogue/alembic.ini"] = (REPO / "alembic.ini").read_bytes()
    with zipfile.ZipFile(wheel) as zf:
        for name, content in shipped.items():
            assert zf.read(name) == content, name

    site = tmp_path / "site"
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-index",
            "-q",
            "--target",
            str(site),
            str(wheel),
        ]
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    probe = """
import json, os, sys
from sqlalchemy import create_engine
from catalogue.db import migrate
engine = create_engine(os.environ["DATABASE_URL"])
migrate.upgrade(engine)
print(json.dumps({
    "path": sys.path,
    "modules": sorted(m.__file__ for n, m in list(sys.modules.items())
                      if n.split(".")[0] in ("catalogue", "ingest", "ui") and getattr(m, "__file__", None)),
    "scripts": str(migrate.script_location()),
    "revision": migrate.current_revision(engine),
}))
"""
    url = empty_engine.url.render_as_string(hide_password=False)
    env = {**os.environ, "PYTHONPATH": str(site), "DATABASE_URL": url}
    out = json.loads(_run([sys.executable, "-c", probe], cwd=elsewhere, env=env).stdout)

    assert not any(Path(p).resolve() == REPO.resolve() for p in out["path"] if p)
    assert out["modules"] and all(m.startswith(str(site)) for m in out["modules"])
    assert out["scripts"] == str(site / "catalogue" / "migrations")
    assert out["revision"] == migrate.head_revision()
    assert set(views.VIEWS) <= set(inspect(empty_engine).get_view_names())
