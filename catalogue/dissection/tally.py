"""The streaming IoU tally: |M_k ∩ L_c|, |M_k| and |L_c| summed over batches of maps and masks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from catalogue.config import resolve_device
from catalogue.dissection.inputs import MaskBatch, as_maps, is_array
from catalogue.dissection.upsample import firing_pixels
from catalogue.errors import InputError
from catalogue.probe import ImageMasks

DEFAULT_CHUNK_ELEMENTS = 1 << 24  # interpolated or gathered values held at once


@dataclass(frozen=True)
class ConceptIoU:
    """Per unit and concept: IoU and the pixel counts it comes from.

    thresholds (U,) float32; iou (U, K) float64; intersection and union (U, K)
    int64 pixel counts summed over the probe images; unit_pixels (U, G) the
    unit's firing pixels on images annotated in each category; concept_pixels
    (K,) the concept's pixels.
    """

    thresholds: np.ndarray
    iou: np.ndarray
    intersection: np.ndarray
    union: np.ndarray
    unit_pixels: np.ndarray
    concept_pixels: np.ndarray
    n_images: int
    quantile: float | None


class IoUTally:
    """Accumulates |M_k ∩ L_c|, |M_k| and |L_c| over batches of maps and masks."""

    def __init__(
        self,
        thresholds: np.ndarray | torch.Tensor,
        n_concepts: int,
        *,
        concept_category: np.ndarray | Sequence[int] | None = None,
        n_categories: int | None = None,
        device: str | None = "auto",
        chunk_elements: int = DEFAULT_CHUNK_ELEMENTS,
    ) -> None:
        self.device = resolve_device(device)
        if not isinstance(thresholds, torch.Tensor):  # np.asarray cannot read a CUDA tensor
            thresholds = torch.as_tensor(np.asarray(thresholds))
        self.thresholds = thresholds.to(device=self.device, dtype=torch.float32)
        units = self.thresholds.shape[0]
        self._use_annotations = concept_category is not None
        if concept_category is None:
            category = np.zeros(n_concepts, dtype=np.int64)
        else:
            category = np.asarray(concept_category, dtype=np.int64)
            if category.shape != (n_concepts,) or (n_concepts and category.min() < 0):
                raise ValueError("concept_category must hold one category index ≥ 0 per concept")
        self.n_concepts = n_concepts
        used = int(category.max()) + 1 if n_concepts else 1
        self.n_categories = (
            used if n_categories is None or not self._use_annotations else n_categories
        )
        if self.n_categories < used:
            raise ValueError(f"n_categories = {n_categories} but concept_category uses {used}")
        self._category = torch.as_tensor(category, device=self.device)
        self._chunk_elements = chunk_elements
        self._f64: dict[str, Any] = {"dtype": torch.float64, "device": self.device}
        self._intersection = torch.zeros(units, n_concepts + 1, **self._f64)  # last: padding
        self._unit_pixels = torch.zeros(units, self.n_categories, **self._f64)
        self._concept_pixels = torch.zeros(n_concepts + 1, **self._f64)
        self.n_images = 0

    def add(self, maps: np.ndarray | torch.Tensor, masks: MaskBatch) -> None:
        """Add a batch: maps (B × U × h × w) and masks, dense (B × K × H × W) or B `ImageMasks`."""
        m = as_maps(maps, self.device)
        if m.shape[1] != self.thresholds.shape[0]:
            raise InputError(
                f"maps have {m.shape[1]} units but there are {self.thresholds.shape[0]} thresholds."
            )
        if is_array(masks):
            dense = torch.as_tensor(masks).to(self.device)
            if dense.ndim != 4 or dense.shape[:2] != (m.shape[0], self.n_concepts):
                raise InputError(
                    f"masks of shape {tuple(dense.shape)} do not match {m.shape[0]} images × "
                    f"{self.n_concepts} concepts × H × W."
                )
            if dense.dtype != torch.bool:
                dense = dense != 0
            index = torch.arange(self.n_concepts, device=self.device).expand(m.shape[0], -1)
            annotated = torch.ones(m.shape[0], self.n_categories, **self._f64)
            self._add(m, dense.flatten(2), index, annotated, tuple(dense.shape[2:]))
        else:
            items = list(masks)
            if len(items) != m.shape[0]:
                raise InputError(
                    f"{m.shape[0]} activation maps but {len(items)} mask sets in a batch."
                )
            start = 0
            while start < len(items):  # runs of images with one mask size
                stop = start + 1
                while stop < len(items) and items[stop].shape == items[start].shape:
                    stop += 1
                self._add_image_masks(m[start:stop], items[start:stop])
                start = stop
        self.n_images += m.shape[0]

    def _add_image_masks(self, maps: torch.Tensor, items: Sequence[ImageMasks]) -> None:
        # Assembled in numpy and handed to torch once: many small torch calls are slow.
        shape = items[0].shape
        pixels = shape[0] * shape[1]
        widest = max(len(it.concepts) for it in items)
        labels = np.zeros((len(items), widest, pixels), dtype=bool)
        index = np.full((len(items), widest), self.n_concepts, dtype=np.int64)
        annotated = np.ones((len(items), self.n_categories), dtype=np.float64)
        for i, it in enumerate(items):
            k = len(it.concepts)
            if np.shape(it.masks) != (k, *shape):
                raise InputError(
                    f"ImageMasks with {k} concepts has masks of shape {np.shape(it.masks)}."
                )
            if k:
                concepts = np.asarray(it.concepts, dtype=np.int64)
                if concepts.min() < 0 or concepts.max() >= self.n_concepts:
                    raise InputError(
                        f"concept index out of range 0..{self.n_concepts - 1} in ImageMasks."
                    )
                index[i, :k] = concepts
                labels[i, :k] = np.asarray(it.masks, dtype=bool).reshape(k, pixels)
            if self._use_annotations and it.annotated is not None:
                flags = np.asarray(it.annotated, dtype=np.float64)
                if flags.shape != (self.n_categories,):
                    raise InputError(
                        f"ImageMasks.annotated has {flags.size} categories, expected {self.n_categories}."
                    )
                annotated[i] = flags
        self._add(
            maps,
            *(torch.from_numpy(a).to(self.device) for a in (labels, index, annotated)),
            shape,
        )

    def _add(
        self,
        maps: torch.Tensor,
        labels: torch.Tensor,
        index: torch.Tensor,
        annotated: torch.Tensor,
        shape: tuple[int, int],
    ) -> None:
        """Tally C images: labels (C × k × P) bool, index (C × k) concept of each row."""
        c, units = maps.shape[:2]
        width = self.n_concepts + 1
        fired_per_unit = torch.zeros(c * units, **self._f64)
        step = max(1, self._chunk_elements // max(1, labels.shape[1]))
        for image, unit, pixel in firing_pixels(maps, self.thresholds, shape, self._chunk_elements):
            fired_per_unit += torch.bincount(image * units + unit, minlength=c * units)
            for s in range(0, image.shape[0], step):
                im, un, px = image[s : s + step], unit[s : s + step], pixel[s : s + step]
                hit = labels[im, :, px]  # fired pixels × k: which labels they carry
                target = un[:, None] * width + index[im]
                self._intersection.view(-1).index_add_(
                    0, target.reshape(-1), hit.reshape(-1).to(torch.float64)
                )
        self._unit_pixels += fired_per_unit.view(c, units).T @ annotated
        self._concept_pixels.index_add_(0, index.reshape(-1), _count_true(labels).reshape(-1))

    def state(self) -> dict[str, Any]:
        """The sums so far as CPU arrays (to send from a worker and `merge` elsewhere)."""
        return {
            "intersection": self._intersection.cpu().numpy(),
            "unit_pixels": self._unit_pixels.cpu().numpy(),
            "concept_pixels": self._concept_pixels.cpu().numpy(),
            "n_images": self.n_images,
        }

    def merge(self, state: dict[str, Any]) -> None:
        """Add another tally's `state` (same thresholds and concepts, other images).

        The sums are whole pixel counts held in float64, so adding the parts
        gives exactly the sums of one tally over all the images.
        """
        for name in ("intersection", "unit_pixels", "concept_pixels"):
            mine = getattr(self, f"_{name}")
            theirs = torch.from_numpy(np.array(state[name], dtype=np.float64)).to(mine.device)
            if theirs.shape != mine.shape:
                raise InputError(
                    f"cannot merge a tally with {name} of shape {tuple(theirs.shape)} into "
                    f"{tuple(mine.shape)}: other units or concepts."
                )
            mine += theirs
        self.n_images += int(state["n_images"])

    def result(self, quantile: float | None = None) -> ConceptIoU:
        intersection = self._intersection[:, :-1]
        union = (
            self._unit_pixels[:, self._category] + self._concept_pixels[None, :-1] - intersection
        )
        iou = torch.where(union > 0, intersection / union.clamp(min=1), torch.zeros_like(union))
        return ConceptIoU(
            thresholds=self.thresholds.cpu().numpy(),
            iou=iou.cpu().numpy(),
            intersection=_counts(intersection),
            union=_counts(union),
            unit_pixels=_counts(self._unit_pixels),
            concept_pixels=_counts(self._concept_pixels[:-1]),
            n_images=self.n_images,
            quantile=quantile,
        )


def _count_true(labels: torch.Tensor) -> torch.Tensor:
    """(C × k) float64 number of True values along the last axis of a bool tensor."""
    if labels.device.type == "cpu":  # numpy counts bytes far faster than torch sums bools
        counts = np.count_nonzero(labels.numpy(), axis=-1)
        return torch.as_tensor(counts, dtype=torch.float64)
    return labels.sum(-1, dtype=torch.float64)


def _counts(t: torch.Tensor) -> np.ndarray:
    return t.round().to(torch.int64).cpu().numpy()
