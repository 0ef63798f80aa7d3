"""A run's lifecycle, written once: each pipeline is its checks, its computation and its write.

Every pipeline that records results goes through `run_step`:

1. **checked first** — the pipeline checks every option before it calls `run_step`, so a
   bad one writes nothing, not even a failed run;
2. **reuse** — with ``reuse``, a finished run with the same parameters (`RunSpec.params`,
   the run's identity) is returned as it is, without computing anything;
3. **one owner** — the run is recorded and owned (`catalogue.db.runs.recorded_run`: an
   advisory lock; the same run started twice at once waits for the first);
4. **finished elsewhere** — a run that another process finished while this one waited
   is returned without computing it again;
5. **progress** — ``compute(step)`` runs with ``step.progress``, the caller's progress
   callback that first checks that the run's database session is still there
   (`RunHandle.watch`), so a lost session stops the work (`step.check_alive` for loops
   without progress);
6. **the write** — ``write(conn, run_id, value)`` replaces the run's rows in one
   transaction, with ``stats(value)`` (and the cluster it ran on) in the run row. A
   failure anywhere marks the run failed; a failed retry of a finished run leaves it as
   it was.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Connection, Engine

from catalogue.cluster import Cluster
from catalogue.db.runs import RunHandle, done_run_id, recorded_run

T = TypeVar("T")


@dataclass(frozen=True)
class RunSpec:
    """A run to record: its kind, its parameters (its identity) and what it refers to."""

    kind: str
    params: Mapping[str, Any]
    label: str | None = None
    model_id: int | None = None
    dataset_id: int | None = None
    parent_id: int | None = None
    h5_path: str | None = None


@dataclass(frozen=True)
class Step:
    """What a computation gets from its run: its id, and progress that checks the session."""

    run_id: int
    progress: Callable[..., None]
    handle: RunHandle

    def check_alive(self) -> None:
        """Stop (`RunLost`) if the run's database session is gone (checked every few seconds)."""
        self.handle.check_alive()


@dataclass(frozen=True)
class StepResult(Generic[T]):
    """The run's id and what ``compute`` returned (None when the run was not computed here:
    ``reused``, a finished run found before or while waiting)."""

    run_id: int
    value: T | None
    reused: bool = False


def run_step(
    engine: Engine,
    spec: RunSpec,
    compute: Callable[[Step], T],
    *,
    write: Callable[[Connection, int, T], None] | None = None,
    stats: Callable[[T], Mapping[str, Any]] | None = None,
    on_progress: Callable[..., None] | None = None,
    reuse: bool = False,
    cluster: Cluster | None = None,
) -> StepResult[T]:
    """Record and run one run: reuse, own, compute, write (the module docstring)."""
    if reuse:
        existing = finished_run(engine, spec)
        if existing is not None:
            return StepResult(existing, None, reused=True)
    with recorded_run(
        engine,
        spec.kind,
        spec.params,
        label=spec.label,
        model_id=spec.model_id,
        dataset_id=spec.dataset_id,
        parent_id=spec.parent_id,
        h5_path=spec.h5_path,
    ) as run:
        if run.finished_elsewhere:  # another process ran it while this one waited
            return StepResult(run.id, None, reused=True)
        value = compute(Step(run.id, run.watch(on_progress), run))

        def write_rows(conn: Connection, run_id: int) -> None:
            if write is not None:
                write(conn, run_id, value)

        recorded = dict(stats(value)) if stats is not None else {}
        run.complete(write_rows, stats=recorded | (cluster.describe() if cluster else {}))
    return StepResult(run.id, value)


def finished_run(engine: Engine, spec: RunSpec) -> int | None:
    """The id of a finished run with exactly these parameters, if there is one."""
    with engine.connect() as conn:
        return done_run_id(conn, spec.kind, spec.params)
