"""Runs: one execution of extract / score / dissect / am / ablate, and who runs it.

A run is identified by its kind and a hash of its parameters (the run key), so
running the same command with the same parameters again *replaces* that run's
results. The results of a run are written by one transaction at its end, which
first deletes the run's previous rows; if anything fails, that transaction rolls
back, leaving no partial rows.

The lifecycle (`recorded_run`, the one entry point that owns transactions):

1. **Validate first.** Callers check every option before they call
   `recorded_run`, so a validation error writes nothing, not even a failed run.
2. **One owner at a time.** The run's own database session (the *owner
   session*, held for the whole run) takes a session-level advisory lock keyed
   by the run key. The same run started twice at once is serialised: the second
   says which process runs it and waits. If the first one finished the run
   meanwhile, the second finds it done and does nothing (`finished_elsewhere`);
   if the first failed or died, the second takes the run over.
3. **Owner.** The run row records the owner: host, pid and process start time.
4. **Results and status** are written on the owner session, after checking
   that it still holds the lock: a process that lost its session (the server
   restarted, the connection dropped) cannot write over a run that another
   process has taken over; it stops with `RunLost`.
5. **A failed retry of a finished run** leaves the finished run as it was:
   its status, its rows, its file. Only a run that was not done is marked
   `failed` (or `interrupted` for Ctrl-C and SIGTERM).

Whether the owner is alive: PostgreSQL releases a session's advisory locks when
the session ends, so "the run's lock is held" is the server's own, up-to-date
answer, for an owner on any host. A run recorded as `running` whose lock nobody
holds therefore *reads* as `interrupted` (`run_state`, the `run_status` view)
and blocks nothing. On this host the recorded pid and start time are checked
as well (`catalogue.db.owner`), which settles the moment between a kill and the
server noticing it. For an owner on another host that vanished without closing
its connection (power cut, network partition) the server only notices when TCP
keepalive gives up; the owner session asks for keepalives after 60 s idle and
6 probes 10 s apart, so such a run reads `running` for about two minutes, then
`interrupted`. Not a heartbeat: a heartbeat would need a thread writing every
few seconds and a staleness threshold that either lags or calls a slow but live
run dead; the session *is* the lease. (A transaction-pooling proxy such as
PgBouncer in transaction mode breaks session locks; connect to the server or
a session-mode pool.)

The lookups here take the `Connection` of the caller's transaction.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, Row, delete, func, insert, select, text, update
from sqlalchemy.exc import DBAPIError

import catalogue
from catalogue import provenance as run_provenance
from catalogue.db.owner import ProcessOwner, owner_alive, this_process
from catalogue.db.schema import RUN_KINDS, RUN_RESULT_TABLES, Base, Run
from catalogue.errors import InputError, NotFound, RunLost

_log = logging.getLogger(__name__)

ResultWriter = Callable[[Connection, int], None]

#: How often a long computation asks the owner session whether it is still there.
ALIVE_CHECK_INTERVAL_S = 5.0
#: Server-side TCP keepalive of the owner session (ignored over a Unix socket).
_KEEPALIVE = {"tcp_keepalives_idle": 60, "tcp_keepalives_interval": 10, "tcp_keepalives_count": 6}


def run_key(kind: str, params: Mapping[str, Any]) -> str:
    canonical = json.dumps({"kind": kind, "params": params}, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def lock_key(key: str) -> int:
    """The advisory-lock key (a signed 64-bit integer) of a run key: its first 16 hex digits.

    pg_locks shows it as classid = the first 8 digits, objid = the next 8, objsubid = 1,
    which is how the `run_status` view finds it."""
    value = int(key[:16], 16)
    return value - (1 << 64) if value >= 1 << 63 else value


@dataclass
class RunHandle:
    """A run in progress; `complete` writes its results and marks it done.

    `finished_elsewhere` is set when this process waited for another that was running
    the same run and finished it: the results are there already, and the caller
    should not compute them again (calling `complete` would replace them with equal ones).
    """

    engine: Engine
    id: int
    kind: str
    key: str
    conn: Connection = field(repr=False)
    owner: ProcessOwner
    retry_of_done: bool = False
    finished_elsewhere: bool = False
    pending: dict[str, Any] = field(default_factory=dict, repr=False)
    previous_owner: dict[str, Any] = field(default_factory=dict, repr=False)
    provenance: dict[str, Any] = field(default_factory=dict, repr=False)
    started: float = field(default_factory=time.monotonic)
    completed: bool = False
    _last_alive_check: float = field(default_factory=time.monotonic, repr=False)

    def complete(
        self, write: ResultWriter | None = None, *, stats: Mapping[str, Any] | None = None
    ) -> None:
        """Replace the run's results with what `write(conn, run_id)` writes, in one transaction
        on the owner session (so no other process can have taken the run over)."""
        self.pending["provenance"] = {**self.provenance, "torch": run_provenance.torch_state()}
        try:
            with self.conn.begin():
                self._require_lock()
                _delete_run_results(self.conn, self.id)
                if write is not None:
                    write(self.conn, self.id)
                _mark_done(
                    self.conn,
                    self.id,
                    duration_s=time.monotonic() - self.started,
                    stats=stats,
                    pending=self.pending,
                )
        except DBAPIError as exc:
            if _session_lost(exc):
                raise self._lost(exc) from exc
            raise
        self.completed = True

    def check_alive(self, *, force: bool = False) -> None:
        """Raise `RunLost` if the owner session is gone (at most every few seconds), so that a
        long computation stops when its results could no longer be written."""
        now = time.monotonic()
        if not force and now - self._last_alive_check < ALIVE_CHECK_INTERVAL_S:
            return
        self._last_alive_check = now
        try:
            with self.conn.begin():
                self._require_lock()
        except DBAPIError as exc:
            raise self._lost(exc) from exc

    def watch(self, callback: Callable[..., None] | None) -> Callable[..., None]:
        """`callback` (a progress callback, or None) that first checks the owner session."""

        def wrapped(*args: Any) -> None:
            self.check_alive()
            if callback is not None:
                callback(*args)

        return wrapped

    def _require_lock(self) -> None:
        held = self.conn.execute(
            text(
                "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' "
                "AND pid = pg_backend_pid() AND granted AND objsubid = 1 "
                "AND classid = :hi AND objid = :lo)"
            ),
            _lock_halves(self.key),
        ).scalar_one()
        if not held:
            raise self._lost(None)

    def _lost(self, exc: BaseException | None) -> RunLost:
        reason = _first_line(exc) if exc is not None else "the session's run lock is gone"
        return RunLost(
            f"run {self.id} ({self.kind}) lost its database session ({reason}); its results "
            "were not written. Make sure the database is up (`unitcat db status`) and run "
            "the same command again: it takes the run over."
        )


def _lock_halves(key: str) -> dict[str, int]:
    return {"hi": int(key[:8], 16), "lo": int(key[8:16], 16)}


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    lines = str(orig).strip().splitlines()
    return lines[0] if lines else type(orig).__name__


def _session_lost(exc: DBAPIError) -> bool:
    return bool(exc.connection_invalidated) or exc.orig is None or _is_disconnect(exc)


def _is_disconnect(exc: DBAPIError) -> bool:
    sqlstate = getattr(exc.orig, "sqlstate", None) or ""
    return sqlstate.startswith("08") or sqlstate in ("57P01", "57P02", "57P03")


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
    provenance: Mapping[str, Any] | None = None,
) -> Iterator[RunHandle]:
    """Own the run (waiting for another owner), record it as running, done when `complete` is
    called, failed on an exception (interrupted on Ctrl-C) — see the module docstring.

    `provenance`: what only the caller knows (seed, device, dataset fingerprint), merged
    into what `catalogue.provenance.gather` records of this process and machine."""
    if kind not in RUN_KINDS:
        raise ValueError(f"unknown run kind {kind!r}")
    key = run_key(kind, params)
    values = {
        "label": label,
        "model_id": model_id,
        "dataset_id": dataset_id,
        "parent_id": parent_id,
        "code_version": catalogue.__version__,
        "h5_path": h5_path,
    }
    conn = engine.connect()
    try:
        before = _acquire(conn, kind, key)
        values["provenance"] = _provenance(conn, dataset_id, provenance)
        handle = _start(engine, conn, kind, key, dict(params), values, before)
    except BaseException:
        _release(conn, key)
        raise
    try:
        yield handle
        if not handle.completed and not handle.finished_elsewhere:
            handle.complete()
    except BaseException as exc:
        if not handle.finished_elsewhere:
            _record_failure(handle, exc)
        raise
    finally:
        _release(conn, key)


@dataclass(frozen=True)
class _Seen:
    """The run row as a waiting process saw it before it got the lock (status None: no row)."""

    status: str | None
    finished_at: datetime | None


def _acquire(conn: Connection, kind: str, key: str) -> _Seen | None:
    """Take the run's advisory lock on the owner session; wait (saying so) while another
    process holds it. Returns None if there was no wait, else what the row was before."""
    for name, value in _KEEPALIVE.items():
        conn.execute(text(f"SET {name} = {int(value)}"))
    lock = lock_key(key)
    got = conn.execute(select(func.pg_try_advisory_lock(lock))).scalar_one()
    conn.commit()
    if got:
        return None
    row = conn.execute(select(Run.__table__).where(Run.kind == kind, Run.key == key)).one_or_none()
    conn.commit()
    who = _owner_text(row) if row is not None else "another unitcat process"
    name = f"run {row.id} ({kind})" if row is not None else f"this {kind} run"
    _log.warning("%s is already running (%s); waiting for it to finish …", name, who)
    conn.execute(select(func.pg_advisory_lock(lock)))
    conn.commit()
    return _Seen(row.status, row.finished_at) if row is not None else _Seen(None, None)


def _owner_text(row: Any) -> str:
    if row.owner_pid is None:
        return "its process was not recorded"
    started = row.owner_started_at
    since = f", started {started.astimezone():%Y-%m-%d %H:%M}" if started else ""
    return f"pid {row.owner_pid} on {row.owner_host}{since}"


def _release(conn: Connection, key: str) -> None:
    try:
        if conn.in_transaction():
            conn.rollback()
        conn.execute(select(func.pg_advisory_unlock(lock_key(key))))
        conn.commit()
    except Exception:  # the session may be gone, and the lock with it
        _log.info("could not release the lock of run key %s", key[:16], exc_info=True)
    finally:
        try:
            conn.close()
        except Exception:
            _log.info("could not close the owner session", exc_info=True)


def _owner_values(owner: ProcessOwner) -> dict[str, Any]:
    return {
        "owner_host": owner.host,
        "owner_pid": owner.pid,
        "owner_started_at": owner.started_at,
    }


def _start(
    engine: Engine,
    conn: Connection,
    kind: str,
    key: str,
    params: dict[str, Any],
    values: dict[str, Any],
    waited: _Seen | None,
) -> RunHandle:
    """Insert the run, take it over, or (a retry of a finished run) only record the owner."""
    owner = this_process()
    handle_args: dict[str, Any] = {}
    with conn.begin():
        row = conn.execute(
            select(Run.__table__).where(Run.kind == kind, Run.key == key).with_for_update()
        ).one_or_none()
        if row is None:
            run_id = conn.execute(
                insert(Run)
                .values(
                    kind=kind,
                    key=key,
                    params=params,
                    status="running",
                    started_at=func.now(),
                    **values,
                    **_owner_values(owner),
                )
                .returning(Run.id)
            ).scalar_one()
        elif waited is not None and row.status == "done" and _changed(waited, row):
            run_id = row.id
            handle_args["finished_elsewhere"] = True
        elif row.status == "done":
            run_id = row.id
            conn.execute(update(Run).where(Run.id == run_id).values(**_owner_values(owner)))
            handle_args["retry_of_done"] = True
            handle_args["pending"] = {**values, "params": params, "started_at": func.now()}
            handle_args["previous_owner"] = {
                "owner_host": row.owner_host,
                "owner_pid": row.owner_pid,
                "owner_started_at": row.owner_started_at,
            }
        else:  # never run to the end: running (its owner is gone: we hold the lock), failed …
            run_id = row.id
            conn.execute(
                update(Run)
                .where(Run.id == run_id)
                .values(
                    params=params,
                    status="running",
                    started_at=func.now(),
                    finished_at=None,
                    duration_s=None,
                    error=None,
                    **values,
                    **_owner_values(owner),
                )
            )
    return RunHandle(
        engine=engine,
        id=run_id,
        kind=kind,
        key=key,
        conn=conn,
        owner=owner,
        provenance=values["provenance"],
        **handle_args,
    )


def _provenance(
    conn: Connection, dataset_id: int | None, extra: Mapping[str, Any] | None
) -> dict[str, Any]:
    """`catalogue.provenance.gather` with the server's version and, where the caller gave no
    dataset fingerprint, the class keys of the run's dataset."""
    extra = dict(extra or {})
    if dataset_id is not None and "dataset" not in extra:
        keys = conn.execute(
            text("SELECT key FROM image_class WHERE dataset_id = :d ORDER BY class_index"),
            {"d": dataset_id},
        ).scalars()
        extra["dataset"] = run_provenance.dataset_fingerprint(list(keys))
    gathered = run_provenance.gather(run_provenance.server_version(conn), extra)
    conn.commit()
    return gathered


