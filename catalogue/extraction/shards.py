"""Extraction on a Ray cluster: image shards written by the workers, read as one store.

The run's images are cut into shards (`catalogue.store.shards`). The
cluster's worker actors — one per GPU on a cluster with GPUs, one per CPU
otherwise (`Cluster.pool`) — load the model once each (`ModelHandle`, by its
recipe) and take shards one at a time, each into its own HDF5 file with the
store's crash-safe bands (`extract_span`). A re-run finds complete shards and
leaves them alone, resumes partial ones from their last band and writes the
missing ones. A worker whose process dies is restarted by Ray and its shard
run again, resuming the shard's file from its last band. When every shard is
complete the driver writes the run's file, which reads the shards in place;
its values equal a one-process run's, since every image is computed in the
same batch.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from catalogue.cluster import Cluster, run_tasks
from catalogue.cluster.handles import ModelHandle
from catalogue.cluster.tasks import Report
from catalogue.data import ImageDataset
from catalogue.extraction.loop import extract_span
from catalogue.extraction.plan import ExtractionPlan
from catalogue.store.shards import Shard, plan_shards, shard_dir, write_master


@dataclass(frozen=True)
class ShardOutcome:
    """What one attempt did to a shard (``existed``: its file was there when the attempt began)."""

    index: int
    n_new: int
    existed: bool


@dataclass(frozen=True)
class ShardContext:
    """What every shard's extraction shares (sent to the workers once)."""

    model: ModelHandle
    dataset: ImageDataset
    plan: ExtractionPlan
    reduce: str
    device: str
    batch_size: int
    workers: int
    autocast: bool
    chunk_rows: int
    runtime: dict[str, Any]


@dataclass(frozen=True)
class ShardedRun:
    """What `extract_shards` did: rows before it and added, and the shards' bookkeeping."""

    resumed_from: int
    n_new: int
    seconds: float
    runtime: dict[str, Any]


def write_shard(context: ShardContext, shard: Shard, progress: Report) -> ShardOutcome:
    """Extract one shard into its file, resuming the file if it has one (runs on a worker)."""
    c = context
    if shard.state()[0] == "unreadable":  # cut off before its first flush: it holds no rows
        shard.path.unlink()
    existed = shard.path.exists()
    n_new = extract_span(
        c.model.load(), c.dataset, c.plan, shard.path, range(shard.start, shard.stop),
        reduce=c.reduce, device=c.device, batch_size=c.batch_size, workers=c.workers,
        autocast=c.autocast, chunk_rows=c.chunk_rows, runtime=c.runtime,
        on_progress=lambda done, _total: progress(done),
    )  # fmt: skip
    return ShardOutcome(shard.index, n_new, existed)


def extract_shards(
    cluster: Cluster,
    context: ShardContext,
    out_path: Path,
    *,
    shard_images: int,
    on_progress: Callable[[int, int], None] | None = None,
) -> ShardedRun:
    """Write the missing and partial shards of the run on ``cluster``, then the run's file.

    ``shard_images`` is rounded up to a multiple of the batch size; a re-run must use the
    same shard size and batch size. The runtime lists the shards reused, resumed and retried
    after a worker died.
    """
    n_images = context.plan.n_images
    shards = plan_shards(out_path, n_images, shard_images, context.batch_size)
    shard_dir(out_path).mkdir(parents=True, exist_ok=True)
    states = {}
    for shard in shards:
        state, done = shard.state()
        if state == "unreadable":  # cut off before its first flush: it holds no rows
            shard.path.unlink()
            state = "missing"
        states[shard.index] = (state, done)
    todo = [s for s in shards if states[s.index][0] != "complete"]
    before = {s.index: states[s.index][1] for s in shards}
    started = time.perf_counter()
    outcomes = _run_shards(cluster, context, todo, before, n_images, on_progress)
    seconds = time.perf_counter() - started
    runtime = dict(context.runtime)
    runtime.update(
        shards=len(shards),
        shard_images=shards[0].n_items,
        shards_reused=[s.index for s in shards if states[s.index][0] == "complete"],
        shards_resumed=[s.index for s in todo if states[s.index][0] == "partial"],
        shards_retried=sorted(
            o.index for o in outcomes if o.existed and states[o.index][0] == "missing"
        ),
    )
    write_master(out_path, shards, runtime)
    return ShardedRun(sum(before.values()), sum(o.n_new for o in outcomes), seconds, runtime)


def _run_shards(
    cluster: Cluster,
    context: ShardContext,
    todo: Sequence[Shard],
    before: dict[int, int],
    n_total: int,
    on_progress: Callable[[int, int], None] | None,
) -> list[ShardOutcome]:
    """The shards to write on the cluster's workers; progress counts every image of the run."""
    done = dict(before)

    def report() -> None:
        if on_progress is not None:
            on_progress(sum(done.values()), n_total)

    def on_result(i: int, _outcome: ShardOutcome) -> None:
        done[todo[i].index] = todo[i].n_items

    def on_reports(reported: Mapping[int, int]) -> None:
        for i, amount in reported.items():
            if done[todo[i].index] < todo[i].n_items:
                done[todo[i].index] = amount
        report()

    report()
    if not todo:
        return []
    return run_tasks(
        cluster, write_shard, context, todo, on_result=on_result, on_progress=on_reports
    )
