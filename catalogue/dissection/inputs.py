"""The forms dissection accepts its input in: maps and masks as arrays, or as streams of batches."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

from catalogue.errors import InputError
from catalogue.probe import ImageMasks

MaskBatch = np.ndarray | torch.Tensor | Sequence[ImageMasks]


def is_array(x: object) -> bool:
    return isinstance(x, np.ndarray | torch.Tensor)


def as_maps(batch: np.ndarray | torch.Tensor, device: str) -> torch.Tensor:
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


def map_batches(maps: Any, batch_size: int) -> Iterator[Any]:
    if is_array(maps):
        for s in range(0, maps.shape[0], batch_size):
            yield maps[s : s + batch_size]
    else:
        yield from maps


def mask_batches(masks: Any, in_memory: bool, batch_size: int) -> Iterator[Any]:
    if in_memory:
        if not is_array(masks) and not isinstance(masks, Sequence):
            raise TypeError(
                "with maps as one array, masks must be an array or a sequence of ImageMasks."
            )
        for s in range(0, len(masks), batch_size):
            yield masks[s : s + batch_size]
    else:
        yield from masks
