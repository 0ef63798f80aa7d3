"""The export's reads: one consistent snapshot of the catalogue, table by table as Arrow.

Every read goes through ADBC (Apache Arrow's database connectivity,
`adbc-driver-postgresql`) in a REPEATABLE READ, READ ONLY transaction, so that the files
of a dump describe one moment of the catalogue however long the export takes and
whatever runs finish meanwhile; the export's second writer joins that transaction's
snapshot (`Snapshot.share`, PostgreSQL's `pg_export_snapshot`) and sees the same moment.
ADBC reads PostgreSQL's binary COPY into Arrow columns in C++; psycopg hands a COPY over
one row at a time, which cost twice the client CPU (1,000,000 rows × 25 columns: 1.7 s
against 3.3 s, before any parsing).

Ids are read as they are and replaced by keys here (`resolve`), against small lookups
(runs, models, layers, concepts …) read first; a unit's id becomes its layer's
(model, layer) and its index by a join in the query.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
from sqlalchemy import Engine
from sqlalchemy.dialects.postgresql import JSONB

from catalogue.db.schema import Base
from catalogue.errors import InputError, NotFound
from catalogue.share.keys import RUN_ID_PARAMS, content_keys, portable
from catalogue.share.spec import DumpTable, Ref

#: rows per Arrow batch read from the server (bounds the export's memory)
BATCH_ROWS = 1 << 18


def adbc_uri(engine: Engine) -> str:
    """The libpq URI of a SQLAlchemy engine's database (same server, role and options)."""
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


