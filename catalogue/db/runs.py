"""Runs: one execution of extract / score / dissect / am / ablate.

A run is identified by its kind and a hash of its parameters, so running the
same command with the same parameters again *replaces* that run's results. The
results of a run are written by one transaction at its end, which first deletes
the run's previous rows; if anything fails, that transaction rolls back and the
run is marked failed with its error, leaving no partial rows.
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

from sqlalchemy import Connection, Engine, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.expression import bindparam

import catalogue
from catalogue.db.schema import RUN_KINDS, RUN_RESULT_TABLES
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
            for table in RUN_RESULT_TABLES:
                conn.execute(text(f"DELETE FROM {table} WHERE run_id = :r"), {"r": self.id})
            if write is not None:
                write(conn, self.id)
            conn.execute(
                text(
                    "UPDATE run SET status = 'done', finished_at = now(), duration_s = :d, "
                    "error = NULL, stats = :stats WHERE id = :r"
                ).bindparams(bindparam("stats", type_=JSONB)),
                {"d": time.monotonic() - self.started, "stats": dict(stats or {}), "r": self.id},
            )
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
    key = run_key(kind, params)
    with engine.begin() as conn:
        run_id = conn.execute(
            text(
                "INSERT INTO run (kind, key, label, model_id, dataset_id, parent_id, params, "
                "status, started_at, code_version, h5_path) "
                "VALUES (:kind, :key, :label, :model, :dataset, :parent, :params, 'running', now(), "
                ":version, :h5) "
                "ON CONFLICT (kind, key) DO UPDATE SET status = 'running', started_at = now(), "
                "finished_at = NULL, error = NULL, label = EXCLUDED.label, "
                "model_id = EXCLUDED.model_id, dataset_id = EXCLUDED.dataset_id, "
                "parent_id = EXCLUDED.parent_id, code_version = EXCLUDED.code_version, "
                "h5_path = EXCLUDED.h5_path "
                "RETURNING id"
            ).bindparams(bindparam("params", type_=JSONB)),
            {
                "kind": kind,
                "key": key,
                "label": label,
                "model": model_id,
                "dataset": dataset_id,
                "parent": parent_id,
                "params": dict(params),
                "version": catalogue.__version__,
                "h5": h5_path,
            },
        ).scalar_one()
    handle = RunHandle(engine=engine, id=run_id, kind=kind, key=key)
    try:
        yield handle
        if not handle.completed:
            handle.complete()
    except BaseException as exc:
        _mark_failed(engine, run_id, exc)
        raise


def _mark_failed(engine: Engine, run_id: int, exc: BaseException) -> None:
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "UPDATE run SET status = 'failed', finished_at = now(), "
                    "duration_s = extract(epoch FROM now() - started_at), error = :e WHERE id = :r"
                ),
                {"e": f"{exc.__class__.__name__}: {message}", "r": run_id},
            )
    except Exception:  # the database itself may be what failed
        _log.warning("could not mark run %s as failed", run_id, exc_info=True)


def find_run(conn: Connection, run: str | int, *, kind: str | None = None) -> Any:
    """A run row by id (or label), optionally of a given kind; NotFound otherwise."""
    query = "SELECT * FROM run WHERE " + (
        "id = :v" if str(run).isdigit() else "label = :v ORDER BY started_at DESC LIMIT 1"
    )
    row = conn.execute(text(query), {"v": int(run) if str(run).isdigit() else run}).one_or_none()
    if row is None:
        raise NotFound(f"no run {run!r} in the catalogue; `unitcat runs` lists them.")
    if kind is not None and row.kind != kind:
        raise InputError(f"run {run} is a {row.kind} run, not a {kind} run.")
    return row


def done_run_id(engine: Engine, kind: str, params: Mapping[str, Any]) -> int | None:
    """The id of a finished run of this kind with exactly these parameters, if any."""
    with engine.connect() as conn:
        return conn.execute(
            text("SELECT id FROM run WHERE kind = :k AND key = :key AND status = 'done'"),
            {"k": kind, "key": run_key(kind, params)},
        ).scalar_one_or_none()
