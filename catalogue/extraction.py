"""The extraction loop: images → one value per image and unit → the HDF5 store.

What is stored follows the object-detector paper's protocol (DESIGN.md,
"The measures"): a conv unit is reduced to one value per image by the spatial
maximum (default) or mean, an fc unit is stored as is; labels, predictions and
a correct flag are kept so that scoring can use only correctly classified
images. Spatial maps of conv layers can be kept too (float16) for dissection.

Why it is resumable: an ImageNet pass takes hours. The order is fixed (no
shuffling), the store advances its complete-row count only after a flushed
band, and a re-run with the same parameters restarts at the batch boundary
that contains the first missing image and drops the rows it already has, so
every image is computed in the same batch as in an uninterrupted run and the
file ends up identical. Different parameters are refused instead of mixed.

The model is a `catalogue.models.ModelInfo`, borrowed through
`catalogue.models.prepared`: it runs on the device, channels-last and in eval
mode, and the caller gets it back as given, also when the run fails.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from catalogue.config import resolve_device
from catalogue.data import Batch, ImageDataset, collate_samples
from catalogue.errors import ConfigError, InputError
from catalogue.models import (
    LayerInfo,
    ModelInfo,
    default_layers,
    graph_nodes,
    list_layers,
    logits_of,
    prepared,
)
from catalogue.store import DEFAULT_CHUNK_ROWS, ActivationStore, LayerSpec

REDUCTIONS = ("max", "mean")
COMPARED_PARAMS = (
    "model",
    "architecture",
    "weights",
    "checksum",
    "dataset",
    "dataset_source",
    "n_items",
    "layers",
    "reduce",
    "keep_maps",
    "autocast",
    "input_size",
)


@dataclass
class ExtractionSummary:
    """What one extraction run produced (the lead's ``run`` row is filled from this)."""

    path: Path
    n_images: int
    n_skipped: int
    skipped: list[tuple[str, str]]
    accuracy: float
    images_per_second: float
    seconds: float
    layers: list[LayerInfo]
    resumed_from: int
    params: dict[str, Any]
    runtime: dict[str, Any] = field(default_factory=dict)
    already_complete: bool = False


def reduce_spatial(tensor: torch.Tensor, how: str) -> torch.Tensor:
    """(B, C, H, W) → (B, C) by the spatial max or mean; (B, F) passes through. Always float32."""
    if tensor.ndim == 4:
        if how == "max":
            # A pooling window over the whole map: 20× faster than amax on channels-last tensors.
            tensor = torch.nn.functional.max_pool2d(tensor, kernel_size=tensor.shape[-2:]).flatten(
                1
            )
        else:
            tensor = tensor.float().mean(dim=(2, 3))
    return tensor.float()


def check_classes(model: ModelInfo, dataset: ImageDataset) -> None:
    """Refuse a dataset whose classes cannot be the model's outputs (before any work)."""
    n_out = model.n_outputs
    if (
        model.class_keys is not None
        and dataset.class_keys != model.class_keys
        and len(dataset.class_keys) == len(model.class_keys)
    ):
        raise InputError(
            f"dataset {dataset.name} has classes {dataset.class_keys[:3]} … but model {model.name} was "
            f"trained on {model.class_keys[:3]} …; use the matching dataset."
        )
    if dataset.n_classes != n_out:
        raise InputError(
            f"model {model.name} has {n_out} outputs but dataset {dataset.name} has {dataset.n_classes} "
            "classes; use a matching dataset, a class mapping file, or --num-classes."
        )


def run_params(
    model: ModelInfo,
    dataset: ImageDataset,
    layers: Sequence[LayerInfo],
    *,
    n_items: int,
    reduce: str,
    keep_maps: Sequence[str],
    autocast: bool,
) -> dict[str, Any]:
    """The parameters that define a run's content (compared when resuming)."""
    return {
        "model": model.name,
        "architecture": model.architecture,
        "weights": model.weights,
        "checksum": model.checksum,
        "dataset": dataset.name,
        "dataset_source": dataset.source,
        "n_items": n_items,
        "layers": [layer.name for layer in layers],
        "reduce": reduce,
        "keep_maps": list(keep_maps),
        "autocast": bool(autocast),
        "input_size": list(model.input_size),
    }


def _compare_params(out_path: Path, old: dict[str, Any], params: dict[str, Any]) -> None:
    differ = [k for k in COMPARED_PARAMS if old.get(k) != params.get(k)]
    if differ:
        raise InputError(
            f"{out_path} holds a run with different parameters ({', '.join(differ)}); "
            "re-run with the same ones to resume, or choose another output file."
        )


def check_runtime_options(batch_size: int, workers: int) -> None:
    if batch_size < 1:
        raise InputError(f"--batch-size must be at least 1, got {batch_size}.")
    if workers < 0:
        raise InputError(f"--workers must be 0 or more, got {workers}.")


def check_output(out_path: Path, params: dict[str, Any]) -> None:
    """Refuse an output path that cannot hold this run, before anything is written: a
    directory, a file of another run, a folder that cannot be created or written."""
    if out_path.is_dir():
        raise InputError(
            f"--out {out_path} is a directory; give a file name, e.g. {out_path / 'activations.h5'}."
        )
    if out_path.exists():
        with ActivationStore.open(out_path) as existing:
            _compare_params(out_path, existing.params, params)
        return
    try:
        out_path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"cannot create the folder {out_path.parent} ({exc.strerror or exc}); "
            "choose another --out or UNITCAT_HOME."
        ) from exc
    if not os.access(out_path.parent, os.W_OK):
        raise ConfigError(
            f"cannot write to {out_path.parent} (permission denied or read-only); "
            "choose another --out or UNITCAT_HOME."
        )


