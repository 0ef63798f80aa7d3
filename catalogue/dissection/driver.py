"""`dissect`: run a model over a probe set and label the units of its conv layers.

One driver for one process and for a Ray cluster (``cluster``): the probe
images are cut into shards — all of them in one shard here, about two per
worker on a cluster — and two rounds of the same shard functions run over
them (`catalogue.cluster.map_items`): each shard's k largest activations per
unit, merged into the exact thresholds T_k, then each shard's IoU tally at
those thresholds, summed (`catalogue.dissection.passes`). Shards start at
multiples of the batch size, so every probe image is computed in the batch a
one-process run computes it in, and the labels are the same either way.

The model is borrowed through `catalogue.models.prepared` (on the device, in
eval mode, back as it was given afterwards); only the requested nodes are
computed, and only one batch of maps and masks is in memory at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from PIL import Image

from catalogue.cluster import Cluster, map_items, resolve_device_for
from catalogue.cluster.handles import LocalModel, ModelHandle, handle_for
from catalogue.cluster.tasks import Report
from catalogue.config import resolve_device
from catalogue.dissection.labels import LayerDissection
from catalogue.dissection.passes import ProbePasses, label_layers, new_tally
from catalogue.dissection.tally import IoUTally
from catalogue.dissection.thresholds import RunningTopK
from catalogue.errors import InputError, UnitcatError
from catalogue.measures import DISSECTION_QUANTILE, IOU_DETECTOR_THRESHOLD
from catalogue.models import ModelInfo, PreparedModel, prepared, require_model_info
from catalogue.probe import ProbeSet

#: concepts kept per unit, best IoU first
DEFAULT_TOP_N = 5


def feature_extractor(ready: PreparedModel, layer_names: Sequence[str]) -> torch.nn.Module:
    """Only the requested nodes, named as `catalogue.models` names them everywhere else."""
    try:
        return ready.extractor(layer_names, with_logits=False)
    except UnitcatError:
        raise
    except Exception as e:  # torch.fx could not trace the model (data-dependent control flow)
        raise InputError(
            f"the model cannot be traced by torch.fx ({type(e).__name__}: {e}); "
            "dissect a model whose forward has no data-dependent branches.",
            argument="model",
        ) from None


def dissect(
    model: ModelInfo,
    layer_names: Sequence[str],
    probe: ProbeSet,
    *,
    transform: Callable[[Image.Image], torch.Tensor] | None = None,
    batch_size: int = 32,
    device: str | None = "auto",
    quantile: float = DISSECTION_QUANTILE,
    iou_threshold: float = IOU_DETECTOR_THRESHOLD,
    top_n: int = DEFAULT_TOP_N,
    num_workers: int = 0,
    progress: Callable[[int, int], None] | None = None,
    cluster: Cluster | None = None,
) -> dict[str, LayerDissection]:
    """Network-dissect the named layers of `model` on a probe set.

    Runs the model twice over the probe images (inference mode): the first
    pass finds every unit's threshold, the second tallies intersections and
    unions; only the requested nodes are computed
    (torchvision's create_feature_extractor), and only one batch of maps and
    masks is in memory at a time.

    Args:
        model: the model (`catalogue.models.ModelInfo`; a bare module through
            `ModelInfo.from_module`). It runs on `device` in eval mode and
            comes back as it was given (`catalogue.models.prepared`).
        layer_names: feature-extraction node names of convolutional outputs
            (e.g. "features.11", conv5's ReLU, in AlexNet; "conv5" in the demo
            CNN); a module name selects its last node (`catalogue.models`).
        probe: an opened `ProbeSet`.
        transform: maps a PIL RGB probe image to the model's input tensor
            (C × H × W); default: the ModelInfo's transform (the weights'
            preprocessing).
        progress: called with (images done, total) over both passes (total = 2N).
        cluster: run the shards on this Ray cluster's workers (None: here).

    Returns:
        For each layer name, its `LayerDissection`.
    """
    model = require_model_info(model)
    n = len(probe)
    if n == 0:
        raise InputError(
            f"the probe set {probe.directory} has no images (check split and categories).",
            argument="probe",
        )
    if not layer_names:
        raise InputError("name at least one layer to dissect in layer_names.", argument="layers")
    device = resolve_device_for(cluster, device)
    shards = [range(n)] if cluster is None else probe_shards(n, batch_size, cluster.slots)
    context = DissectContext(
        model=handle_for(model, cluster),
        layer_names=tuple(layer_names),
        probe=probe,
        transform=transform,
        device=device,
        batch_size=batch_size,
        num_workers=num_workers,
        n_images=n,
        quantile=quantile,
    )

    reported = [0]

    def report(offset: int) -> Callable[[Mapping[int, int]], None]:
        def on_progress(done: Mapping[int, int]) -> None:
            reported[0] = offset + sum(done.values())
            if progress is not None:
                progress(reported[0], 2 * n)

        return on_progress

    tops = map_items(cluster, top_shard, context, shards, on_progress=report(0))
    thresholds = merged_thresholds(tops, layer_names)
    context = replace(context, thresholds=thresholds)
    states = map_items(cluster, tally_shard, context, shards, on_progress=report(n))
    tallies = summed_tallies(states, thresholds, probe)
    if progress is not None and reported[0] < 2 * n:  # a cluster's last reports may lag
        progress(2 * n, 2 * n)
    return label_layers(tallies, probe, quantile, iou_threshold=iou_threshold, top_n=top_n)


# ------------------------------------------------------------------- the shards


@dataclass(frozen=True)
class DissectContext:
    """What every shard of a dissection shares (sent to the workers once per round)."""

    model: ModelHandle | LocalModel
    layer_names: tuple[str, ...]
    probe: ProbeSet
    transform: Callable[[Image.Image], torch.Tensor] | None
    device: str | None
    batch_size: int
    num_workers: int
    n_images: int
    quantile: float
    thresholds: Mapping[str, np.ndarray] | None = None


def probe_shards(n_images: int, batch_size: int, n_slots: int) -> list[range]:
    """About two shards per concurrent task, each starting at a multiple of ``batch_size``."""
    size = -(-n_images // (2 * n_slots))
    size = max(batch_size, -(-size // batch_size) * batch_size)
    return [range(s, min(s + size, n_images)) for s in range(0, n_images, size)]


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
    """Pass one on a shard: per layer, k and each unit's k largest values among these images."""

    def run(passes: ProbePasses) -> dict[str, tuple[int, np.ndarray]]:
        topk = passes.top_activations(context.n_images, context.quantile, _counter(progress))
        return {name: (t.k, t.values().cpu().numpy()) for name, t in topk.items()}

    return _passes(context, items, run)


