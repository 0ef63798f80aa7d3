"""Network dissection: which units' activation maps overlap which labelled concepts.

Bau, Zhou, Khosla, Oliva & Torralba, "Network Dissection: Quantifying
Interpretability of Deep Visual Representations" (CVPR 2017), §3:

- per unit k, a threshold T_k such that the unit's activation exceeds it at a
  `quantile` (0.005) share of all its spatial positions over the probe set;
- the unit's map on image x, upsampled bilinearly to the mask resolution and
  thresholded, is its *segmentation* M_k(x) = {p : S_k(x)[p] > T_k};
- IoU_k,c = Σ_x |M_k(x) ∩ L_c(x)| / Σ_x |M_k(x) ∪ L_c(x)| over probe images x,
  where L_c(x) is concept c's mask; the unit *detects* c if IoU_k,c > 0.04.

Definitions made exact here:

- T_k is the ⌈q·n⌉-th largest of the unit's n = N·h·w activations at the map
  resolution (q read as the decimal it is written as, so 0.005·20000 = 100;
  at least 1). It is exact: the first pass keeps each unit's top ⌈q·n⌉ values
  with torch.topk merges (memory 4·U·⌈q·n⌉ bytes; 53 MB for AlexNet conv5 on
  Broden). NetDissect-Lite's np.percentile lies within one order statistic
  of it; davidbau/dissect's quantile sketch is approximate.
- The unit fires where the upsampled value is *strictly* above T_k (as in Bau
  et al.'s code), so a unit that is constant — a dead ReLU unit, all zeros —
  fires nowhere instead of everywhere. Ties at T_k therefore fire less than a
  q share.
- Upsampling is bilinear with pixel centres aligned and edges clamped (the
  convention of `torch.nn.functional.interpolate(mode="bilinear",
  align_corners=False)`): mask pixel i lies at map position
  (i + ½)·h/H − ½. It is evaluated only where it can exceed T_k (below).
- A union of 0 gives IoU 0.
- Probe sets such as Broden annotate each image only in some categories (its
  DTD images carry no object labels). Given each concept's category and each
  image's annotated categories (`ImageMasks.annotated`), the unit's firing
  pixels count towards a concept's union only on images annotated in that
  concept's category, as in NetDissect's code. Without that information every
  image counts, which is the plain formula above.

The computation is two streaming passes over the probe set, on the GPU when
there is one: thresholds, then intersections and unions. An interpolated
value is a convex combination of four map cells, so it can exceed T_k only
next to one of the unit's < ⌈q·n⌉ cells above T_k; the second pass
interpolates just those blocks of pixels and looks up which concepts the
firing pixels carry, so its cost follows the firing area (about q of all
unit-pixels), not units × pixels × concepts. `unit_concept_iou` is the pure
core; `dissect` runs a torchvision model over a `ProbeSet` and labels every
unit; `label_units` ranks concepts per unit.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image

from catalogue.config import resolve_device
from catalogue.errors import InputError, UnitcatError
from catalogue.probe import Concept, ImageMasks, ProbeSet

if TYPE_CHECKING:
    from catalogue.models import ModelInfo

MaskBatch = np.ndarray | torch.Tensor | Sequence[ImageMasks]
DEFAULT_CHUNK_ELEMENTS = 1 << 24  # interpolated or gathered values held at once


def threshold_rank(n_values: int, quantile: float) -> int:
    """k = ⌈quantile · n_values⌉, clipped to [1, n_values]: T is the k-th largest value."""
    if not 0 < quantile <= 1:
        raise InputError(f"quantile must lie in (0, 1], got {quantile}; Bau et al. use 0.005.")
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
    quantile: float = 0.005,
    *,
    n_images: int | None = None,
    batch_size: int = 64,
    device: str | None = "auto",
) -> np.ndarray:
    """T_k per unit: the ⌈q·n⌉-th largest of its n spatial activations (module docstring)."""
    dev = resolve_device(device)
    batches = _map_batches(maps, batch_size)
    if n_images is None:
        if not _is_array(maps):
            raise TypeError(
                "pass n_images when maps is a stream of batches (k = ⌈q·N·h·w⌉ needs N)."
            )
        n_images = int(maps.shape[0])
    topk: RunningTopK | None = None
    seen = 0
    for batch in batches:
        b = _as_maps(batch, dev)
        if topk is None:
            topk = RunningTopK(threshold_rank(n_images * b.shape[2] * b.shape[3], quantile))
        topk.add(b.transpose(0, 1).reshape(b.shape[1], -1))
        seen += b.shape[0]
    if topk is None or seen == 0:
        raise InputError("no activation maps were given; the probe set is empty.")
    if seen != n_images:
        raise InputError(f"the maps stream gave {seen} images but n_images = {n_images}.")
    return topk.kth_largest().cpu().numpy()


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
        self.thresholds = torch.as_tensor(np.asarray(thresholds), dtype=torch.float32).to(
            self.device
        )
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
        m = _as_maps(maps, self.device)
        if m.shape[1] != self.thresholds.shape[0]:
            raise InputError(
                f"maps have {m.shape[1]} units but there are {self.thresholds.shape[0]} thresholds."
            )
        if _is_array(masks):
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
        for image, unit, pixel in _firing_pixels(
            maps, self.thresholds, shape, self._chunk_elements
        ):
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


@dataclass(frozen=True)
class _Axis:
    """Bilinear sampling along one axis, n_in → n_out, pixel centres aligned.

    Output i lies at source position s = (i + ½)·n_in/n_out − ½ and reads the
    cells ⌊s⌋ and ⌊s⌋ + 1, clamped to 0..n_in − 1, with weight s − ⌊s⌋ on the
    second (near the edges both are the same cell, so this equals clamping s).
    Outputs are grouped by ⌊s⌋ + 1 ∈ 0..n_in, the *block* between cells:
    `members[b]` are its outputs and `weights[b]` their weights, padded with
    NaN (which makes every comparison false).
    """

    members: torch.Tensor  # (n_in + 1) × R, int64
    weights: torch.Tensor  # (n_in + 1) × R, float32, NaN where padded

    @staticmethod
    @functools.lru_cache(maxsize=64)
    def build(n_in: int, n_out: int, device: str) -> _Axis:
        src = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
        block = np.floor(src).astype(np.int64) + 1
        lam = src - (block - 1)
        width = max(1, int(np.bincount(block, minlength=n_in + 1).max()))
        members = np.zeros((n_in + 1, width), dtype=np.int64)
        weights = np.full((n_in + 1, width), np.nan, dtype=np.float32)
        for b in range(n_in + 1):
            own = np.flatnonzero(block == b)
            members[b, : own.size] = own
            weights[b, : own.size] = lam[own]
        return _Axis(
            torch.as_tensor(members, device=device), torch.as_tensor(weights, device=device)
        )


def _candidate_blocks(
    maps: torch.Tensor, thresholds: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(image, unit, block row, block column) of the blocks with a corner cell above T.

    Block b spans cells b − 1 and b (clamped), so cell c is a corner of blocks c and c + 1.
    """
    units, h, w = maps.shape[1:]
    im, un, cy, cx = (maps > thresholds[None, :, None, None]).nonzero(as_tuple=True)
    dy = torch.tensor([0, 0, 1, 1], device=maps.device)
    dx = torch.tensor([0, 1, 0, 1], device=maps.device)
    by = (cy[:, None] + dy).reshape(-1)
    bx = (cx[:, None] + dx).reshape(-1)
    owner = (im * units + un)[:, None].expand(-1, 4).reshape(-1)
    key = torch.unique((owner * (h + 1) + by) * (w + 1) + bx)
    bx, key = key % (w + 1), key // (w + 1)
    by, owner = key % (h + 1), key // (h + 1)
    return owner // units, owner % units, by, bx