def _autocast_context(device: str, enabled: bool) -> contextlib.AbstractContextManager[Any]:
    if not enabled:
        return contextlib.nullcontext()
    dtype = torch.float16 if device == "cuda" else torch.bfloat16
    return torch.autocast(device_type=device, dtype=dtype)


@dataclass(frozen=True)
class ExtractionPlan:
    """What an extraction will do, checked before anything runs or is recorded."""

    layers: list[LayerInfo]
    kept_maps: list[str]
    n_images: int
    params: dict[str, Any]


def plan_extraction(
    model: ModelInfo,
    dataset: ImageDataset,
    layers: Sequence[str] | None,
    *,
    reduce: str = "max",
    keep_maps: bool | Sequence[str] = False,
    limit: int | None = None,
    autocast: bool = False,
) -> ExtractionPlan:
    """Validate a request (classes, layer names, reduction, maps, limit) and derive its parameters.

    Raises the one-line errors for bad input (unknown layer, class mismatch,
    empty dataset) before any file or catalogue row is written.
    """
    if reduce not in REDUCTIONS:
        raise InputError(f"--reduce must be one of {', '.join(REDUCTIONS)}, got {reduce!r}.")
    if limit is not None and limit < 0:
        raise InputError(f"--limit must be 0 or more, got {limit}.")
    check_classes(model, dataset)
    names = list(layers) if layers else default_layers(model)
    infos = list_layers(model, layers=names)
    kept = _kept_maps(infos, keep_maps)
    n_total = len(dataset) if limit is None else min(limit, len(dataset))
    if n_total == 0:
        raise InputError(f"dataset {dataset.name} has no images to extract (limit {limit}).")
    params = run_params(
        model, dataset, infos, n_items=n_total, reduce=reduce, keep_maps=kept, autocast=autocast
    )
    return ExtractionPlan(layers=infos, kept_maps=kept, n_images=n_total, params=params)


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
    """
    check_runtime_options(batch_size, workers)
    out_path = Path(out_path)
    dataset.strict = strict
    plan = plan_extraction(
        model, dataset, layers, reduce=reduce, keep_maps=keep_maps, limit=limit, autocast=autocast
    )
    infos, kept, n_total, params = plan.layers, plan.kept_maps, plan.n_images, plan.params
    device = resolve_device(device)
    runtime = {"device": device, "batch_size": batch_size, "workers": workers, "strict": strict}
    specs = layer_specs(infos, kept, reduce)
    if out_path.exists():
        with ActivationStore.open(out_path) as existing:
            _compare_params(out_path, existing.params, params)
            if existing.is_complete:
                summary = _summary(existing, infos, params, runtime, existing.n_complete, 0, 0.0)
                summary.already_complete = True
                return summary
        store = ActivationStore.open_append(out_path)
    else:
        store = ActivationStore.create(
            out_path,
            specs,
            class_keys=dataset.class_keys,
            class_names=dataset.class_names,
            params=params,
            runtime=runtime,
            chunk_rows=chunk_rows,
        )
    try:
        start = store.n_consumed
        resumed_from = store.n_complete
        if on_progress is not None:
            on_progress(start, n_total)
        started = time.perf_counter()
        n_new = _run_loop(
            model, dataset, store, infos, kept, start, n_total,
            reduce=reduce, device=device, batch_size=batch_size, workers=workers,
            autocast=autocast, on_progress=on_progress,
        )  # fmt: skip
        store.finish(n_consumed=n_total)
        seconds = time.perf_counter() - started
        return _summary(store, infos, params, runtime, resumed_from, n_new, seconds)
    finally:
        store.close()


def layer_specs(infos: Sequence[LayerInfo], kept: Sequence[str], reduce: str) -> list[LayerSpec]:
    """The store's layers for an extraction of ``infos`` (maps of the ``kept`` conv layers)."""
    return [
        LayerSpec(
            name=info.name,
            n_units=info.n_units,
            kind=info.kind,
            output_shape=info.output_shape,
            position=info.position,
            reduce=reduce if info.kind == "conv" else "none",
            map_shape=info.map_shape if info.name in kept else None,
        )
        for info in infos
    ]


