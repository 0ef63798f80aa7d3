"""A unit's least activating images, kept beside its most activating ones.

A 2-AFC trial of natural exemplars (Borowski et al. ICLR 2021; Zimmermann et al.
NeurIPS 2021 and 2023) shows a unit's maximally *and* minimally activating images, so
scoring keeps both ends: the top images come from the scorer's kernel
(`catalogue.selectivity.kernel`, ties to the lower image index), the bottom ones from
here. `BOTTOM_IMAGES` per unit by default: a trial needs 9 references and 1 query (10
images) from each end, and 20 let a study give every unit two trials with different
images (two "batches", as IMI's data set does with eleven).

Order: ascending activation; rank 1 is the least active image. Ties are broken by a
fixed pseudo-random order of the images (a hash of the image's index), not by the
lower index: a ReLU unit is 0 on most images, and the lower indices of a store
written class by class (an ImageFolder) are all of the first class, so "the least
activating images" would otherwise all be, say, tench — a cue the unit does not give.
The hash depends on the image's index alone, so the result does not depend on how the
units are cut into blocks or workers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

#: Least activating images kept per unit by default (a trial needs 10 of them).
BOTTOM_IMAGES = 20

#: Units per slice of the (N × U) input: bounds the 8-byte keys to N × 16 (≈ 90 MB at 721,536 images).
_SLICE_UNITS = 16


@dataclass(frozen=True)
class BottomImages:
    """(U, k) arrays, ascending activation; -1 / NaN pad units with fewer than k images."""

    index: np.ndarray  # int64: row of the scored images
    activation: np.ndarray  # float64
    image_class: np.ndarray  # int64


def tie_order(n_images: int) -> np.ndarray:
    """The fixed order among equal activations: a 32-bit hash (SplitMix64's finaliser) of
    each image index, as uint64."""
    z = np.arange(n_images, dtype=np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return z >> np.uint64(32)


def _ascending_keys(values: np.ndarray) -> np.ndarray:
    """float32 values as uint32 keys in the same order (-0.0 and 0.0 equal)."""
    bits = np.ascontiguousarray(values.astype(np.float32) + np.float32(0.0)).view(np.uint32)
    negative = (bits >> np.uint32(31)).astype(bool)
    return np.where(negative, ~bits, bits | np.uint32(0x80000000))


def bottom_images(activations: Any, labels: Any, k: int = BOTTOM_IMAGES) -> BottomImages:
    """The `k` least active images of every unit (column) of an N × U matrix.

    Args:
        activations: N images × U units (numpy array, torch tensor or anything
            `numpy.asarray` reads), compared in float32 as the scorer does.
        labels: N class indices (for `image_class`).
        k: images per unit; fewer when N < k (the rest padded with -1 / NaN).
    """
    if hasattr(activations, "detach"):
        activations = activations.detach().cpu().numpy()
    if hasattr(labels, "detach"):
        labels = labels.detach().cpu().numpy()
    values = np.asarray(activations)
    labels = np.asarray(labels)
    n, n_units = values.shape
    width = min(int(k), n)
    index = np.full((n_units, int(k)), -1, dtype=np.int64)
    activation = np.full((n_units, int(k)), np.nan)
    if width > 0 and n_units > 0:
        ties = tie_order(n)[:, None]
        for start in range(0, n_units, _SLICE_UNITS):
            part = np.asarray(values[:, start : start + _SLICE_UNITS], dtype=np.float32)
            keys = (_ascending_keys(part).astype(np.uint64) << np.uint64(32)) | ties
            if width < n:
                head = np.argpartition(keys, width - 1, axis=0)[:width]
            else:
                head = np.broadcast_to(np.arange(n)[:, None], keys.shape).copy()
            order = np.argsort(np.take_along_axis(keys, head, axis=0), axis=0)
            rows = np.take_along_axis(head, order, axis=0).T  # (units, width)
            stop = start + rows.shape[0]
            index[start:stop, :width] = rows
            activation[start:stop, :width] = np.take_along_axis(part.T, rows, axis=1)
    image_class = np.where(index >= 0, labels[np.maximum(index, 0)] if n else -1, -1)
    return BottomImages(index, activation, image_class.astype(np.int64))
