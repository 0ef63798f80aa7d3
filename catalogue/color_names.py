"""Name the colour of every pixel with one of the eleven basic colour terms.

Broden's ``color`` category labels each pixel with a basic colour term
(Berlin & Kay's eleven: black, white, red, green, yellow, blue, brown, orange,
pink, purple, grey), so that network dissection can ask whether a unit is a
colour detector rather than an object detector. We name a pixel by the
nearest prototype in CIELAB (Euclidean distance, i.e. CIE76 ΔE), because
CIELAB distances follow perceived colour differences far better than RGB
distances. The prototypes are typical sRGB renderings of each term's focal
colour plus a few lighter and darker variants; the term order below is the
order of the labels the probe writer assigns.
"""

from __future__ import annotations

import numpy as np

BASIC_COLOR_TERMS: tuple[str, ...] = (
    "black",
    "white",
    "red",
    "green",
    "yellow",
    "blue",
    "brown",
    "orange",
    "pink",
    "purple",
    "grey",
)

# sRGB prototypes: (term, colour). Light and dark variants keep tints such as
# sky blue or light grey from being named white, and navy or dark grey black.
PROTOTYPES: tuple[tuple[str, tuple[int, int, int]], ...] = (
    ("black", (0, 0, 0)),
    ("white", (255, 255, 255)),
    ("red", (210, 25, 30)),
    ("red", (135, 20, 25)),
    ("green", (30, 150, 50)),
    ("green", (140, 210, 120)),
    ("green", (25, 80, 35)),
    ("yellow", (245, 225, 40)),
    ("yellow", (250, 240, 140)),
    ("blue", (30, 70, 200)),
    ("blue", (110, 170, 235)),
    ("blue", (40, 200, 230)),
    ("blue", (20, 35, 110)),
    ("brown", (120, 72, 35)),
    ("brown", (170, 120, 70)),
    ("orange", (245, 135, 25)),
    ("orange", (250, 170, 110)),
    ("pink", (245, 165, 195)),
    ("pink", (230, 90, 160)),
    ("purple", (125, 45, 155)),
    ("purple", (180, 130, 210)),
    ("grey", (128, 128, 128)),
    ("grey", (185, 185, 185)),
    ("grey", (80, 80, 80)),
)
PROTOTYPES_RGB = np.array([rgb for _, rgb in PROTOTYPES], dtype=np.uint8)
_PROTOTYPE_TERM = np.array(
    [BASIC_COLOR_TERMS.index(term) for term, _ in PROTOTYPES], dtype=np.uint8
)

_D65_WHITE = np.array([0.95047, 1.0, 1.08883])
_SRGB_TO_XYZ = np.array(
    [
        [0.4124564, 0.3575761, 0.1804375],
        [0.2126729, 0.7151522, 0.0721750],
        [0.0193339, 0.1191920, 0.9503041],
    ]
)


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """Convert sRGB (uint8 0–255, or float 0–1) in the last axis to CIELAB (D65)."""
    rgb = np.asarray(rgb)
    c = rgb.astype(np.float64) / 255.0 if rgb.dtype == np.uint8 else rgb.astype(np.float64)
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    xyz = linear @ _SRGB_TO_XYZ.T / _D65_WHITE
    delta = 6.0 / 29.0
    f = np.where(xyz > delta**3, np.cbrt(xyz), xyz / (3 * delta**2) + 4.0 / 29.0)
    lab = np.empty_like(f)
    lab[..., 0] = 116.0 * f[..., 1] - 16.0
    lab[..., 1] = 500.0 * (f[..., 0] - f[..., 1])
    lab[..., 2] = 200.0 * (f[..., 1] - f[..., 2])
    return lab


_PROTOTYPES_LAB = rgb_to_lab(PROTOTYPES_RGB)


def name_colors(rgb: np.ndarray) -> np.ndarray:
    """Index into `BASIC_COLOR_TERMS` of the nearest prototype for each pixel.

    `rgb` is (..., 3) uint8 sRGB; the result has shape (...) and dtype uint8.
    Every pixel gets exactly one name, so the per-term masks partition the image.
    """
    rgb = np.asarray(rgb)
    if rgb.shape[-1] != 3:
        raise ValueError(f"expected (..., 3) RGB values, got shape {rgb.shape}")
    lab = rgb_to_lab(rgb)
    d = ((lab[..., None, :] - _PROTOTYPES_LAB) ** 2).sum(axis=-1)
    return _PROTOTYPE_TERM[d.argmin(axis=-1)]