def _changed(seen: _Seen, row: Any) -> bool:
    """Whether the run was finished while we waited (it was not done, or done earlier)."""
    return seen.status != "done" or seen.finished_at != row.finished_at


def _delete_run_results(conn: Connection, run_id: int) -> None:
    """Delete the run's rows from every result table (`RUN_RESULT_TABLES`)."""
    for table in RUN_RESULT_TABLES:
        result_table = Base.metadata.tables[table]
        conn.execute(delete(result_table).where(result_table.c.run_id == run_id))


def _mark_done(
    conn: Connection,
    run_id: int,
    *,
    duration_s: float,
    stats: Mapping[str, Any] | None = None,
    pending: Mapping[str, Any] | None = None,
) -> None:
    conn.execute(
        update(Run)
        .where(Run.id == run_id)
        .values(
            status="done",
            finished_at=func.clock_timestamp(),
            duration_s=duration_s,
            error=None,
            stats=dict(stats or {}),
            **dict(pending or {}),
        )
    )


def _record_failure(handle: RunHandle, exc: BaseException) -> None:
    """Mark the run failed (interrupted for Ctrl-C / SIGTERM) on the owner session, if it still
    owns the run; a retry of a finished run leaves the finished run as it was."""
    try:
        if handle.conn.in_transaction():
            handle.conn.rollback()
        with handle.conn.begin():
            handle._require_lock()
            if handle.retry_of_done:
                handle.conn.execute(
                    update(Run).where(Run.id == handle.id).values(**handle.previous_owner)
                )
                return
            interrupted = isinstance(exc, KeyboardInterrupt)
            message = _first_line(exc) if str(exc).strip() else exc.__class__.__name__
            handle.conn.execute(
                update(Run)
                .where(Run.id == handle.id)
                .values(
                    status="interrupted" if interrupted else "failed",
                    finished_at=func.clock_timestamp(),
                    duration_s=time.monotonic() - handle.started,
                    error="interrupted by the user"
                    if interrupted
                    else f"{exc.__class__.__name__}: {message}",
                )
            )
    except Exception:  # the database itself may be what failed: the run reads as interrupted
        _log.info("could not record the failure of run %s", handle.id, exc_info=True)