def _firing_pixels(
    maps: torch.Tensor, thresholds: torch.Tensor, shape: tuple[int, int], chunk_elements: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """(image, unit, pixel) of every mask pixel where the upsampled map exceeds T_unit.

    A bilinear value is a convex combination of the four cells around it, so
    it can exceed T only in a block of pixels one of whose four corner cells is
    above T — at most 4·⌈q·n⌉ blocks per unit. Only those blocks are
    interpolated, so the cost follows the firing area rather than units × pixels.
    """
    rows = _Axis.build(maps.shape[2], shape[0], str(maps.device))
    cols = _Axis.build(maps.shape[3], shape[1], str(maps.device))
    h, w = maps.shape[2:]
    candidates = _candidate_blocks(maps, thresholds)
    step = max(1, chunk_elements // (rows.members.shape[1] * cols.members.shape[1]))
    for s in range(0, candidates[0].shape[0], step):
        im, un, y, x = (t[s : s + step] for t in candidates)
        y0, y1 = (y - 1).clamp(min=0), y.clamp(max=h - 1)  # the block's corner cells
        x0, x1 = (x - 1).clamp(min=0), x.clamp(max=w - 1)
        x00, x01 = maps[im, un, y0, x0][:, None], maps[im, un, y0, x1][:, None]
        x10, x11 = maps[im, un, y1, x0][:, None], maps[im, un, y1, x1][:, None]
        lx = cols.weights[x]  # candidates × Q
        upper_row = x00 + lx * (x01 - x00)  # along the block's upper and lower edges
        lower_row = x10 + lx * (x11 - x10)
        # value = upper + ly·(lower − upper) > T, compared without forming the value
        rise = (lower_row - upper_row)[:, None, :]
        margin = (thresholds[un][:, None] - upper_row)[:, None, :]
        fire = rows.weights[y][:, :, None] * rise > margin
        i, a, b = fire.nonzero(as_tuple=True)
        yield im[i], un[i], rows.members[y[i], a] * shape[1] + cols.members[x[i], b]


def _count_true(labels: torch.Tensor) -> torch.Tensor:
    """(C × k) float64 number of True values along the last axis of a bool tensor."""
    if labels.device.type == "cpu":  # numpy counts bytes far faster than torch sums bools
        counts = np.count_nonzero(labels.numpy(), axis=-1)
        return torch.as_tensor(counts, dtype=torch.float64)
    return labels.sum(-1, dtype=torch.float64)


def _counts(t: torch.Tensor) -> np.ndarray:
    return t.round().to(torch.int64).cpu().numpy()


def unit_concept_iou(
    maps: np.ndarray | torch.Tensor | Iterable[np.ndarray | torch.Tensor],
    masks: MaskBatch | Iterable[MaskBatch],
    quantile: float = 0.005,
    *,
    thresholds: np.ndarray | None = None,
    n_images: int | None = None,
    n_concepts: int | None = None,
    concept_category: np.ndarray | Sequence[int] | None = None,
    batch_size: int = 64,
    device: str | None = "auto",
    chunk_elements: int = DEFAULT_CHUNK_ELEMENTS,
) -> ConceptIoU:
    """IoU of every unit's thresholded, upsampled map with every concept's mask.

    Args:
        maps: activation maps, N × U × h × w (numpy or torch), or a re-iterable
            stream of batches (B × U × h × w each) for probe sets that do not
            fit in memory — iterated twice unless `thresholds` is given.
        masks: N × K × H × W boolean masks, or N `ImageMasks` (sparse over
            concepts, as `ProbeSet` gives them), or a stream of such batches
            aligned with the maps batches.
        quantile: the share of each unit's activations above its threshold.
        thresholds: precomputed T_k (skips the first pass).
        n_images: N, needed for a stream (k = ⌈q·N·h·w⌉).
        n_concepts: K, needed when masks are `ImageMasks` (default: from
            `concept_category` or the dense masks).
        concept_category: (K,) category index of each concept; with
            `ImageMasks.annotated` it restricts unions to annotated images.
        device: "auto", "cpu" or "cuda".
        chunk_elements: upsampled values processed at once (memory bound).

    Returns:
        `ConceptIoU` with thresholds (U,), iou (U × K) and the pixel counts.
    """
    dev = resolve_device(device)
    in_memory = _is_array(maps)
    if thresholds is None:
        if not in_memory and iter(maps) is maps:  # type: ignore[arg-type]
            raise TypeError(
                "maps is a one-shot iterator but thresholds need a first pass; pass a "
                "re-iterable (a list, or an object whose __iter__ starts over) or thresholds."
            )
        thresholds = unit_thresholds(
            maps, quantile, n_images=n_images, batch_size=batch_size, device=dev
        )
    if concept_category is not None and n_concepts is None:
        n_concepts = len(concept_category)
    tally: IoUTally | None = None
    for map_batch, mask_batch in zip(
        _map_batches(maps, batch_size), _mask_batches(masks, in_memory, batch_size), strict=True
    ):
        if tally is None:
            k = n_concepts
            if k is None:
                if not _is_array(mask_batch):
                    raise TypeError("pass n_concepts (or concept_category) with ImageMasks.")
                k = int(mask_batch.shape[1])
            tally = IoUTally(
                thresholds,
                k,
                concept_category=concept_category,
                device=dev,
                chunk_elements=chunk_elements,
            )
        tally.add(map_batch, mask_batch)
    if tally is None:
        raise InputError("no activation maps were given; the probe set is empty.")
    return tally.result(quantile)


def _is_array(x: object) -> bool:
    return isinstance(x, np.ndarray | torch.Tensor)


def _as_maps(batch: np.ndarray | torch.Tensor, device: str) -> torch.Tensor:
    t = torch.as_tensor(batch)
    if t.ndim != 4:
        raise InputError(
            f"activation maps must be images × units × h × w, got shape {tuple(t.shape)}; "
            "dissection needs the spatial maps of convolutional layers."
        )
    t = t.to(device=device, dtype=torch.float32)
    if not torch.isfinite(t.sum()) and not torch.isfinite(t).all():  # the sum is the cheap test
        raise InputError(
            "activation maps contain NaN or infinite values; check the model and inputs."
        )
    return t


def _map_batches(maps: Any, batch_size: int) -> Iterator[Any]:
    if _is_array(maps):
        for s in range(0, maps.shape[0], batch_size):
            yield maps[s : s + batch_size]
    else:
        yield from maps


def _mask_batches(masks: Any, in_memory: bool, batch_size: int) -> Iterator[Any]:
    if in_memory:
        if not _is_array(masks) and not isinstance(masks, Sequence):
            raise TypeError(
                "with maps as one array, masks must be an array or a sequence of ImageMasks."
            )
        for s in range(0, len(masks), batch_size):
            yield masks[s : s + batch_size]
    else:
        yield from masks


# --------------------------------------------------------------------------- labelling


@dataclass(frozen=True)
class LayerDissection:
    """Network dissection of one layer: IoU per unit and concept, and unit labels.

    `top_concepts[u]` are indices into `concepts` by decreasing IoU (ties to
    the lower index) and `top_iou[u]` their IoUs; a unit is a detector when
    its best IoU exceeds `iou_threshold` (0.04 in Bau et al.).
    """

    layer: str
    concepts: tuple[Concept, ...]
    scores: ConceptIoU
    top_concepts: np.ndarray
    top_iou: np.ndarray
    detector: np.ndarray
    iou_threshold: float

    @property
    def thresholds(self) -> np.ndarray:
        return self.scores.thresholds

    @property
    def iou(self) -> np.ndarray:
        return self.scores.iou

    @property
    def n_units(self) -> int:
        return int(self.detector.shape[0])

    @property
    def n_detectors(self) -> int:
        return int(self.detector.sum())

    @property
    def detected_concepts(self) -> list[int]:
        """Distinct best concepts of the detector units (indices into `concepts`)."""
        return sorted({int(c) for c in self.top_concepts[self.detector, 0]})

    @property
    def n_unique_concepts(self) -> int:
        """The number Network Dissection reports: unique concepts with a detector."""
        return len(self.detected_concepts)

    def unique_concepts_by_category(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for c in self.detected_concepts:
            category = self.concepts[c].category
            counts[category] = counts.get(category, 0) + 1
        return counts

    def rows(self) -> list[dict[str, Any]]:
        """One dict per unit and rank: unit, rank (1 = best), concept, category, iou, detector."""
        out = []
        for unit in range(self.n_units):
            for rank, (c, value) in enumerate(
                zip(self.top_concepts[unit], self.top_iou[unit], strict=True)
            ):
                concept = self.concepts[int(c)]
                out.append(
                    {
                        "unit": unit,
                        "rank": rank + 1,
                        "concept_number": concept.number,
                        "concept": concept.name,
                        "category": concept.category,
                        "iou": float(value),
                        "detector": bool(value > self.iou_threshold),
                        "threshold": float(self.scores.thresholds[unit]),
                    }
                )
        return out


def label_units(
    layer: str,
    scores: ConceptIoU,
    concepts: Sequence[Concept],
    *,
    iou_threshold: float = 0.04,
    top_n: int = 5,
) -> LayerDissection:
    """Rank each unit's concepts by IoU and flag detectors (IoU > iou_threshold)."""
    units, k = scores.iou.shape
    if k != len(concepts):
        raise InputError(f"{k} concepts scored but {len(concepts)} concepts named.")
    n = min(top_n, k)
    order = np.argsort(-scores.iou, axis=1, kind="stable")[:, :n]
    top_iou = np.take_along_axis(scores.iou, order, axis=1)
    best = top_iou[:, 0] if n else np.zeros(units)
    return LayerDissection(
        layer=layer,
        concepts=tuple(concepts),
        scores=scores,
        top_concepts=order,
        top_iou=top_iou,
        detector=best > iou_threshold,
        iou_threshold=iou_threshold,
    )


# --------------------------------------------------------------------------- driver


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


def _feature_extractor(model: Any, layer_names: Sequence[str]) -> torch.nn.Module:
    """Only the requested nodes, named as `catalogue.models` names them everywhere else."""
    from catalogue.models import build_extractor

    if not layer_names:
        raise InputError("name at least one layer to dissect.")
    module = getattr(model, "module", model)
    module.eval()
    try:
        return build_extractor(model, layer_names, with_logits=False).eval()
    except UnitcatError:
        raise
    except Exception as e:  # torch.fx could not trace the model (data-dependent control flow)
        raise InputError(
            f"the model cannot be traced by torch.fx ({type(e).__name__}: {e}); "
            "dissect a model whose forward has no data-dependent branches."
        ) from None


def dissect(
    model: torch.nn.Module | ModelInfo,
    layer_names: Sequence[str],
    probe: ProbeSet,
    *,
    transform: Callable[[Image.Image], torch.Tensor] | None = None,
    batch_size: int = 32,
    device: str | None = "auto",
    quantile: float = 0.005,
    iou_threshold: float = 0.04,
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
        model: a torch module or a `catalogue.models.ModelInfo`; it is put in
            eval mode and its parameters are moved to `device`.
        layer_names: feature-extraction node names of convolutional outputs
            (e.g. "features.11", conv5's ReLU, in AlexNet; "conv5" in the demo
            CNN); a module name selects its last node (`catalogue.models`).
        probe: an opened `ProbeSet`.
        transform: maps a PIL RGB probe image to the model's input tensor
            (C × H × W), e.g. the weights' preprocessing; default: the
            ModelInfo's transform.
        progress: called with (images done, total) over both passes (total = 2N).

    Returns:
        For each layer name, its `LayerDissection`.
    """
    n = len(probe)
    if n == 0:
        raise InputError(
            f"the probe set {probe.directory} has no images (check split and categories)."
        )
    if transform is None:
        transform = getattr(model, "transform", None)
        if transform is None:
            raise InputError("pass the model's preprocessing as transform=…")
    dev = resolve_device(device)
    extractor = _feature_extractor(model, layer_names).to(dev)

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
            m = _as_maps(out[name], dev)
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
