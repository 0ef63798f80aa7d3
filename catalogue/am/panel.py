"""AM panels: the paper's 10 × 10 grid of a unit's images, as one picture or a PNG file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from catalogue.errors import InputError


def render_panel(
    images: np.ndarray | torch.Tensor,
    rows: int = 10,
    cols: int = 10,
    *,
    gap: int = 2,
    tile_size: int | None = None,
    background: int = 255,
) -> Image.Image:
    """Tile images (N × C × H × W in [0, 1], C = 1 or 3) row by row into one picture.

    The paper's panels are 10 × 10 (100 AM images per unit); tiles are separated
    by ``gap`` pixels of ``background`` (white), with no outer border, so the
    panel is ``cols·T + (cols-1)·gap`` wide and ``rows·T + (rows-1)·gap`` high,
    where T is the image side, or ``tile_size`` when given (nearest-neighbour
    resize, for small images). Unused cells stay background.
    """
    array = (
        images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    )
    if array.ndim != 4 or array.shape[1] not in (1, 3):
        raise InputError(
            f"panel images must be N × C × H × W with C = 1 or 3, got shape {array.shape}."
        )
    n, c, h, w = array.shape
    if rows < 1 or cols < 1 or gap < 0:
        raise InputError(f"a panel needs rows, cols ≥ 1 and gap ≥ 0, got {rows}, {cols}, {gap}.")
    if n > rows * cols:
        raise InputError(f"{n} images do not fit a {rows} × {cols} panel; raise rows or cols.")
    th, tw = (tile_size, tile_size) if tile_size else (h, w)
    mode = "L" if c == 1 else "RGB"
    fill = background if c == 1 else (background,) * 3
    panel = Image.new(mode, (cols * tw + (cols - 1) * gap, rows * th + (rows - 1) * gap), fill)
    pixels = (np.clip(array, 0.0, 1.0) * 255.0).round().astype(np.uint8).transpose(0, 2, 3, 1)
    for i in range(n):
        tile = Image.fromarray(pixels[i, :, :, 0] if c == 1 else pixels[i], mode)
        if (th, tw) != (h, w):
            tile = tile.resize((tw, th), Image.Resampling.NEAREST)
        r, q = divmod(i, cols)
        panel.paste(tile, (q * (tw + gap), r * (th + gap)))
    return panel


def save_panel(images: np.ndarray | torch.Tensor, path: str | Path, **kwargs: Any) -> Path:
    """Render the panel (see `render_panel`) and write it as a PNG; returns the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    render_panel(images, **kwargs).save(target, format="PNG")
    return target
