"""Fashion-MNIST in ten colours: a 100-class image set built offline, the demo's default.

Why: the object-detector paper's networks had 1,000 (or 365) classes, and its
headline — units whose top-60 precision is high while most images above their
best threshold belong to *other* classes — needs a unit that can fire for many
classes at once. Ten balanced classes leave almost no room for that, so the
demo needs at least a hundred classes of real images, and nothing can be
downloaded here. This set makes them from what Debian installs: every
Fashion-MNIST item (10 kinds of clothing) tinted in one of ten colours, the
class being the pair, e.g. "red sandal" (class index = item × 10 + colour).

Choices, and why:

- **Balance.** Within each split, each item's images are shuffled (a seeded
  permutation per split and item) and dealt the ten colours in turn, so every
  (item, colour) pair is equally frequent: 600 per class in the 60,000 training
  images, 100 per class in the 10,000 test images. Colour carries no
  information about the item, and the split and seed fix every image's colour.
- **Tinting.** A pixel of grey level g becomes ``round(g × t / 255)`` per
  channel, t the colour: the item is the colour, lit as the original was lit,
  on Fashion-MNIST's black ground. Every tint has HSV value 1 (one channel at
  255), so the brightest channel holds the original grey image exactly and the
  item's shape is as visible in every colour as in the original; the colours
  differ in hue and saturation only, which a multiplicative tint preserves in
  every pixel, bright or dark. Lightness alone (white against grey, orange
  against brown) would not survive a dim item, so no two colours differ only in it.
- **The colours.** Ten hues a reader names the same way: red, orange, yellow,
  lime, green, cyan, blue, purple, pink and white. The nearest basic colour
  term in CIELAB (`catalogue.color_names`, Berlin & Kay's eleven) names eight
  of them as we do; lime is a yellow-green (hue 82°, between yellow at 54° and
  green at 148°) and cyan a green-blue (184°), which that coarser scheme calls
  yellow and blue. White is the untinted item. The smallest CIELAB distance
  between two of the ten is ΔE76 = 42 (lime and green; ΔE above ~10 is plainly
  visible).
- **Size.** 28 × 28 is padded by 2 pixels of black to 32 × 32 (LeNet's
  convention for MNIST), so no resampling blurs the item; images are RGB.

Image keys are ``<split>/<index>-<colour>``: the Fashion-MNIST image (``train/00042``)
and its colour. The dataset's name is ``fashion-mnist-colours:<split>`` for seed 0
and ``fashion-mnist-colours-seed<n>:<split>`` for another seed, so that
`catalogue.data.resolve_dataset` finds the same images from the name alone.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from catalogue.data.datasets import ImageDataset, Transform, load_fashion_mnist
from catalogue.errors import InputError

NAME = "fashion-mnist-colours"
PAD = 2  # 28 + 2 × 2 = 32
DEFAULT_SEED = 0
SPLITS = ("train", "test", "all")

#: (name, sRGB) of the ten tints, in class order (colour index 0..9); HSV value 1 each.
COLOURS: tuple[tuple[str, tuple[int, int, int]], ...] = (
    ("red", (255, 30, 30)),
    ("orange", (255, 140, 0)),
    ("yellow", (255, 230, 0)),
    ("lime", (160, 255, 0)),
    ("green", (0, 255, 120)),
    ("cyan", (0, 240, 255)),
    ("blue", (40, 80, 255)),
    ("purple", (200, 0, 255)),
    ("pink", (255, 130, 190)),
    ("white", (255, 255, 255)),
)
COLOUR_NAMES: tuple[str, ...] = tuple(name for name, _ in COLOURS)
TINTS = np.array([rgb for _, rgb in COLOURS], dtype=np.uint16)

#: Item keys and the names used in class names ("red ankle boot").
ITEMS: tuple[tuple[str, str], ...] = (
    ("tshirt_top", "T-shirt/top"),
    ("trouser", "trouser"),
    ("pullover", "pullover"),
    ("dress", "dress"),
    ("coat", "coat"),
    ("sandal", "sandal"),
    ("shirt", "shirt"),
    ("sneaker", "sneaker"),
    ("bag", "bag"),
    ("ankle_boot", "ankle boot"),
)
N_COLOURS = len(COLOURS)
N_CLASSES = len(ITEMS) * N_COLOURS

_SPEC = re.compile(r"fashion-mnist-colou?rs(?:-seed(\d+))?", re.IGNORECASE)


def class_keys() -> list[str]:
    """``<colour>_<item>`` for class index item × 10 + colour, e.g. ``red_sandal``."""
    return [f"{colour}_{item}" for item, _ in ITEMS for colour in COLOUR_NAMES]


def class_names() -> list[str]:
    """``<colour> <item>``, e.g. "red sandal", "white T-shirt/top"."""
    return [f"{colour} {name}" for _, name in ITEMS for colour in COLOUR_NAMES]


def class_index(item: int, colour: int) -> int:
    return int(item) * N_COLOURS + int(colour)


def parse_name(base: str) -> int | None:
    """The seed a dataset name (without ``:split``) stands for, or None if it is not this set."""
    match = _SPEC.fullmatch(base.strip())
    if match is None:
        return None
    return int(match.group(1)) if match.group(1) else DEFAULT_SEED


def dataset_name(split: str, seed: int = DEFAULT_SEED) -> str:
    base = NAME if seed == DEFAULT_SEED else f"{NAME}-seed{seed}"
    return f"{base}:{split}"


def deal_colours(items: np.ndarray, seed: int, split_code: int) -> np.ndarray:
    """Colour index of each image: each item's images, in a seeded random order, get
    colours 0, 1, …, 9, 0, 1, … — equal counts per (item, colour) whenever an item's
    image count is a multiple of ten (Fashion-MNIST: 6,000 and 1,000 per item)."""
    items = np.asarray(items, dtype=np.int64)
    colours = np.empty(items.shape[0], dtype=np.int64)
    for item in np.unique(items):
        members = np.flatnonzero(items == item)
        rng = np.random.default_rng([int(seed), int(split_code), int(item)])
        order = rng.permutation(members.size)
        colours[members[order]] = np.arange(members.size) % N_COLOURS
    return colours


def tint(grey: np.ndarray, colours: np.ndarray) -> np.ndarray:
    """(n, 28, 28) grey uint8 and (n,) colour indices → (n, 32, 32, 3) RGB uint8.

    Each channel is round(g × t / 255) (integer arithmetic, halves rounded up), then
    2 pixels of black are added on every side.
    """
    grey = np.asarray(grey, dtype=np.uint16)
    if grey.ndim != 3:
        raise InputError(f"tint needs (n, h, w) grey images, got shape {grey.shape}.")
    t = TINTS[np.asarray(colours, dtype=np.int64)]  # (n, 3)
    rgb = (grey[..., None] * t[:, None, None, :] + 127) // 255
    return np.pad(rgb.astype(np.uint8), ((0, 0), (PAD, PAD), (PAD, PAD), (0, 0)))


def split_parts(split: str) -> tuple[tuple[str, int], ...]:
    """The Fashion-MNIST files of a split, with the code that seeds their colours."""
    if split not in SPLITS:
        raise InputError(f"{NAME} split must be one of {', '.join(SPLITS)}, got {split!r}.")
    train, test = ("train", 1), ("test", 2)
    return (train, test) if split == "all" else (train,) if split == "train" else (test,)


class FashionColours(ImageDataset):
    """Fashion-MNIST items in ten colours (see the module docstring), tinted on demand.

    Holds the grey 28 × 28 items, their item labels and dealt colours; ``labels`` are
    the class indices item × 10 + colour. `rgb_images` tints any subset at once (the
    demo CNN trains from it); `load_image` tints one image for extraction.
    """

    def __init__(
        self,
        grey: np.ndarray,
        items: np.ndarray,
        colours: np.ndarray,
        source_keys: Sequence[str],
        *,
        name: str,
        source: str,
        seed: int,
        transform: Transform | None = None,
        strict: bool = False,
    ) -> None:
        super().__init__(transform, strict)
        self.grey = grey
        self.items = np.asarray(items, dtype=np.int64)
        self.colours = np.asarray(colours, dtype=np.int64)
        self.labels = self.items * N_COLOURS + self.colours
        self.source_keys = list(source_keys)
        self.seed = seed
        self.name = name
        self.source = source
        self.class_keys = class_keys()
        self.class_names = class_names()

    def __len__(self) -> int:
        return int(self.grey.shape[0])

    def key(self, index: int) -> str:
        return f"{self.source_keys[index]}-{COLOUR_NAMES[self.colours[index]]}"

    def label(self, index: int) -> int:
        return int(self.labels[index])

    def rgb_images(self, indices: np.ndarray | slice | None = None) -> np.ndarray:
        """(n, 32, 32, 3) uint8 RGB images (all of them by default)."""
        pick = slice(None) if indices is None else indices
        return tint(self.grey[pick], self.colours[pick])

    def load_image(self, index: int) -> Image.Image:
        rgb = tint(self.grey[index : index + 1], self.colours[index : index + 1])[0]
        return Image.fromarray(rgb, mode="RGB")

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "seed": self.seed, "colours": list(COLOUR_NAMES)}


def load_fashion_mnist_colours(
    split: str = "test",
    *,
    seed: int = DEFAULT_SEED,
    root: str | Path | None = None,
    transform: Transform | None = None,
    strict: bool = False,
) -> FashionColours:
    """The 100-class set from Fashion-MNIST's idx files (Debian's by default).

    ``split``: ``test`` (10,000: 100 per class), ``train`` (60,000: 600 per class) or
    ``all`` (train then test). An image's colour depends only on its split, index and
    ``seed``, so ``all`` holds the same images as ``train`` and ``test`` together.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InputError(f"the colour seed must be a whole number >= 0, got {seed!r}.")
    grey, items, colours, keys = [], [], [], []
    source = ""
    for part, code in split_parts(split):
        plain = load_fashion_mnist(part, root=root)
        source = plain.source
        grey.append(plain.images)
        items.append(plain.labels)
        colours.append(deal_colours(plain.labels, seed, code))
        keys += [plain.key(i) for i in range(len(plain))]
    return FashionColours(
        np.concatenate(grey),
        np.concatenate(items),
        np.concatenate(colours),
        keys,
        name=dataset_name(split, seed),
        source=source,
        seed=seed,
        transform=transform,
        strict=strict,
    )