# ------------------------------------------------------------------------------ lookups


def find_run(conn: Connection, run: str | int, *, kind: str | None = None) -> Row[Any]:
    """A run row by id (or label, the newest), optionally of a given kind; NotFound otherwise."""
    query = select(Run.__table__)
    if str(run).isdigit():
        if int(run) > 2**31 - 1:
            raise NotFound(f"no run {run!r} in the catalogue; `unitcat runs` lists them.")
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


def lock_held(conn: Connection, key: str) -> bool:
    """Whether some session of this database holds the run's advisory lock (its owner runs)."""
    return bool(
        conn.execute(
            text(
                "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND objsubid = 1 AND classid = :hi AND objid = :lo AND database = "
                "(SELECT oid FROM pg_database WHERE datname = current_database()))"
            ),
            _lock_halves(key),
        ).scalar_one()
    )


def run_state(status: str, active: bool, row: Any) -> str:
    """The status a run reads as: `running` while its owner holds the lock and (on this host)
    its process lives; a recorded `running` without a live owner reads `interrupted`."""
    alive = owner_alive(row.owner_host, row.owner_pid, row.owner_started_at)
    if active and alive is not False:
        return "running"
    if status == "running":
        return "interrupted"
    return status


def current_state(conn: Connection, row: Any) -> str:
    """`run_state` of a `run` row, asking the database about its lock."""
    return run_state(row.status, lock_held(conn, row.key), row)


def describe_owner(row: Any) -> str:
    """'pid 123 on host-a, since 2026-12-01 14:02' (or why there is none)."""
    return _owner_text(row)
