"""Network dissection on a Ray cluster: probe-image shards as tasks, their tallies merged.

Two rounds of tasks over the same shards of the probe set
(`catalogue.dissection.passes`): each shard's k largest activations per
unit, merged here into the exact thresholds T_k; then each shard's IoU tally
at those thresholds, summed here. Shards start at multiples of the batch
size, so every probe image is computed in the batch a one-process run
computes it in, and the labels equal the one-process ones.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from PIL import Image

from catalogue.cluster.handles import ModelHandle
from catalogue.cluster.session import Cluster
from catalogue.cluster.tasks import Report, run_tasks
from catalogue.config import resolve_device
from catalogue.dissection.driver import feature_extractor
from catalogue.dissection.labels import LayerDissection
from catalogue.dissection.passes import ProbePasses, label_layers, new_tally
from catalogue.dissection.thresholds import RunningTopK
from catalogue.errors import InputError
from catalogue.measures import IOU_ABOVE
from catalogue.models import ModelInfo, prepared, require_model_info
from catalogue.probe import ProbeSet


@dataclass(frozen=True)
class DissectContext:
    """What every dissection task shares (sent to the workers once per round)."""

    model: ModelHandle
    layer_names: tuple[str, ...]
    probe: ProbeSet
    transform: Callable[[Image.Image], torch.Tensor] | None
    device: str | None
    batch_size: int
    num_workers: int
    n_images: int
    quantile: float
    thresholds: Mapping[str, np.ndarray] | None = None


def _passes(context: DissectContext, items: range, run: Callable[[ProbePasses], Any]) -> Any:
    model = context.model.load()
    device = resolve_device(context.device)
    transform = context.transform if context.transform is not None else model.transform
    with prepared(model, device=device) as ready:
        extractor = feature_extractor(ready, context.layer_names)
        passes = ProbePasses(
            extractor, context.layer_names, context.probe, transform, device,
            context.batch_size, context.num_workers, items,
        )  # fmt: skip
        return run(passes)


def _counter(progress: Report) -> Callable[[int], None]:
    done = 0

    def count(images: int) -> None:
        nonlocal done
        done += images
        progress(done)

    return count


def top_shard(
    context: DissectContext, items: range, progress: Report
) -> dict[str, tuple[int, np.ndarray]]:
    """Pass one on a shard (a task): per layer, k and each unit's k largest values among these images."""

    def run(passes: ProbePasses) -> dict[str, tuple[int, np.ndarray]]:
        topk = passes.top_activations(context.n_images, context.quantile, _counter(progress))
        return {name: (t.k, t.values().cpu().numpy()) for name, t in topk.items()}

    return _passes(context, items, run)


def tally_shard(context: DissectContext, items: range, progress: Report) -> dict[str, Any]:
    """Pass two on a shard (a task): per layer, the state of its IoU tally at the thresholds."""
    thresholds = context.thresholds or {}

    def run(passes: ProbePasses) -> dict[str, Any]:
        given = {name: torch.as_tensor(thresholds[name]) for name in context.layer_names}
        tallies = passes.tallies(given, _counter(progress))
        return {name: tally.state() for name, tally in tallies.items()}

    return _passes(context, items, run)


def probe_shards(n_images: int, batch_size: int, n_slots: int) -> list[range]:
    """About two shards per concurrent task, each starting at a multiple of ``batch_size``."""
    size = -(-n_images // (2 * n_slots))
    size = max(batch_size, -(-size // batch_size) * batch_size)
    return [range(s, min(s + size, n_images)) for s in range(0, n_images, size)]


def dissect_on_cluster(
    cluster: Cluster,
    model: ModelInfo,
    layer_names: Sequence[str],
    probe: ProbeSet,
    *,
    transform: Callable[[Image.Image], torch.Tensor] | None = None,
    batch_size: int = 32,
    device: str | None = "auto",
    quantile: float = 0.005,
    iou_threshold: float = IOU_ABOVE.value,
    top_n: int = 5,
    num_workers: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, LayerDissection]:
    """`catalogue.dissection.dissect` on ``cluster``: same arguments, same result (module docstring)."""
    model = require_model_info(model)
    n = len(probe)
    if n == 0:
        raise InputError(
            f"the probe set {probe.directory} has no images (check split and categories)."
        )
    if not layer_names:
        raise InputError("name at least one layer to dissect.")
    shards = probe_shards(n, batch_size, cluster.slots)
    context = DissectContext(
        ModelHandle.of(model), tuple(layer_names), probe, transform, device, batch_size,
        num_workers, n, quantile,
    )  # fmt: skip

    def report(offset: int) -> Callable[[Mapping[int, int]], None]:
        def on_progress(done: Mapping[int, int]) -> None:
            if progress is not None:
                progress(offset + sum(done.values()), 2 * n)

        return on_progress

    cluster.uses_gpus(device)  # refuses --device cuda on a cluster without GPUs
    tops = run_tasks(cluster, top_shard, context, shards, on_progress=report(0))
    thresholds = {}
    for name in layer_names:
        k = tops[0][name][0]
        merged = RunningTopK(k)
        for top in tops:
            merged.add(torch.tensor(top[name][1]))
        thresholds[name] = merged.kth_largest().numpy()
    states = run_tasks(
        cluster,
        tally_shard,
        replace(context, thresholds=thresholds),
        shards,
        on_progress=report(n),
    )
    tallies = {}
    for name in layer_names:
        tallies[name] = new_tally(torch.from_numpy(thresholds[name]), probe, "cpu")
        for state in states:
            tallies[name].merge(state[name])
    if progress is not None:
        progress(2 * n, 2 * n)
    return label_layers(tallies, probe, quantile, iou_threshold=iou_threshold, top_n=top_n)
