"""Per-unit thresholds T_k: the exact ⌈q·n⌉-th largest activation, streamed (Bau et al. 2017, §3)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from fractions import Fraction

import numpy as np
import torch

from catalogue.config import resolve_device
from catalogue.dissection.inputs import as_maps, is_array, map_batches
from catalogue.errors import InputError
from catalogue.measures import DISSECTION_QUANTILE


def threshold_rank(n_values: int, quantile: float) -> int:
    """k = ⌈quantile · n_values⌉, clipped to [1, n_values]: T is the k-th largest value."""
    if not 0 < quantile <= 1:
        raise InputError(
            f"quantile must lie in (0, 1], got {quantile}; Bau et al. use {DISSECTION_QUANTILE}."
        )
    k = math.ceil(Fraction(repr(float(quantile))) * n_values)
    return min(max(k, 1), n_values)


class RunningTopK:
    """The exact k largest values per unit of a stream of (U × m) blocks.

    Blocks are buffered until they hold at least k values per unit and then
    merged with `torch.topk`, so the cost is linear in the stream and the
    memory at most about 2k values per unit plus one block.
    """

    def __init__(self, k: int, *, min_buffer: int = 8192) -> None:
        if k < 1:
            raise ValueError("k must be at least 1")
        self.k = k
        self.count = 0
        self._min_buffer = min_buffer
        self._top: torch.Tensor | None = None
        self._pending: list[torch.Tensor] = []
        self._pending_count = 0

    def add(self, values: torch.Tensor) -> None:
        """Add a (U × m) block of values."""
        if values.ndim != 2:
            raise ValueError(f"expected a (units × values) block, got shape {tuple(values.shape)}")
        self._pending.append(values)
        self._pending_count += values.shape[1]
        self.count += values.shape[1]
        if self._pending_count >= max(self.k, self._min_buffer):
            self._merge()

    def _merge(self) -> None:
        if not self._pending:
            return
        parts = self._pending if self._top is None else [self._top, *self._pending]
        values = torch.cat(parts, dim=1)
        keep = min(self.k, values.shape[1])
        self._top = torch.topk(values, keep, dim=1, sorted=False).values
        self._pending, self._pending_count = [], 0

    def values(self) -> torch.Tensor:
        """(U × min(k, count)) the largest values kept so far, in no order: what `add` merges."""
        self._merge()
        if self._top is None:
            raise InputError("no values were added.")
        return self._top

    def kth_largest(self) -> torch.Tensor:
        """(U,) the k-th largest value per unit (the smallest one kept)."""
        self._merge()
        if self._top is None or self._top.shape[1] < self.k:
            raise InputError(
                f"only {self.count} values per unit were seen, fewer than k = {self.k}."
            )
        return self._top.min(dim=1).values


def unit_thresholds(
    maps: np.ndarray | torch.Tensor | Iterable[np.ndarray | torch.Tensor],
    quantile: float = DISSECTION_QUANTILE,
    *,
    n_images: int | None = None,
    batch_size: int = 64,
    device: str | None = "auto",
) -> np.ndarray:
    """T_k per unit: the ⌈q·n⌉-th largest of its n spatial activations (module docstring)."""
    dev = resolve_device(device)
    batches = map_batches(maps, batch_size)
    if n_images is None:
        if not is_array(maps):
            raise TypeError(
                "pass n_images when maps is a stream of batches (k = ⌈q·N·h·w⌉ needs N)."
            )
        n_images = int(maps.shape[0])
    topk: RunningTopK | None = None
    seen = 0
    for batch in batches:
        b = as_maps(batch, dev)
        if topk is None:
            topk = RunningTopK(threshold_rank(n_images * b.shape[2] * b.shape[3], quantile))
        topk.add(b.transpose(0, 1).reshape(b.shape[1], -1))
        seen += b.shape[0]
    if topk is None or seen == 0:
        raise InputError("no activation maps were given; the probe set is empty.")
    if seen != n_images:
        raise InputError(f"the maps stream gave {seen} images but n_images = {n_images}.")
    return topk.kth_largest().cpu().numpy()