def extract_span(
    model: ModelInfo,
    dataset: ImageDataset,
    plan: ExtractionPlan,
    out_path: str | Path,
    span: range,
    *,
    reduce: str,
    device: str,
    batch_size: int,
    workers: int = 0,
    autocast: bool = False,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    runtime: dict[str, Any] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> int:
    """Extract dataset items ``span`` into their own store at ``out_path`` (one shard of a run).

    The shard store has the run's layout and parameters; it is created, or
    resumed from its last complete band, or left alone when complete. ``span``
    must start at a multiple of ``batch_size``, so that every item is computed
    in the batch a one-process run computes it in (identical values).
    ``on_progress(n_done, n_items)`` counts this span's items. Returns the
    number of rows added.
    """
    if span.start % batch_size:
        raise InputError(f"a shard must start at a multiple of the batch size, not {span.start}.")
    out_path = Path(out_path)
    device = resolve_device(device)
    if out_path.exists():
        with ActivationStore.open(out_path) as existing:
            _compare_params(out_path, existing.params, plan.params)
            if existing.is_complete:
                return 0
        store = ActivationStore.open_append(out_path)
    else:
        store = ActivationStore.create(
            out_path,
            layer_specs(plan.layers, plan.kept_maps, reduce),
            class_keys=dataset.class_keys,
            class_names=dataset.class_names,
            params=plan.params,
            runtime=runtime,
            chunk_rows=chunk_rows,
        )

    def progress(done: int, _total: int) -> None:
        if on_progress is not None:
            on_progress(done - span.start, len(span))

    try:
        start = max(span.start, store.n_consumed)
        progress(start, span.stop)
        n_new = _run_loop(
            model, dataset, store, plan.layers, plan.kept_maps, start, span.stop,
            reduce=reduce, device=device, batch_size=batch_size, workers=workers,
            autocast=autocast, on_progress=progress,
        )  # fmt: skip
        store.finish(n_consumed=span.stop)
        return n_new
    finally:
        store.close()


def _kept_maps(infos: Sequence[LayerInfo], keep_maps: bool | Sequence[str]) -> list[str]:
    conv = [i.name for i in infos if i.kind == "conv"]
    if keep_maps is True:
        return conv
    if not keep_maps:
        return []
    wanted = list(keep_maps)
    bad = [name for name in wanted if name not in conv]
    if bad:
        raise InputError(
            f"maps can be kept only for extracted conv layers ({', '.join(conv) or 'none'}), not {bad}."
        )
    return [name for name in conv if name in wanted]


def _run_loop(
    model: ModelInfo,
    dataset: ImageDataset,
    store: ActivationStore,
    infos: Sequence[LayerInfo],
    kept: Sequence[str],
    start: int,
    n_total: int,
    *,
    reduce: str,
    device: str,
    batch_size: int,
    workers: int,
    autocast: bool,
    on_progress: Callable[[int, int], None] | None,
) -> int:
    """Forward every remaining batch and append it; returns the number of new rows.

    The model runs on ``device``, channels-last (the fast layout for
    convolutions on GPUs and for oneDNN on CPUs), and comes back as it was given.
    """
    cuda = device == "cuda"
    last_node = graph_nodes(model)[-1]
    # Restart at the batch boundary holding the first missing item: same batches as an uninterrupted run.
    first = (start // batch_size) * batch_size
    subset = torch.utils.data.Subset(dataset, range(first, n_total))
    loader = torch.utils.data.DataLoader(
        subset,
        batch_size=batch_size,
        shuffle=False,
        num_workers=workers,
        collate_fn=collate_samples,
        pin_memory=cuda,
        persistent_workers=False,
    )
    n_new = 0
    with prepared(model, device=device, channels_last=True) as ready:
        extractor = ready.extractor([i.name for i in infos])
        with torch.inference_mode(), _autocast_context(device, autocast):
            for batch in _batches(loader):
                for key, reason, index in batch.skipped:
                    if index >= start:
                        store.add_skipped(key, reason, index)
                done = _last_index(batch) + 1
                if len(batch):
                    n_new += _forward_and_append(
                        extractor,
                        batch,
                        store,
                        infos,
                        kept,
                        start,
                        last_node,
                        reduce=reduce,
                        device=device,
                    )
                if on_progress is not None:
                    on_progress(min(done, n_total), n_total)
    return n_new


def _batches(loader: torch.utils.data.DataLoader) -> Iterator[Batch]:
    """The loader's batches; an InputError from a worker process comes back as its own one line."""
    try:
        yield from loader
    except InputError as exc:
        lines = str(exc).strip().splitlines()
        if len(lines) > 1:  # DataLoader's re-raise carries the worker's traceback
            raise InputError(lines[-1].split("InputError: ", 1)[-1]) from None
        raise


def _last_index(batch: Batch) -> int:
    indices = [int(i) for i in batch.indices] + [s[2] for s in batch.skipped]
    return max(indices)


def _forward_and_append(
    extractor: torch.nn.Module,
    batch: Batch,
    store: ActivationStore,
    infos: Sequence[LayerInfo],
    kept: Sequence[str],
    start: int,
    last_node: str,
    *,
    reduce: str,
    device: str,
) -> int:
    images = batch.images.to(device, non_blocking=True).contiguous(
        memory_format=torch.channels_last
    )
    outputs = extractor(images)
    mask = (batch.indices >= start).numpy()
    if not mask.any():
        return 0
    # Only the first batch after a resume holds rows the file already has.
    keep = slice(None) if mask.all() else mask
    acts = {i.name: reduce_spatial(outputs[i.name], reduce).cpu().numpy()[keep] for i in infos}
    maps = {name: outputs[name].to(torch.float16).cpu().numpy()[keep] for name in kept}
    predictions = logits_of(outputs, last_node).argmax(dim=1).cpu().numpy()[keep]
    store.append(
        acts,
        labels=batch.labels.numpy()[keep],
        predictions=predictions,
        image_keys=[k for k, ok in zip(batch.keys, mask, strict=True) if ok],
        source_index=batch.indices.numpy()[keep],
        maps=maps or None,
    )
    return int(mask.sum())


def _summary(
    store: ActivationStore,
    infos: Sequence[LayerInfo],
    params: dict[str, Any],
    runtime: dict[str, Any],
    resumed_from: int,
    n_new: int,
    seconds: float,
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
        layers=list(infos),
        resumed_from=resumed_from,
        params=params,
        runtime=runtime,
    )