class Snapshot:
    """A read-only, repeatable-read transaction on an ADBC connection."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.cursor = conn.cursor()

    def table(self, sql: str) -> pa.Table:
        self.cursor.execute(sql)
        return self.cursor.fetch_arrow_table()

    def share(self) -> str:
        """The id other connections join this snapshot by (`snapshot(engine, joining=id)`),
        valid while this transaction is open."""
        return str(self.table("SELECT pg_export_snapshot()").column(0)[0].as_py())

    def batches(self, sql: str) -> Iterator[pa.Table]:
        """The result of `sql` in tables of about BATCH_ROWS rows (one Parquet row group each;
        the server's record batches are kept as chunks, not copied)."""
        self.cursor.execute(sql)
        reader = self.cursor.fetch_record_batch()
        pending: list[pa.RecordBatch] = []
        size = 0
        for batch in reader:
            pending.append(batch)
            size += batch.num_rows
            if size >= BATCH_ROWS:
                yield pa.Table.from_batches(pending, schema=reader.schema)
                pending, size = [], 0
        if pending:
            yield pa.Table.from_batches(pending, schema=reader.schema)


@contextmanager
def snapshot(engine: Engine, joining: str | None = None) -> Iterator[Snapshot]:
    """A new snapshot, or (`joining`: the id `Snapshot.share` gave) another connection that
    sees exactly what that snapshot sees, for reading tables side by side."""
    import adbc_driver_postgresql.dbapi as adbc

    conn = adbc.connect(adbc_uri(engine))
    try:
        snap = Snapshot(conn)
        snap.cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        if joining is not None:
            snap.cursor.execute(f"SET TRANSACTION SNAPSHOT '{_snapshot_id(joining)}'")
        yield snap
    finally:
        try:
            conn.rollback()
        finally:
            conn.close()


def _snapshot_id(value: str) -> str:
    """An id of `pg_export_snapshot()` (hex digits and dashes), checked before it is quoted."""
    if not value or any(c not in "0123456789ABCDEFabcdef-" for c in value):
        raise ValueError(f"not a snapshot id: {value!r}")
    return value


# ------------------------------------------------------------------------------ what to export


@dataclass(frozen=True)
class Selection:
    """What to export: every model and run (the default), or these models' runs and these
    runs, each with the runs it refers to (its extraction, the run it is a baseline of …)."""

    models: tuple[str, ...] = ()
    runs: tuple[int, ...] = ()

    @property
    def everything(self) -> bool:
        return not self.models and not self.runs

    def describe(self) -> dict[str, Any]:
        return {"models": list(self.models) or "all", "runs": list(self.runs) or "all"}


@dataclass
class Plan:
    """The chosen rows' ids, and every lookup from an id to its key."""

    selection: Selection
    run_ids: list[int]
    model_ids: list[int]
    dataset_ids: list[int]
    run_keys: dict[int, str]
    lookups: dict[str, dict[int, tuple[Any, ...]]] = field(default_factory=dict)

    def ids(self, values: Sequence[int]) -> str:
        """An SQL array literal of ids (integers this module read itself)."""
        return "'{" + ",".join(str(int(v)) for v in values) + "}'::integer[]"


def _rows(snap: Snapshot, sql: str) -> list[dict[str, Any]]:
    return snap.table(sql).to_pylist()


def plan_export(snap: Snapshot, selection: Selection) -> Plan:
    """Resolve `selection` in the snapshot: runs (with the runs they refer to), models,
    datasets, and the lookups that turn ids into keys."""
    runs = {
        r["id"]: r
        for r in _rows(
            snap,
            "SELECT r.id, r.kind, r.params::text AS params, r.stats::text AS stats, r.model_id, "
            "r.dataset_id, r.parent_id, r.baseline_of, s.status AS state, m.name AS model, "
            "m.checksum, d.name AS dataset FROM run r JOIN run_status s ON s.run_id = r.id "
            "LEFT JOIN model m ON m.id = r.model_id LEFT JOIN dataset d ON d.id = r.dataset_id",
        )
    }
    for run in runs.values():
        run["params"] = json.loads(run["params"] or "{}")
        run["stats"] = json.loads(run["stats"] or "{}")
    models = {r["name"]: r["id"] for r in _rows(snap, "SELECT id, name FROM model")}
    unknown = [m for m in selection.models if m not in models]
    if unknown:
        raise NotFound(
            f"no model named {', '.join(map(repr, unknown))} in the catalogue; "
            "`unitcat ingest models` lists them."
        )
    missing = [r for r in selection.runs if r not in runs]
    if missing:
        raise NotFound(
            f"no run {', '.join(map(str, missing))} in the catalogue; `unitcat runs` lists them."
        )
    live = [r for r in selection.runs if runs[r]["state"] == "running"]
    if live:
        raise InputError(
            f"run {live[0]} is still running; export it when it has finished (`unitcat runs`)."
        )
    chosen_models = {models[m] for m in selection.models}
    if selection.everything:
        chosen = {i for i, r in runs.items() if r["state"] != "running"}
        chosen_models = set(models.values())
    else:
        chosen = set(selection.runs) | {
            i for i, r in runs.items() if r["model_id"] in chosen_models and r["state"] != "running"
        }
    chosen = _with_references(snap, runs, chosen)
    chosen_models |= {runs[i]["model_id"] for i in chosen if runs[i]["model_id"] is not None}
    datasets = {runs[i]["dataset_id"] for i in chosen if runs[i]["dataset_id"] is not None}
    if selection.everything:
        datasets |= {r["id"] for r in _rows(snap, "SELECT id FROM dataset")}
    plan = Plan(
        selection=selection,
        run_ids=sorted(chosen),
        model_ids=sorted(chosen_models),
        dataset_ids=sorted(datasets),
        run_keys=content_keys(runs),
    )
    plan.lookups = _lookups(snap, plan)
    return plan


def _with_references(
    snap: Snapshot, runs: Mapping[int, Mapping[str, Any]], chosen: set[int]
) -> set[int]:
    """`chosen` with every run a chosen run refers to (parent, baseline, run ids in its
    parameters and stats, the scoring runs its ablation rows name), transitively."""
    scored_by: dict[int, set[int]] = {}
    for row in _rows(
        snap,
        "SELECT DISTINCT run_id, score_run_id FROM unit_ablation WHERE score_run_id IS NOT NULL",
    ):
        scored_by.setdefault(row["run_id"], set()).add(row["score_run_id"])
    todo = list(chosen)
    out = set(chosen)
    while todo:
        run = runs[todo.pop()]
        refs = {run["parent_id"], run["baseline_of"], *scored_by.get(run["id"], ())}
        for values in (run["params"], run["stats"]):
            refs |= {values.get(name) for name in RUN_ID_PARAMS}
        for ref in refs:
            if isinstance(ref, int) and ref in runs and ref not in out:
                if runs[ref]["state"] == "running":
                    continue
                out.add(ref)
                todo.append(ref)
    return out


def _lookups(snap: Snapshot, plan: Plan) -> dict[str, dict[int, tuple[Any, ...]]]:
    def lookup(sql: str) -> dict[int, tuple[Any, ...]]:
        table = snap.table(sql)
        ids = table.column(0).to_pylist()
        rest = [table.column(i).to_pylist() for i in range(1, table.num_columns)]
        return {i: tuple(v[k] for v in rest) for k, i in enumerate(ids)}

    return {
        "model": lookup("SELECT id, name FROM model"),
        "dataset": lookup("SELECT id, name FROM dataset"),
        "layer": lookup(
            "SELECT l.id, m.name, l.name FROM layer l JOIN model m ON m.id = l.model_id"
        ),
        "concept": lookup("SELECT id, probe, category, name FROM concept"),
        "group": lookup("SELECT id, name, version FROM class_group"),
        "participant": lookup("SELECT id, code FROM participant"),
        "study": lookup("SELECT id, name FROM twoafc_study"),
        "trial": lookup(
            "SELECT t.id, s.name, t.task, t.position FROM twoafc_trial t "
            "JOIN twoafc_study s ON s.id = t.study_id"
        ),
        "run": {i: (plan.run_keys[i],) for i in plan.run_ids},
    }


# ------------------------------------------------------------------------------ the tables


def chosen_studies(plan: Plan) -> str:
    """The ids of the 2-AFC studies the plan exports, as SQL: a study goes with the scoring
    run of its exemplars (every study when everything is exported)."""
    if plan.selection.everything:
        return "SELECT id FROM twoafc_study"
    return f"SELECT id FROM twoafc_study WHERE score_run_id = ANY({plan.ids(plan.run_ids)})"


def _where(table: DumpTable, plan: Plan) -> str:
    """Which rows of `table` the plan exports."""
    models, runs = plan.ids(plan.model_ids), plan.ids(plan.run_ids)
    everything = plan.selection.everything
    studies = chosen_studies(plan)
    return {
        "model": f"t.id = ANY({models})",
        "layer": f"t.model_id = ANY({models})",
        "unit": f"t.layer_id IN (SELECT id FROM layer WHERE model_id = ANY({models}))",
        "dataset": f"t.id = ANY({plan.ids(plan.dataset_ids)})",
        "image_class": f"t.dataset_id = ANY({plan.ids(plan.dataset_ids)})",
        "class_group": f"t.dataset_id = ANY({plan.ids(plan.dataset_ids)})",
        "concept": "true"
        if everything
        else f"t.id IN (SELECT concept_id FROM dissection WHERE run_id = ANY({runs}))",
        "participant": "true"
        if everything
        else "t.id IN (SELECT participant_id FROM rating r JOIN unit u ON u.id = r.unit_id "
        f"JOIN layer l ON l.id = u.layer_id WHERE l.model_id = ANY({models}) "
        f"UNION SELECT participant_id FROM twoafc_assignment WHERE study_id IN ({studies}) "
        "UNION SELECT r.participant_id FROM twoafc_response r JOIN twoafc_trial tr "
        f"ON tr.id = r.trial_id WHERE tr.study_id IN ({studies}))",
        "run": f"t.id = ANY({runs})",
        "rating": f"u.layer_id IN (SELECT id FROM layer WHERE model_id = ANY({models}))",
        "unit_rating_analysis": f"u.layer_id IN (SELECT id FROM layer WHERE model_id = ANY({models}))",
        "twoafc_study": f"t.id IN ({studies})",
        "twoafc_trial": f"t.study_id IN ({studies})",
        "twoafc_assignment": f"t.study_id IN ({studies})",
        "twoafc_response": "t.trial_id IN (SELECT id FROM twoafc_trial "
        f"WHERE study_id IN ({studies}))",
    }.get(table.table, f"t.run_id = ANY({runs})")


_EXTRA_SQL = {
    ("class_group", "members"): "ARRAY(SELECT c.key FROM class_group_member gm "
    "JOIN image_class c ON c.id = gm.class_id WHERE gm.group_id = t.id "
    "ORDER BY c.class_index) AS members",
    ("run", "source_run_id"): "t.id AS source_run_id",
}


def select_sql(table: DumpTable, plan: Plan) -> str:
    """The query of a table's exported rows: columns as in the database, ids as `__<column>`."""
    db = Base.metadata.tables[table.table]
    columns: list[str] = []
    joins: list[str] = []
    for column in db.c:
        name = column.name
        if name in table.drop:
            continue
        ref = table.refs.get(name)
        if ref is not None and ref.kind == "unit":
            joins.append(f"JOIN unit u ON u.id = t.{name}")
            columns += [f'u.layer_id AS "__{name}"', "u.unit_index AS unit"]
        elif ref is not None and ref.kind == "panel":
            columns.append(f'(SELECT p.run_id FROM am_panel p WHERE p.id = t.{name}) AS "__{name}"')
        elif ref is not None:
            columns.append(f't."{name}" AS "__{name}"')
        else:
            value = f't."{name}"::text' if isinstance(column.type, JSONB) else f't."{name}"'
            columns.append(f'{value} AS "{table.rename.get(name, name)}"')
    columns += [_EXTRA_SQL[(table.table, extra[0])] for extra in table.extra]
    return (
        f"SELECT {', '.join(columns)} FROM {table.table} t {' '.join(joins)} "
        f"WHERE {_where(table, plan)}"
    )


def _lookup_kind(ref: Ref) -> str:
    return {"unit": "layer", "panel": "run"}.get(ref.kind, ref.kind)


def map_ids(
    ids: pa.Array | pa.ChunkedArray, lookup: Mapping[int, tuple[Any, ...]], width: int
) -> list[pa.Array]:
    """The key columns of each id in `ids` (null where the id is null or not in `lookup`)."""
    keys = np.fromiter(lookup.keys(), dtype=np.int64, count=len(lookup))
    order = np.argsort(keys)
    keys = keys[order]
    values = [pa.array([v[j] for v in lookup.values()]).take(pa.array(order)) for j in range(width)]
    raw = ids.to_numpy(zero_copy_only=False)
    mask = np.asarray(ids.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    raw = np.where(mask, 0, raw).astype(np.int64)
    at = np.clip(np.searchsorted(keys, raw), 0, max(len(keys) - 1, 0))
    found = (keys[at] == raw) & ~mask if len(keys) else np.zeros(len(raw), dtype=bool)
    indices = pa.array(at, mask=~found)
    return [v.take(indices) for v in values]


def resolve(batch: pa.Table, table: DumpTable, plan: Plan, schema: pa.Schema) -> pa.Table:
    """A batch of `select_sql` with ids replaced by keys, as the dump's schema."""
    columns: dict[str, pa.Array] = {}
    for name in batch.schema.names:
        if not name.startswith("__"):
            columns[name] = batch.column(name)
            continue
        ref = table.refs[name[2:]]
        lookup = plan.lookups[_lookup_kind(ref)]
        names = ("model", "layer") if ref.kind == "unit" else ref.columns()
        for out, array in zip(names, map_ids(batch.column(name), lookup, len(names)), strict=True):
            columns[out] = array
    if table.table in ("run", "twoafc_study"):
        _portable_runs(columns, plan)
    arrays = [columns[f.name] for f in schema]
    return pa.Table.from_arrays(arrays, schema=None, names=schema.names).cast(schema)


def _portable_runs(columns: dict[str, pa.Array], plan: Plan) -> None:
    """Run ids in params and stats (a run's; a study's params) replaced by content keys."""
    for name in ("params", "stats"):
        if name not in columns:
            continue
        values = columns[name].to_pylist()
        columns[name] = pa.array(
            [
                json.dumps(portable(json.loads(v), plan.run_keys), sort_keys=True)
                if v is not None
                else None
                for v in values
            ],
            pa.string(),
        )
