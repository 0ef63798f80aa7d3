"""Where a conv unit fires in its top images: its spatial activation map on each of them.

A conv unit's catalogue activation is its spatial map reduced to one number (the
extraction's ``reduce``: the map's max by default); the map itself says *where* in the
image the unit fires, which dissection uses over the probe set (Bau et al. 2017) and a
reader wants over the unit's own top images. The maps come from the extraction's store
when it kept them (``keep_maps``), else from a forward pass of the run's own network
over just those images (`catalogue.models.prepared`), the same computation the
extraction did; either way each map reduced as the run reduced it gives back the stored
activation, which the caller can check.

Nothing is recorded: this is a read of the run, recomputed where the store holds no maps.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from catalogue.ablation.feeds import dataset_indices
from catalogue.data import ImageDataset
from catalogue.errors import InputError
from catalogue.models import ModelInfo, prepared
from catalogue.pipeline.reload import check_same_weights, dataset_for_run, recorded_model
from catalogue.pipeline.source import extraction_source
from catalogue.query.top_images import TopImages, top_images

#: Images per forward pass of a recomputation.
BATCH = 32


@dataclass(frozen=True)
class UnitMaps:
    """A conv unit's spatial maps on its top images (rank order).

    ``maps``: (n, H, W) float32 at the layer's resolution. ``inputs``: the images as the
    network saw them, (n, H_in, W_in, 3) floats in [0, 1] (the transform's geometry, its
    normalisation undone for display), or None when the maps were read from the store.
    ``reduce``: how the run reduced a map to the stored activation (max or mean).
    """

    top: TopImages
    maps: np.ndarray
    inputs: np.ndarray | None
    source: str  # "store" or "model"
    reduce: str

    def reduced(self) -> np.ndarray:
        """Each map reduced as the extraction reduced it: the stored activations again."""
        flat = self.maps.reshape(self.maps.shape[0], -1).astype(np.float64)
        return flat.max(axis=1) if self.reduce == "max" else flat.mean(axis=1)


@dataclass(frozen=True)
class RunNetwork:
    """An extraction run's network and images, loaded again (for a forward pass)."""

    model: ModelInfo
    images: ImageDataset


def run_network(engine: Any, extract_run_id: int) -> RunNetwork:
    """The extraction run's own network and images, as the catalogue recorded them
    (`catalogue.pipeline.reload`); refused when the weights are not the run's."""
    source = extraction_source(engine, extract_run_id, then="draw the heat maps of")
    with source.store() as store:
        keys, names, n_classes = store.class_keys, store.class_names, store.n_classes
    model = recorded_model(engine, source.run.model_id, source.params, n_classes)
    check_same_weights(model, source.params, source.run.id)
    images = dataset_for_run(source.params, model, class_keys=keys, class_names=names)
    return RunNetwork(model, images)


def unit_top_maps(
    engine: Any,
    unit_id: int,
    score_run_id: int,
    *,
    limit: int | None = None,
    network: RunNetwork | Callable[[int], RunNetwork] | None = None,
    device: str | None = "cpu",
) -> UnitMaps:
    """The spatial maps of a conv unit on its stored top images (the first ``limit`` ranks).

    The store's maps when it kept them; else a forward pass of ``network`` (the run's
    network and images, or a loader of them by extraction run id; None: `run_network`,
    the catalogue loads them again by itself). Either way the weights must be the run's.
    """
    top = top_images(engine, unit_id, score_run_id, limit=limit)
    if top.layer_kind != "conv":
        raise InputError(f"layer {top.layer} is fully connected: its units have no spatial maps.")
    if top.extract_run_id is None:
        raise InputError(f"scoring run {score_run_id} has no extraction run to read maps from.")
    source = extraction_source(engine, top.extract_run_id, then="draw the heat maps of")
    with source.store() as store:
        reduce = str(store.layer_info(top.layer)["reduce"])
        if top.layer in store.map_layer_names:
            rows = [
                store.read_maps(top.layer, rows=[int(r)], units=[top.unit_index])[0, 0]
                for r in top.image_index
            ]
            maps = np.stack(rows) if rows else np.zeros((0, 1, 1))
            return UnitMaps(top, maps.astype(np.float32), None, "store", reduce)
    if network is None:
        loaded = run_network(engine, top.extract_run_id)
    elif isinstance(network, RunNetwork):
        loaded = network
    else:
        loaded = network(top.extract_run_id)
    check_same_weights(loaded.model, source.params, source.run.id)
    indices = dataset_indices(loaded.images, top.image_keys)
    maps, inputs = _forward_maps(
        loaded.model, loaded.images, indices, top.layer, top.unit_index, device
    )
    return UnitMaps(top, maps, inputs, "model", reduce)


def _forward_maps(
    model: ModelInfo,
    dataset: ImageDataset,
    indices: Sequence[int],
    layer: str,
    unit: int,
    device: str | None,
) -> tuple[np.ndarray, np.ndarray]:
    """The unit's maps and the network's view of each image, a batch at a time."""
    maps: list[np.ndarray] = []
    inputs: list[np.ndarray] = []
    with prepared(model, device=device) as ready, torch.inference_mode():
        extractor = ready.extractor([layer], with_logits=False)
        for start in range(0, len(indices), BATCH):
            batch = [dataset[int(i)] for i in indices[start : start + BATCH]]
            bad = [s.key for s in batch if s.image is None]
            if bad:
                raise InputError(f"image {bad[0]} of the run cannot be read here.")
            x = torch.stack([s.image for s in batch])  # type: ignore[misc]
            out = extractor(x.to(ready.device))[layer]
            maps.append(out[:, unit].float().cpu().numpy())
            inputs.append(displayable(x, model.transform))
    if not maps:
        h, w = model.input_size
        return np.zeros((0, 1, 1), np.float32), np.zeros((0, h, w, 3), np.float32)
    return np.concatenate(maps), np.concatenate(inputs)


def _normalisation(transform: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """The per-channel mean and std a transform normalises with, when it says so."""
    from catalogue.models.info import IMAGENET_MEAN, IMAGENET_STD, ImageNetTransform, RGBFirst

    inner = transform.inner if isinstance(transform, RGBFirst) else transform
    if isinstance(inner, ImageNetTransform):
        return np.asarray(IMAGENET_MEAN), np.asarray(IMAGENET_STD)
    mean, std = getattr(inner, "mean", None), getattr(inner, "std", None)
    if mean is None or std is None:
        return None
    return np.atleast_1d(np.asarray(mean, float)), np.atleast_1d(np.asarray(std, float))


def displayable(x: torch.Tensor, transform: Any) -> np.ndarray:
    """Model inputs (B, C, H, W) as images (B, H, W, 3) in [0, 1]: the normalisation undone
    when the transform names it, else each image stretched to [0, 1]."""
    array = x.detach().float().cpu().numpy()
    norm = _normalisation(transform)
    if norm is not None and norm[0].size in (1, array.shape[1]):
        mean, std = norm
        array = array * std.reshape(1, -1, 1, 1) + mean.reshape(1, -1, 1, 1)
    else:
        low = array.min(axis=(1, 2, 3), keepdims=True)
        span = array.max(axis=(1, 2, 3), keepdims=True) - low
        array = (array - low) / np.where(span > 0, span, 1.0)
    if array.shape[1] == 1:
        array = np.repeat(array, 3, axis=1)
    return np.clip(array.transpose(0, 2, 3, 1), 0.0, 1.0).astype(np.float32)
