"""Extraction on a Ray cluster: image shards written by actors, read as one store.

The run's images are cut into shards (`catalogue.store.shards`); a pool of
Ray actors — one per GPU on a cluster with GPUs, one per CPU otherwise —
loads the model once each (`ModelHandle`, by its recipe) and takes shards one
at a time, each into its own HDF5 file with the store's crash-safe bands
(`catalogue.extraction.extract_span`). A re-run finds complete shards and
leaves them alone, resumes partial ones from their last band and writes the
missing ones. An actor whose process dies is restarted by Ray and its shard
retried (the restarted actor resumes the shard from its last band). When
every shard is complete the driver writes the run's file, which reads the
shards in place; its values equal a one-process run's, since every image is
computed in the same batch.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from catalogue.cluster.handles import ModelHandle
from catalogue.cluster.session import Cluster
from catalogue.cluster.tasks import (
    DEFAULT_RETRIES,
    POLL_SECONDS,
    progress_board,
    reporter,
    result_of,
)
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
    """What one actor call did to a shard (``existed``: its file was there when the call began)."""

    index: int
    n_new: int
    existed: bool
    restarted_actor: bool


@dataclass(frozen=True)
class _Options:
    reduce: str
    device: str
    batch_size: int
    workers: int
    autocast: bool
    chunk_rows: int
    runtime: dict[str, Any]


class ShardWriter:
    """A Ray actor: the model loaded once, shards extracted one call at a time."""

    def __init__(self, model: ModelHandle, plan: ExtractionPlan, options: _Options) -> None:
        self.model = model.load()
        self.plan, self.options = plan, options

    def write(self, shard: Shard, dataset: ImageDataset, board: Any) -> ShardOutcome:
        """Extract one shard (resuming its file if it has one); the dataset comes with each call."""
        import ray

        existed = shard.path.exists()
        report = reporter(board, shard.index)
        o = self.options
        n_new = extract_span(
            self.model, dataset, self.plan, shard.path, range(shard.start, shard.stop),
            reduce=o.reduce, device=o.device, batch_size=o.batch_size, workers=o.workers,
            autocast=o.autocast, chunk_rows=o.chunk_rows, runtime=o.runtime,
            on_progress=lambda done, _total: report(done),
        )  # fmt: skip
        restarted = ray.get_runtime_context().was_current_actor_reconstructed
        return ShardOutcome(shard.index, n_new, existed, restarted)


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
        if state == "unreadable":
            shard.path.unlink()
            state = "missing"
        states[shard.index] = (state, done)
    todo = [s for s in shards if states[s.index][0] != "complete"]
    before = {s.index: states[s.index][1] for s in shards}
    started = time.perf_counter()
    outcomes = _run_shards(
        cluster, model, dataset, plan, todo, before, plan.n_images,
        _Options(reduce, device, batch_size, workers, autocast, chunk_rows, runtime),
        on_progress,
    )  # fmt: skip
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
    model: ModelInfo,
    dataset: ImageDataset,
    plan: ExtractionPlan,
    todo: Sequence[Shard],
    before: dict[int, int],
    n_total: int,
    options: _Options,
    on_progress: Callable[[int, int], None] | None,
) -> list[ShardOutcome]:
    """Hand the shards to a pool of actors, one shard per actor at a time; their outcomes."""
    if on_progress is not None:
        on_progress(sum(before.values()), n_total)
    if not todo:
        return []
    import ray

    actor_class = ray.remote(ShardWriter).options(
        max_restarts=DEFAULT_RETRIES,
        max_task_retries=DEFAULT_RETRIES,
        **cluster.resources(options.device),
    )
    handle, data = ModelHandle.of(model), ray.put(dataset)
    actors = [
        actor_class.remote(handle, plan, options) for _ in range(min(len(todo), cluster.slots))
    ]
    board = progress_board()
    queue = deque(todo)
    running: dict[Any, tuple[Any, Shard]] = {}
    outcomes: list[ShardOutcome] = []
    done = dict(before)

    def give(actor: Any) -> None:
        if queue:
            shard = queue.popleft()
            running[actor.write.remote(shard, data, board)] = (actor, shard)

    try:
        for actor in actors:
            give(actor)
        while running:
            ready, _ = ray.wait(list(running), num_returns=len(running), timeout=POLL_SECONDS)
            for ref in ready:
                actor, shard = running.pop(ref)
                outcomes.append(result_of(ref, f"shard {shard.path.name}", DEFAULT_RETRIES))
                done[shard.index] = shard.n_items
                give(actor)
            if on_progress is not None:
                reported = ray.get(board.snapshot.remote())
                for shard in todo:
                    if shard.index in reported and done[shard.index] < shard.n_items:
                        done[shard.index] = reported[shard.index]
                on_progress(sum(done.values()), n_total)
    finally:
        for actor in [*actors, board]:
            ray.kill(actor, no_restart=True)
    return outcomes


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
