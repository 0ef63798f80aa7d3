"""`dissect`: run a model over a probe set and label the units of its conv layers.

The model is borrowed through `catalogue.models.prepared` (on the device, in
eval mode, back as it was given afterwards); only the requested nodes are
computed, and only one batch of maps and masks is in memory at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from PIL import Image

from catalogue.config import resolve_device
from catalogue.dissection.inputs import as_maps
from catalogue.dissection.labels import LayerDissection, label_units
from catalogue.dissection.tally import IoUTally
from catalogue.dissection.thresholds import RunningTopK, threshold_rank
from catalogue.errors import InputError, UnitcatError
from catalogue.measures import IOU_ABOVE
from catalogue.models import ModelInfo, PreparedModel, prepared, require_model_info
from catalogue.probe import ProbeSet


class _ProbeImages(torch.utils.data.Dataset):
    """Probe images (and optionally masks) as model inputs, for a DataLoader."""

    def __init__(
        self, probe: ProbeSet, transform: Callable[[Image.Image], torch.Tensor], with_masks: bool
    ):
        self.probe, self.transform, self.with_masks = probe, transform, with_masks

    def __len__(self) -> int:
        return len(self.probe)

    def __getitem__(self, i: int) -> tuple[torch.Tensor | None, Any]:
        # A bad probe file is returned, not raised, so that a worker process hands the
        # main process the one-line error rather than a wrapped traceback.
        try:
            x = self.transform(Image.fromarray(self.probe.image(i)))
            if not isinstance(x, torch.Tensor) or x.ndim != 3:
                raise InputError("the transform must map a PIL RGB image to a C × H × W tensor.")
            return x, (self.probe.masks(i) if self.with_masks else None)
        except UnitcatError as e:
            return None, e


def _collate(batch: list[tuple[torch.Tensor | None, Any]]) -> tuple[torch.Tensor | None, list[Any]]:
    errors = [m for x, m in batch if x is None]
    if errors:
        return None, errors[:1]
    shapes = {tuple(x.shape) for x, _ in batch if x is not None}
    if len(shapes) > 1:
        error = InputError(
            f"the transform gave inputs of different sizes {sorted(shapes)}; resize to one size."
        )
        return None, [error]
    return torch.stack([x for x, _ in batch if x is not None]), [m for _, m in batch]


def _feature_extractor(ready: PreparedModel, layer_names: Sequence[str]) -> torch.nn.Module:
    """Only the requested nodes, named as `catalogue.models` names them everywhere else."""
    if not layer_names:
        raise InputError("name at least one layer to dissect.")
    try:
        return ready.extractor(layer_names, with_logits=False)
    except UnitcatError:
        raise
    except Exception as e:  # torch.fx could not trace the model (data-dependent control flow)
        raise InputError(
            f"the model cannot be traced by torch.fx ({type(e).__name__}: {e}); "
            "dissect a model whose forward has no data-dependent branches."
        ) from None


def dissect(
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

    Returns:
        For each layer name, its `LayerDissection`.
    """
    model = require_model_info(model)
    n = len(probe)
    if n == 0:
        raise InputError(
            f"the probe set {probe.directory} has no images (check split and categories)."
        )
    transform = transform if transform is not None else model.transform
    dev = resolve_device(device)
    with prepared(model, device=dev) as ready:
        extractor = _feature_extractor(ready, layer_names)
        return _two_passes(
            extractor, layer_names, probe, transform, dev, batch_size, num_workers,
            quantile=quantile, iou_threshold=iou_threshold, top_n=top_n, progress=progress,
        )  # fmt: skip


def _two_passes(
    extractor: torch.nn.Module,
    layer_names: Sequence[str],
    probe: ProbeSet,
    transform: Callable[[Image.Image], torch.Tensor],
    dev: str,
    batch_size: int,
    num_workers: int,
    *,
    quantile: float,
    iou_threshold: float,
    top_n: int,
    progress: Callable[[int, int], None] | None,
) -> dict[str, LayerDissection]:
    """Thresholds over the probe set, then the IoU tallies; then the labels."""
    n = len(probe)

    def batches(with_masks: bool) -> Iterator[tuple[dict[str, torch.Tensor], list[Any]]]:
        loader = torch.utils.data.DataLoader(
            _ProbeImages(probe, transform, with_masks),
            batch_size=batch_size,
            num_workers=num_workers,
            collate_fn=_collate,
        )
        with torch.inference_mode():
            for x, masks in loader:
                if x is None:
                    raise masks[0]
                out = extractor(x.to(dev))
                for name in layer_names:
                    if out[name].ndim != 4:
                        raise InputError(
                            f"layer {name!r} outputs shape {tuple(out[name].shape)}; dissection needs "
                            "convolutional feature maps (images × units × h × w)."
                        )
                yield out, masks

    done = 0
    topk: dict[str, RunningTopK] = {}
    for out, _ in batches(with_masks=False):
        for name in layer_names:
            m = as_maps(out[name], dev)
            if name not in topk:
                topk[name] = RunningTopK(threshold_rank(n * m.shape[2] * m.shape[3], quantile))
            topk[name].add(m.transpose(0, 1).reshape(m.shape[1], -1))
        done += next(iter(out.values())).shape[0]
        if progress is not None:
            progress(done, 2 * n)
    tallies = {
        name: IoUTally(
            topk[name].kth_largest(),
            len(probe.concepts),
            concept_category=probe.concept_category,
            n_categories=len(probe.categories),
            device=dev,
        )
        for name in layer_names
    }
    for out, masks in batches(with_masks=True):
        for name in layer_names:
            tallies[name].add(out[name], masks)
        done += len(masks)
        if progress is not None:
            progress(done, 2 * n)
    return {
        name: label_units(
            name,
            tallies[name].result(quantile),
            probe.concepts,
            iou_threshold=iou_threshold,
            top_n=top_n,
        )
        for name in layer_names
    }
