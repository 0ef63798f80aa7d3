"""The pure core: `unit_concept_iou(maps, masks, quantile)` — thresholds, then the IoU tally."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch

from catalogue.config import resolve_device
from catalogue.dissection.inputs import MaskBatch, is_array, map_batches, mask_batches
from catalogue.dissection.tally import DEFAULT_CHUNK_ELEMENTS, ConceptIoU, IoUTally
from catalogue.dissection.thresholds import unit_thresholds
from catalogue.errors import InputError
from catalogue.measures import DISSECTION_QUANTILE


def unit_concept_iou(
    maps: np.ndarray | torch.Tensor | Iterable[np.ndarray | torch.Tensor],
    masks: MaskBatch | Iterable[MaskBatch],
    quantile: float = DISSECTION_QUANTILE,
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
    in_memory = is_array(maps)
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
        map_batches(maps, batch_size), mask_batches(masks, in_memory, batch_size), strict=True
    ):
        if tally is None:
            k = n_concepts
            if k is None:
                if not is_array(mask_batch):
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
