"""`dissect`: run a model over a probe set and label the units of its conv layers.

The model is borrowed through `catalogue.models.prepared` (on the device, in
eval mode, back as it was given afterwards); only the requested nodes are
computed, and only one batch of maps and masks is in memory at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from PIL import Image

from catalogue.config import resolve_device
from catalogue.dissection.labels import LayerDissection
from catalogue.dissection.passes import ProbePasses, label_layers
from catalogue.errors import InputError, UnitcatError
from catalogue.measures import DISSECTION_QUANTILE, IOU_DETECTOR_THRESHOLD
from catalogue.models import ModelInfo, PreparedModel, prepared, require_model_info
from catalogue.probe import ProbeSet


def feature_extractor(ready: PreparedModel, layer_names: Sequence[str]) -> torch.nn.Module:
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
    quantile: float = DISSECTION_QUANTILE,
    iou_threshold: float = IOU_DETECTOR_THRESHOLD,
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
    done = 0

    def count(images: int) -> None:
        nonlocal done
        done += images
        if progress is not None:
            progress(done, 2 * n)

    with prepared(model, device=dev) as ready:
        passes = ProbePasses(
            feature_extractor(ready, layer_names), tuple(layer_names), probe, transform, dev,
            batch_size, num_workers,
        )  # fmt: skip
        topk = passes.top_activations(n, quantile, count)
        tallies = passes.tallies({name: topk[name].kth_largest() for name in layer_names}, count)
    return label_layers(tallies, probe, quantile, iou_threshold=iou_threshold, top_n=top_n)