def tally_shard(context: DissectContext, items: range, progress: Report) -> dict[str, Any]:
    """Pass two on a shard: per layer, the state of its IoU tally at the thresholds."""
    thresholds = context.thresholds or {}

    def run(passes: ProbePasses) -> dict[str, Any]:
        given = {name: torch.as_tensor(thresholds[name]) for name in context.layer_names}
        tallies = passes.tallies(given, _counter(progress))
        return {name: tally.state() for name, tally in tallies.items()}

    return _passes(context, items, run)


def merged_thresholds(
    tops: Sequence[Mapping[str, tuple[int, np.ndarray]]], layer_names: Sequence[str]
) -> dict[str, np.ndarray]:
    """T_k per layer: the k-th largest of the shards' k largest values (that of all images)."""
    thresholds = {}
    for name in layer_names:
        merged = RunningTopK(tops[0][name][0])
        for top in tops:
            merged.add(torch.tensor(top[name][1]))
        thresholds[name] = merged.kth_largest().numpy()
    return thresholds


def summed_tallies(
    states: Sequence[Mapping[str, Any]], thresholds: Mapping[str, np.ndarray], probe: ProbeSet
) -> dict[str, IoUTally]:
    """Per layer, the tally over every shard: the shards' pixel counts added up."""
    tallies = {}
    for name, threshold in thresholds.items():
        tallies[name] = new_tally(torch.from_numpy(threshold), probe, "cpu")
        for state in states:
            tallies[name].merge(state[name])
    return tallies
