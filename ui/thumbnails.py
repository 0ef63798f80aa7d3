"""Images as the pages send them: thumbnails encoded once, heat maps drawn over images.

A page that hands Streamlit a PIL image or a large file makes it decode and encode the
image again on every run; a thumbnail encoded once at twice its display width (sharp on
high-density screens) and cached as bytes is sent as it is. Small images (32 px
Fashion-MNIST, 8 px digits) are enlarged by whole pixels, so that they stay sharp
instead of being blurred by the browser.

`heat_overlay` draws a unit's spatial map over the image the network saw: the map
upsampled bilinearly (pixel centres aligned, as dissection upsamples it), scaled by a
maximum shared by the images shown, so that equal colours mean equal activations.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

#: Display width of a top-image thumbnail (px); encoded at twice that.
THUMB_PX = 84
#: Opacity of the hottest point of a heat map over its image.
HEAT_OPACITY = 0.65


def _as_image(image: Any) -> Image.Image | None:
    if image is None:
        return None
    if isinstance(image, Image.Image):
        return image
    if isinstance(image, np.ndarray):
        array = image
        if array.dtype != np.uint8:
            array = np.clip(np.rint(array * 255.0), 0, 255).astype(np.uint8)
        return Image.fromarray(array)
    try:
        with Image.open(Path(str(image))) as opened:
            opened.load()
            return opened.copy()
    except (OSError, ValueError):
        return None


def encode(image: Any, size: int = 2 * THUMB_PX) -> bytes | None:
    """An image (path, PIL image or H × W × 3 array) as PNG bytes at most `size` px wide or
    high: smaller ones enlarged by a whole factor (nearest pixel), larger ones reduced."""
    picture = _as_image(image)
    if picture is None:
        return None
    picture = picture.convert("RGB")
    side = max(picture.size)
    if side * 2 <= size:
        factor = size // side
        picture = picture.resize(
            (picture.width * factor, picture.height * factor), Image.Resampling.NEAREST
        )
    elif side > size:
        picture.thumbnail((size, size), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    picture.save(out, format="PNG", optimize=False, compress_level=3)
    return out.getvalue()


def upsample(heat: np.ndarray, width: int, height: int) -> np.ndarray:
    """A map (h × w) resized bilinearly to height × width (float32)."""
    picture = Image.fromarray(np.ascontiguousarray(heat, dtype=np.float32), mode="F")
    return np.asarray(picture.resize((width, height), Image.Resampling.BILINEAR), np.float32)


def heat_overlay(base: Any, heat: np.ndarray, vmax: float) -> np.ndarray | None:
    """`base` (an image) with `heat` (the unit's map) over it, clipped to 0..vmax: dark red
    where the unit fires a little, yellow where it fires most; H × W × 3 uint8."""
    picture = _as_image(base)
    if picture is None:
        return None
    rgb = np.asarray(picture.convert("RGB"), dtype=np.float32) / 255.0
    height, width = rgb.shape[:2]
    level = np.clip(upsample(heat, width, height) / vmax, 0.0, 1.0) if vmax > 0 else None
    if level is None:
        return np.rint(rgb * 255).astype(np.uint8)
    colour = np.stack([np.ones_like(level), level, np.zeros_like(level)], axis=-1)
    alpha = (HEAT_OPACITY * level)[..., None]
    blended = rgb * (1.0 - alpha) + colour * alpha
    return np.clip(np.rint(blended * 255.0), 0, 255).astype(np.uint8)


#: Display size of one image in a layer-grid tile (px); a tile is a square of them.
TILE_CELL_PX = 72


def _fit(picture: Image.Image, size: int) -> Image.Image:
    """Into a size × size square: enlarged by whole pixels or reduced, centred on black."""
    picture = picture.convert("RGB")
    side = max(picture.size)
    if side * 2 <= size:
        factor = size // side
        picture = picture.resize(
            (picture.width * factor, picture.height * factor), Image.Resampling.NEAREST
        )
    else:
        picture = picture.copy()
        picture.thumbnail((size, size), Image.Resampling.LANCZOS)
    square = Image.new("RGB", (size, size))
    square.paste(picture, ((size - picture.width) // 2, (size - picture.height) // 2))
    return square


def mosaic(images: list[Any], columns: int = 2, cell: int = 2 * TILE_CELL_PX) -> bytes | None:
    """Images side by side in rows of `columns` (rank order), each in a cell × cell square,
    as one encoded image (PNG for small sources, where whole pixels stay sharp; JPEG for
    photographs); None when none can be read."""
    pictures = [p for p in (_as_image(i) for i in images) if p is not None]
    if not pictures:
        return None
    rows = -(-len(pictures) // columns)
    sheet = Image.new("RGB", (columns * cell, rows * cell))
    for i, picture in enumerate(pictures):
        sheet.paste(_fit(picture, cell), ((i % columns) * cell, (i // columns) * cell))
    small = max(max(p.size) for p in pictures) * 2 <= cell
    out = io.BytesIO()
    if small:
        sheet.save(out, format="PNG", compress_level=3)
    else:
        sheet.save(out, format="JPEG", quality=88)
    return out.getvalue()
