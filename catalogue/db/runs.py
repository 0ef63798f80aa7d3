"""Runs: one execution of extract / score / dissect / am / ablate.

A run is identified by its kind and a hash of its parameters, so running the
same command with the same parameters again *replaces* that run's results. The
results of a run are written by one transaction at its end, which first deletes
the run's previous rows; if anything fails, that transaction rolls back and the
run is marked failed with its error, leaving no partial rows.

`recorded_run` is the one entry point that owns transactions (it takes the
`Engine`); the lookups here take the `Connection` of the caller's transaction.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, Row, delete, extract, func, select, update
from sqlalchemy.dialects.postgresql import insert

import catalogue
from catalogue.db.schema import RUN_KINDS, RUN_RESULT_TABLES, Base, Run
from catalogue.errors import InputError, NotFound

_log = logging.getLogger(__name__)

ResultWriter = Callable[[Connection, int], None]


def run_key(kind: str, params: Mapping[str, Any]) -> str:
    canonical = json.dumps({"kind": kind, "params": params}, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass
class RunHandle:
    """A run in progress; `complete` writes its results and marks it done."""

    engine: Engine
    id: int
    kind: str
    key: str
    started: float = field(default_factory=time.monotonic)
    completed: bool = False

    def complete(
        self, write: ResultWriter | None = None, *, stats: Mapping[str, Any] | None = None
    ) -> None:
        """Replace the run's results with what `write(conn, run_id)` writes, in one transaction."""
        with self.engine.begin() as conn:
            _delete_run_results(conn, self.id)
            if write is not None:
                write(conn, self.id)
            _mark_done(conn, self.id, duration_s=time.monotonic() - self.started, stats=stats)
        self.completed = True


@contextmanager
def recorded_run(
    engine: Engine,
    kind: str,
    params: Mapping[str, Any],
    *,
    label: str | None = None,
    model_id: int | None = None,
    dataset_id: int | None = None,
    parent_id: int | None = None,
    h5_path: str | None = None,
) -> Iterator[RunHandle]:
    """Record a run as running now, done when `complete` is called, failed on any exception."""
    if kind not in RUN_KINDS:
        raise ValueError(f"unknown run kind {kind!r}")
    with engine.begin() as conn:
        run_id = _start_run(
            conn,
            kind,
            params,
            label=label,
            model_id=model_id,
            dataset_id=dataset_id,
            parent_id=parent_id,
            h5_path=h5_path,
        )
    handle = RunHandle(engine=engine, id=run_id, kind=kind, key=run_key(kind, params))
    try:
        yield handle
        if not handle.completed:
            handle.complete()
    except BaseException as exc:
        _mark_failed(engine, run_id, exc)
        raise


def _start_run(
    conn: Connection,
    kind: str,
    params: Mapping[str, Any],
    *,
    label: str | None = None,
    model_id: int | None = None,
    dataset_id: int | None = None,
    parent_id: int | None = None,
    h5_path: str | None = None,
) -> int:
    """Insert the run as running, or restart the run with the same kind and parameters;
    its id. The restarted run keeps its results until `_delete_run_results`."""
    values = {
        "label": label,
        "model_id": model_id,
        "dataset_id": dataset_id,
        "parent_id": parent_id,
        "code_version": catalogue.__version__,
        "h5_path": h5_path,
    }
    statement = insert(Run).values(
        kind=kind,
        key=run_key(kind, params),
        params=dict(params),
        status="running",
        started_at=func.now(),
        **values,
    )
    statement = statement.on_conflict_do_update(
        index_elements=[Run.kind, Run.key],
        set_={
            "status": "running",
            "started_at": func.now(),
            "finished_at": None,
            "error": None,
            **{name: statement.excluded[name] for name in values},
        },
    )
    return conn.execute(statement.returning(Run.id)).scalar_one()


def _delete_run_results(conn: Connection, run_id: int) -> None:
    """Delete the run's rows from every result table (`RUN_RESULT_TABLES`)."""
    for table in RUN_RESULT_TABLES:
        result_table = Base.metadata.tables[table]
        conn.execute(delete(result_table).where(result_table.c.run_id == run_id))


def _mark_done(
    conn: Connection, run_id: int, *, duration_s: float, stats: Mapping[str, Any] | None = None
) -> None:
    conn.execute(
        update(Run)
        .where(Run.id == run_id)
        .values(
            status="done",
            finished_at=func.now(),
            duration_s=duration_s,
            error=None,
            stats=dict(stats or {}),
        )
    )


def _mark_failed(engine: Engine, run_id: int, exc: BaseException) -> None:
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
    try:
        with engine.begin() as conn:
            conn.execute(
                update(Run)
                .where(Run.id == run_id)
                .values(
                    status="failed",
                    finished_at=func.now(),
                    duration_s=extract("epoch", func.now() - Run.started_at),
                    error=f"{exc.__class__.__name__}: {message}",
                )
            )
    except Exception:  # the database itself may be what failed
        _log.warning("could not mark run %s as failed", run_id, exc_info=True)


def find_run(conn: Connection, run: str | int, *, kind: str | None = None) -> Row[Any]:
    """A run row by id (or label, the newest), optionally of a given kind; NotFound otherwise."""
    query = select(Run.__table__)
    if str(run).isdigit():
        query = query.where(Run.id == int(run))
    else:
        query = query.where(Run.label == run).order_by(Run.started_at.desc()).limit(1)
    row = conn.execute(query).one_or_none()
    if row is None:
        raise NotFound(f"no run {run!r} in the catalogue; `unitcat runs` lists them.")
    if kind is not None and row.kind != kind:
        raise InputError(f"run {run} is a {row.kind} run, not a {kind} run.")
    return row


def done_run_id(conn: Connection, kind: str, params: Mapping[str, Any]) -> int | None:
    """The id of a finished run of this kind with exactly these parameters, if any."""
    return conn.execute(
        select(Run.id).where(
            Run.kind == kind, Run.key == run_key(kind, params), Run.status == "done"
        )
    ).scalar_one_or_none()
