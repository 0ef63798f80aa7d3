"""The forward loop: a model over a span of a dataset's images, appended to a store.

`extract_span` writes images ``span`` into one store file — the whole run's
file on one machine, or one shard's on a cluster worker — created, resumed
from its last complete band, or left alone when complete. Every image is
computed in the batch an uninterrupted one-process run computes it in (a span
starts at a multiple of the batch size, a resume at the batch boundary that
holds the first missing image), so every path gives the same values.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from catalogue.config import resolve_device
from catalogue.data import Batch, ImageDataset, collate_samples
from catalogue.errors import InputError
from catalogue.extraction.plan import ExtractionPlan, compare_params, layer_specs
from catalogue.models import LayerInfo, ModelInfo, graph_nodes, logits_of, prepared
from catalogue.store import DEFAULT_CHUNK_ROWS, ActivationStore


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


def _autocast_context(device: str, enabled: bool) -> contextlib.AbstractContextManager[Any]:
    if not enabled:
        return contextlib.nullcontext()
    dtype = torch.float16 if device == "cuda" else torch.bfloat16
    return torch.autocast(device_type=device, dtype=dtype)


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
    """Extract dataset items ``span`` into the store at ``out_path``; the number of rows added.

    The store has the run's layout and parameters; it is created, or resumed
    from its last complete band, or left alone when complete. ``span`` must
    start at a multiple of ``batch_size``, so that every item is computed in
    the batch a one-process run computes it in (identical values).
    ``on_progress(n_done, n_items)`` counts this span's items (rows and skips),
    including those done before a resume.
    """
    return extract_span_counted(
        model, dataset, plan, out_path, span, reduce=reduce, device=device,
        batch_size=batch_size, workers=workers, autocast=autocast, chunk_rows=chunk_rows,
        runtime=runtime, on_progress=on_progress,
    )[1]  # fmt: skip


def extract_span_counted(
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
) -> tuple[int, int]:
    """Extract dataset items ``span`` into the store at ``out_path``: (rows complete when it
    began, after a damaged last band was dropped; rows added).

    The store has the run's layout and parameters; it is created, or resumed
    from its last complete band, or left alone when complete. ``span`` must
    start at a multiple of ``batch_size``, so that every item is computed in
    the batch a one-process run computes it in (identical values).
    ``on_progress(n_done, n_items)`` counts this span's items (rows and skips),
    including those done before a resume.
    """
    if span.start % batch_size:
        raise InputError(f"a shard must start at a multiple of the batch size, not {span.start}.")
    out_path = Path(out_path)
    device = resolve_device(device)
    if out_path.exists():
        with ActivationStore.open(out_path) as existing:
            compare_params(out_path, existing.params, plan.params)
            if existing.is_complete:
                return existing.n_complete, 0
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
        resumed_from = store.n_complete
        progress(start, span.stop)
        n_new = _run_loop(
            model, dataset, store, plan.layers, plan.kept_maps, start, span.stop,
            reduce=reduce, device=device, batch_size=batch_size, workers=workers,
            autocast=autocast, on_progress=progress,
        )  # fmt: skip
        store.finish(n_consumed=span.stop)
        return resumed_from, n_new
    finally:
        store.close()


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
