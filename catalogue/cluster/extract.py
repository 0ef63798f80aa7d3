"""Extraction on a Ray cluster: image shards written by the workers, read as one store.

The run's images are cut into shards (`catalogue.store.shards`). The
cluster's worker actors — one per GPU on a cluster with GPUs, one per CPU
otherwise (`Cluster.pool`) — load the model once each (`ModelHandle`, by its
recipe) and take shards one at a time, each into its own HDF5 file with the
store's crash-safe bands (`catalogue.extraction.extract_span`). A re-run
finds complete shards and leaves them alone, resumes partial ones from their
last band and writes the missing ones. A worker whose process dies is
restarted by Ray and its shard run again, resuming the shard's file from its
last band. When every shard is complete the driver writes the run's file,
which reads the shards in place; its values equal a one-process run's, since
every image is computed in the same batch.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from catalogue.cluster.handles import ModelHandle
from catalogue.cluster.session import Cluster
from catalogue.cluster.tasks import Report, run_tasks
from catalogue.data import ImageDataset
from catalogue.errors import InputError
from catalogue.extraction import (
    ExtractionPlan,
    ExtractionSummary,
    extract_span,
    plan_extraction,
)
from catalogue.models import ModelInfo
from catalogue.store import DEFAULT_CHUNK_ROWS, ActivationStore
from catalogue.store.shards import DEFAULT_SHARD_IMAGES, Shard, plan_shards, shard_dir, write_master


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


def extract_on_cluster(
    cluster: Cluster,
    model: ModelInfo,
    dataset: ImageDataset,
    layers: Sequence[str] | None,
    out_path: str | Path,
    *,
    reduce: str = "max",
    keep_maps: bool | Sequence[str] = False,
    device: str = "auto",
    batch_size: int = 64,
    workers: int = 0,
    limit: int | None = None,
    strict: bool = False,
    autocast: bool = False,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    shard_images: int = DEFAULT_SHARD_IMAGES,
    on_progress: Callable[[int, int], None] | None = None,
) -> ExtractionSummary:
    """`catalogue.extraction.extract_activations` on ``cluster``, in shards (module docstring).

    Same arguments and result, plus ``shard_images`` (images per shard,
    rounded up to a multiple of ``batch_size``); a re-run must use the same
    shard size and batch size. The summary's runtime lists the shards reused,
    resumed and retried after a worker died.
    """
    if batch_size < 1:
        raise InputError(f"--batch-size must be at least 1, got {batch_size}.")
    if workers < 0:
        raise InputError(f"--workers must be 0 or more, got {workers}.")
    out_path = Path(out_path).resolve()
    dataset.strict = strict
    plan = plan_extraction(
        model, dataset, layers, reduce=reduce, keep_maps=keep_maps, limit=limit, autocast=autocast
    )
    runtime: dict[str, Any] = {
        "device": "cuda" if cluster.uses_gpus(device) else "cpu",
        "batch_size": batch_size,
        "workers": workers,
        "strict": strict,
        **cluster.describe(),
    }
    if out_path.exists():
        with ActivationStore.open(out_path) as existing:
            if existing.params != plan.params:
                raise InputError(
                    f"{out_path} holds a run with different parameters; re-run with the same "
                    "ones, or choose another output file."
                )
            if not existing.is_complete:
                raise InputError(
                    f"{out_path} holds an unfinished one-process extraction; resume it without "
                    "--cluster, or delete it."
                )
            return _summary(
                existing, plan, existing.runtime, existing.n_complete, 0, 0.0, already=True
            )
    shards = plan_shards(out_path, plan.n_images, shard_images, batch_size)
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
    context = ShardContext(
        ModelHandle.of(model), dataset, plan, reduce, device, batch_size, workers, autocast,
        chunk_rows, runtime,
    )  # fmt: skip
    outcomes = _run_shards(cluster, context, todo, before, plan.n_images, on_progress)
    seconds = time.perf_counter() - started
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
    n_new = sum(o.n_new for o in outcomes)
    with ActivationStore.open(out_path) as store:
        return _summary(store, plan, runtime, sum(before.values()), n_new, seconds)


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


def _summary(
    store: ActivationStore,
    plan: ExtractionPlan,
    runtime: dict[str, Any],
    resumed_from: int,
    n_new: int,
    seconds: float,
    *,
    already: bool = False,
) -> ExtractionSummary:
    correct = store.correct
    skipped = store.skipped
    return ExtractionSummary(
        path=store.path,
        n_images=store.n_complete,
        n_skipped=len(skipped),
        skipped=skipped,
        accuracy=float(np.mean(correct)) if correct.size else float("nan"),
        images_per_second=n_new / seconds if seconds > 0 else 0.0,
        seconds=seconds,
        layers=list(plan.layers),
        resumed_from=resumed_from,
        params=plan.params,
        runtime=runtime,
        already_complete=already,
    )
