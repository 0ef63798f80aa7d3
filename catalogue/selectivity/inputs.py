"""Checking and slicing the scorer's input: activations, labels, options, devices, blocks.

The scorer reads the activation matrix (N images × U units) a block of units at
a time, so the matrix may be a numpy array, a memory map, an h5py dataset or a
torch tensor; only one block is ever converted to float32 and moved to the
scoring device. Every problem a user can cause is an `InputError` whose message
names the problem and what to do about it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from catalogue.config import resolve_device
from catalogue.errors import InputError
from catalogue.measures import (
    CSI_THRESHOLD,
    CSI_TOP_N,
    PRECISION_TARGET,
    TOP_K_PRECISION,
    TOP_N_CLASSES,
)

#: Bytes of scorer memory per (unit × image) of a block: the float32 block, its sort
#: keys and the compacted part above each unit's minimum.
RAW_BYTES = 32

#: Bytes per (unit × sorted head position): the int and float64 temporaries of the
#: measures over the part of each unit above its minimum (all of it for a dense unit).
REGION_BYTES = 192

#: Images per tile when transposing a numpy block to units × images.
TRANSPOSE_TILE = 256

#: Default memory budget of one block on the CPU (the peak is about this plus
#: the caller's own copy of the block).
CPU_BUDGET_BYTES = 512 * 2**20


@dataclass(frozen=True)
class Options:
    """The parameters of the measures (see `score_units`)."""

    top_k: int = TOP_K_PRECISION
    top_n_classes: int = TOP_N_CLASSES
    precision_target: float = PRECISION_TARGET
    csi_top_n: int = CSI_TOP_N
    csi_threshold: float = CSI_THRESHOLD

    def check(self) -> None:
        for name in ("top_k", "top_n_classes", "csi_top_n"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
                raise InputError(f"{name} must be a positive integer; got {value!r}.")
        if not 0.0 < float(self.precision_target) <= 1.0:
            raise InputError(f"precision_target must lie in (0, 1]; got {self.precision_target!r}.")
        if not 0.0 < float(self.csi_threshold) <= 1.0:
            raise InputError(f"csi_threshold must lie in (0, 1]; got {self.csi_threshold!r}.")


class Activations:
    """An N × U activation matrix read one block of units at a time."""

    def __init__(self, activations: Any) -> None:
        if isinstance(activations, torch.Tensor):
            self._data: Any = activations.detach()
            self.is_tensor = True
            if activations.is_complex() or activations.dtype == torch.bool:
                raise InputError(
                    f"activations must be real numbers; got a tensor of {activations.dtype}."
                )
        else:
            if not (hasattr(activations, "shape") and hasattr(activations, "dtype")):
                activations = np.asarray(activations)
            kind = np.dtype(activations.dtype).kind
            if kind not in "fiu":
                raise InputError(
                    f"activations must be real numbers; got an array of dtype {activations.dtype}."
                )
            self._data = activations
            self.is_tensor = False
        shape = tuple(int(s) for s in activations.shape)
        if len(shape) != 2:
            raise InputError(
                f"activations must be a 2-D array (images × units); got shape {shape}. "
                "Reduce conv maps to one value per image (spatial max or mean) first."
            )
        self.n_images, self.n_units = shape

    def block(self, start: int, stop: int, device: str) -> torch.Tensor:
        """Units start..stop-1 as a contiguous float32 (units × images) tensor on `device`."""
        if self.is_tensor:
            part = self._data[:, start:stop].to(device=device, dtype=torch.float32)
            return part.t().contiguous()
        part = np.asarray(self._data[:, start:stop])
        block = np.empty((part.shape[1], part.shape[0]), dtype=np.float32)
        with np.errstate(over="ignore"):  # overflow to inf is reported as an InputError
            for row in range(0, part.shape[0], TRANSPOSE_TILE):  # cache-sized tiles: 3x faster
                block[:, row : row + TRANSPOSE_TILE] = part[row : row + TRANSPOSE_TILE].T
        return torch.from_numpy(block).to(device)


def check_labels(labels: Any, n_images: int, n_classes: Any) -> np.ndarray:
    """Labels as int64 numpy, or an InputError saying what is wrong with them."""
    if isinstance(n_classes, bool) or not isinstance(n_classes, int | np.integer):
        raise InputError(f"n_classes must be an integer; got {n_classes!r}.")
    if n_classes < 1:
        raise InputError(f"n_classes must be at least 1; got {n_classes}.")
    if isinstance(labels, torch.Tensor):
        labels = labels.detach().cpu().numpy()
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise InputError(
            f"labels must be a 1-D sequence of class indices; got shape {labels.shape}."
        )
    if labels.shape[0] != n_images:
        raise InputError(
            f"labels has {labels.shape[0]} entries but activations have {n_images} images "
            "(rows); give one label per image."
        )
    if labels.dtype.kind == "f":
        bad = ~np.isfinite(labels) | (labels != np.round(labels))
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            raise InputError(
                f"labels must be whole class indices; image {first} has label {labels[first].item()!r}."
            )
    elif labels.dtype.kind not in "iu":
        raise InputError(f"labels must be integer class indices; got dtype {labels.dtype}.")
    out = labels.astype(np.int64)
    bad = (out < 0) | (out >= n_classes)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise InputError(
            f"{int(bad.sum())} labels lie outside 0..{n_classes - 1} (first: image {first} "
            f"has label {out[first]}); pass n_classes covering every label."
        )
    return out


def check_groups(
    groups: Mapping[str, Sequence[int]] | None, n_classes: int
) -> dict[str, np.ndarray]:
    """Named class groups as sorted unique int64 arrays, checked against n_classes."""
    out: dict[str, np.ndarray] = {}
    for name, members in (groups or {}).items():
        idx = np.asarray(list(members))
        if idx.size == 0:
            raise InputError(f"class group {name!r} has no classes; give at least one.")
        if idx.dtype.kind not in "iu":
            raise InputError(
                f"class group {name!r} must list class indices (integers); got {idx.dtype}."
            )
        bad = (idx < 0) | (idx >= n_classes)
        if bad.any():
            raise InputError(
                f"class group {name!r} names class {int(idx[bad][0])}, outside 0..{n_classes - 1}."
            )
        out[str(name)] = np.unique(idx.astype(np.int64))
    return out


def scoring_device(device: str | None) -> str:
    """The torch device to score on (None/"auto" → CUDA when available)."""
    return resolve_device(device)


def memory_budget_for(device: str, memory_budget: int | None) -> int:
    """Bytes one block may use: the given budget, or 512 MiB on the CPU and a third of
    the free GPU memory (at most 8 GiB) on CUDA."""
    if memory_budget is not None:
        if isinstance(memory_budget, bool) or not isinstance(memory_budget, int):
            raise InputError(f"memory_budget must be a number of bytes; got {memory_budget!r}.")
        return max(memory_budget, 1)
    if device.startswith("cuda"):
        free, _total = torch.cuda.mem_get_info(torch.device(device))
        return int(min(free // 3, 8 * 2**30))
    return CPU_BUDGET_BYTES


def block_size(
    n_images: int, n_units: int, block_units: int | None, budget: int, head_width: int
) -> int:
    """Units per block within the budget, for units needing `head_width` sorted positions
    each (N, the dense worst case, until a block has shown the layer's density)."""
    if block_units is not None:
        if isinstance(block_units, bool) or not isinstance(block_units, int) or block_units < 1:
            raise InputError(f"block_units must be a positive integer; got {block_units!r}.")
        return min(block_units, max(n_units, 1))
    per_unit = RAW_BYTES * n_images + REGION_BYTES * head_width
    return int(min(max(1, budget // per_unit), max(n_units, 1)))


def raise_non_finite(acts: Activations, first_block: int, size: int, device: str) -> None:
    """Count NaN and infinite values from `first_block` on and raise one clear InputError."""
    n_nan = n_inf = 0
    first_unit: int | None = None
    for start in range(first_block, acts.n_units, size):
        x = acts.block(start, min(start + size, acts.n_units), device)
        nan = torch.isnan(x).sum(1)
        inf = torch.isinf(x).sum(1)
        n_nan += int(nan.sum())
        n_inf += int(inf.sum())
        bad = torch.nonzero(nan + inf).flatten()
        if first_unit is None and bad.numel():
            first_unit = start + int(bad[0])
    parts = []
    if n_nan:
        parts.append(f"{n_nan} NaN value{'s' if n_nan != 1 else ''}")
    if n_inf:
        parts.append(f"{n_inf} infinite value{'s' if n_inf != 1 else ''}")
    raise InputError(
        f"activations contain {' and '.join(parts)} (first in unit {first_unit}); "
        "the measures need finite activations (values beyond ±3.4e38 overflow float32): "
        "fix or drop those images before scoring."
    )


def exact_limit_ok(n_images: int) -> None:
    """Counts enter float64 products like TP·N; beyond 2**26.5 images they stop being exact."""
    if n_images > math.isqrt(2**53):
        raise InputError(
            f"{n_images} images is more than the scorer handles exactly "
            f"({math.isqrt(2**53)}); score a subset of the images."
        )
