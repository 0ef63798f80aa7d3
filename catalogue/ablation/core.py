"""Ablation's arithmetic: many ablations of one batch at once, and what they did per class.

A *configuration* is a set of units of one layer whose whole activation (an fc
unit's value, a conv unit's entire feature map) is replaced by a value — 0 or
the unit's mean — while every other unit keeps its own. Single-unit ablation
has one configuration per unit; a class-ablation curve (Bau et al. 2020) one
per (class, ranking, k). `count_correct` evaluates K configurations on one
batch of B images by repeating the batch K times (K·B rows through the rest of
the network at once, in chunks of at most ``max_rows``), so the layers before
the ablated one run once per batch, not once per configuration.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from catalogue.models import repeat_batch

#: the replacement values: Zhou et al. (2018) and Bau et al. (2020) zero units; the mean
#: keeps the unit's average contribution and removes only its variation
VALUES = ("zero", "mean")


def configuration_masks(
    n_units: int, configurations: Sequence[Sequence[int]], device: torch.device | str = "cpu"
) -> torch.Tensor:
    """(K, U) bool: row k marks the units configuration k replaces."""
    masks = torch.zeros(len(configurations), n_units, dtype=torch.bool)
    for k, units in enumerate(configurations):
        if len(units):
            masks[k, torch.as_tensor(list(units), dtype=torch.long)] = True
    return masks.to(device)


def single_unit_masks(n_units: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """(1 + U, U): no unit replaced (the baseline), then each unit alone."""
    eye = torch.eye(n_units, dtype=torch.bool, device=device)
    return torch.cat([torch.zeros(1, n_units, dtype=torch.bool, device=device), eye])


def count_correct(
    tail: nn.Module,
    value: torch.Tensor,
    inputs: Sequence[torch.Tensor],
    labels: torch.Tensor,
    masks: torch.Tensor,
    replacement: torch.Tensor,
    n_classes: int,
    *,
    max_rows: int = 4096,
) -> torch.Tensor:
    """Correctly classified images per configuration and class: (K, C) int64.

    Args:
        tail: the rest of the network (`catalogue.models.GraphSplit.tail`).
        value: the layer's output for B images, (B, U) or (B, U, H, W).
        inputs: the tail's other inputs for the same images (batch first).
        labels: (B,) true classes.
        masks: (K, U) bool, the units each configuration replaces.
        replacement: (U,) the value each unit is replaced by (its whole map for conv).
        max_rows: at most this many repeated rows per forward (at least one batch).
    """
    n_images, n_units = int(value.shape[0]), int(value.shape[1])
    n_configs = int(masks.shape[0])
    out = torch.zeros(n_configs, n_classes, dtype=torch.int64, device=value.device)
    if n_images == 0 or n_configs == 0:
        return out
    # A channels-last map (the fast layout for CPU and GPU convolutions) is repeated as
    # (B, H, W, U) so that the copies come out channels-last too, without another copy.
    channels_last = value.ndim == 4 and value.is_contiguous(memory_format=torch.channels_last)
    work = value.permute(0, 2, 3, 1) if channels_last else value
    unit_axis = work.ndim - 1 if channels_last else 1
    shape = [1] * (work.ndim + 1)
    shape[unit_axis + 1] = n_units
    fill = replacement.to(device=value.device, dtype=value.dtype).view(shape)
    per_forward = max(1, max_rows // n_images)
    labels = labels.to(value.device)
    for start in range(0, n_configs, per_forward):
        chunk = masks[start : start + per_forward].to(value.device)
        k = int(chunk.shape[0])
        repeated = work.unsqueeze(0).expand(k, *work.shape)
        shape[0] = k
        ablated = torch.where(chunk.view(shape), fill, repeated).reshape(
            k * n_images, *work.shape[1:]
        )
        if channels_last:
            ablated = ablated.permute(0, 3, 1, 2)
        logits = tail(ablated, *(repeat_batch(t, k) for t in inputs))
        hits = (logits.argmax(dim=1).view(k, n_images) == labels).to(torch.int64)
        out[start : start + k].index_add_(1, labels, hits)
    return out


@dataclass(frozen=True)
class LayerAblation:
    """Single-unit ablation of one layer: correct counts per unit and class, and the baseline.

    ``correct[u, c]``: images of class c classified correctly with unit u replaced;
    ``baseline_correct[c]``: with no unit replaced (computed the same way).
    """

    layer: str
    kind: str
    value: str
    class_sizes: np.ndarray  # (C,) int64
    baseline_correct: np.ndarray  # (C,) int64
    correct: np.ndarray  # (U, C) int64
    replacement: np.ndarray  # (U,) float64

    @property
    def n_units(self) -> int:
        return int(self.correct.shape[0])

    @property
    def n_images(self) -> int:
        return int(self.class_sizes.sum())

    def _per_class(self, counts: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.class_sizes > 0, counts / np.maximum(self.class_sizes, 1), np.nan)

    @property
    def baseline_class_accuracy(self) -> np.ndarray:
        """(C,) per-class accuracy with no unit replaced (NaN for a class without images)."""
        return self._per_class(self.baseline_correct.astype(np.float64))

    @property
    def class_accuracy(self) -> np.ndarray:
        """(U, C) per-class accuracy with each unit replaced."""
        return self._per_class(self.correct.astype(np.float64))

    @property
    def accuracy_change(self) -> np.ndarray:
        """(U, C) ablated minus baseline accuracy per class: negative = the unit helped that class."""
        return self.class_accuracy - self.baseline_class_accuracy[None, :]

    @property
    def baseline_accuracy(self) -> float:
        return float(self.baseline_correct.sum() / self.n_images) if self.n_images else np.nan

    @property
    def accuracy(self) -> np.ndarray:
        """(U,) overall accuracy (over all images) with each unit replaced."""
        if not self.n_images:
            return np.full(self.n_units, np.nan)
        return self.correct.sum(axis=1) / self.n_images

    @property
    def overall_change(self) -> np.ndarray:
        return self.accuracy - self.baseline_accuracy

    def most_hurt(self, n: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The ``n`` classes with the lowest change per unit (ties to the lower class index),
        among classes with images: (U, n') class indices and changes, n' = min(n, such classes)."""
        change = self.accuracy_change
        present = np.flatnonzero(self.class_sizes > 0)
        n = min(n, present.size)
        if n == 0:
            return np.zeros((self.n_units, 0), np.int64), np.zeros((self.n_units, 0))
        sub = change[:, present]
        order = np.argsort(sub, axis=1, kind="stable")[:, :n]
        return present[order], np.take_along_axis(sub, order, axis=1)


def curve_accuracies(
    correct: np.ndarray, class_sizes: np.ndarray, class_index: int
) -> tuple[float, float]:
    """(accuracy on class ``class_index``, accuracy on every other image) from (C,) counts."""
    n_class = int(class_sizes[class_index])
    n_other = int(class_sizes.sum()) - n_class
    own = float(correct[class_index] / n_class) if n_class else np.nan
    other = float((correct.sum() - correct[class_index]) / n_other) if n_other else np.nan
    return own, other
