"""`extract_activations`: one signature and one set of checks, here or on a Ray cluster."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from catalogue.cluster import Cluster, resolve_device_for
from catalogue.cluster.handles import ModelHandle
from catalogue.data import ImageDataset
from catalogue.errors import InputError
from catalogue.extraction.loop import extract_span_counted
from catalogue.extraction.plan import (
    ExtractionPlan,
    ExtractionSummary,
    check_options,
    compare_params,
    plan_extraction,
    summarise,
)
from catalogue.extraction.shards import ShardContext, extract_shards
from catalogue.models import ModelInfo
from catalogue.store import DEFAULT_CHUNK_ROWS, ActivationStore
from catalogue.store.shards import DEFAULT_SHARD_IMAGES


def extract_activations(
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
    on_progress: Callable[[int, int], None] | None = None,
    cluster: Cluster | None = None,
    shard_images: int | None = None,
) -> ExtractionSummary:
    """Run ``model`` over ``dataset`` and store the activations of ``layers`` in ``out_path``.

    ``layers``: node names (None: `catalogue.models.default_layers`).
    ``keep_maps``: True keeps the spatial maps of every conv layer, a list
    those of the named conv layers. ``limit``: only the first ``limit`` images.
    ``strict``: an unreadable image raises instead of being skipped.
    ``on_progress(n_done, n_total)`` counts dataset items (rows and skips),
    including those done before a resume. If ``out_path`` exists the run
    resumes (same parameters required; batch size may differ, but only the
    same batch size gives a bit-identical file).

    With ``cluster``, the images are extracted in shards of ``shard_images``
    (default 4096, rounded up to a multiple of ``batch_size``) by the cluster's
    workers (`catalogue.extraction.shards`); the file reads the same. A re-run
    must use the same shard size and batch size.
    """
    check_options(batch_size, workers, shard_images)
    device = resolve_device_for(cluster, device)
    dataset.strict = strict
    plan = plan_extraction(
        model, dataset, layers, reduce=reduce, keep_maps=keep_maps, limit=limit, autocast=autocast
    )
    out_path = Path(out_path) if cluster is None else Path(out_path).resolve()
    runtime = _runtime(cluster, device, batch_size=batch_size, workers=workers, strict=strict)
    finished = _finished(out_path, plan, runtime, sharded=cluster is not None)
    if finished is not None:
        return finished
    started = time.perf_counter()
    if cluster is None:
        resumed_from, n_new = extract_span_counted(
            model, dataset, plan, out_path, range(plan.n_images),
            reduce=reduce, device=device, batch_size=batch_size, workers=workers,
            autocast=autocast, chunk_rows=chunk_rows, runtime=runtime, on_progress=on_progress,
        )  # fmt: skip
    else:
        context = ShardContext(
            model=ModelHandle.of(model),
            dataset=dataset,
            plan=plan,
            reduce=reduce,
            device=device,
            batch_size=batch_size,
            workers=workers,
            autocast=autocast,
            chunk_rows=chunk_rows,
            runtime=runtime,
        )
        sharded = extract_shards(
            cluster, context, out_path, shard_images=shard_images or DEFAULT_SHARD_IMAGES,
            on_progress=on_progress,
        )  # fmt: skip
        resumed_from, n_new, runtime = sharded.resumed_from, sharded.n_new, sharded.runtime
    seconds = time.perf_counter() - started
    with ActivationStore.open(out_path) as store:
        return summarise(
            store, plan, runtime, resumed_from=resumed_from, n_new=n_new, seconds=seconds
        )


def _runtime(cluster: Cluster | None, device: str, **options: Any) -> dict[str, Any]:
    """What the file and the run record about how (not what) it was extracted."""
    if cluster is None:
        return {"device": device, **options}
    return {"device": "cuda" if cluster.uses_gpus(device) else "cpu", **options} | (
        cluster.describe()
    )


def _finished(
    out_path: Path, plan: ExtractionPlan, runtime: dict[str, Any], *, sharded: bool
) -> ExtractionSummary | None:
    """The summary of a complete file of this run at ``out_path`` (None: there is none).

    A partial one-process file cannot be continued in shards (its bands are not shards)."""
    if not out_path.exists():
        return None
    with ActivationStore.open(out_path) as existing:
        compare_params(out_path, existing.params, plan.params)
        if existing.is_complete:
            return summarise(
                existing,
                plan,
                runtime if not sharded else existing.runtime,
                resumed_from=existing.n_complete,
                already_complete=True,
            )
        if sharded:
            raise InputError(
                f"{out_path} holds an unfinished one-process extraction; resume it without "
                "a cluster, or delete it.",
                argument="cluster",
            )
    return None
