"""Labelled image sets behind one interface: image-folder trees, Fashion-MNIST, digits
(and, in `catalogue.data.fashion_colours`, Fashion-MNIST in ten colours).

Every dataset is a torch ``Dataset`` of `Sample`s (image tensor, label, key,
position) with ``name``, ``class_keys`` and ``class_names`` for the catalogue.
Images are opened as PIL RGB images and passed through the model's
``transform``, so one code path serves ImageNet-sized photos and 28 × 28 idx
files alike.

Why a corrupt file does not raise: one unreadable JPEG among 50,000 must not
kill an hour of extraction. In the default mode a sample that cannot be read
comes back with ``image=None`` and the reason; extraction skips it and records
it (`catalogue.store.ActivationStore.add_skipped`). ``strict=True`` raises
`InputError` instead.

Class order must match the model's outputs. For an image folder it comes from,
in this order: a mapping file (CSV ``index,key,name``, or ImageNet's
``LOC_synset_mapping.txt``: ``<wnid> <names>`` per line, in output order); the
model's class keys; else the sorted folder names — which is torchvision's
ImageNet order (the sorted WordNet ids) when the tree holds all 1,000 classes.
"""

from __future__ import annotations

import csv
import functools
import gzip
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from catalogue.errors import InputError, NotFound

IMAGE_EXTENSIONS = (
    ".jpg",
    ".jpeg",
    ".png",
    ".ppm",
    ".bmp",
    ".pgm",
    ".tif",
    ".tiff",
    ".webp",
    ".gif",
)
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_INSTALL = "apt-get install -y dataset-fashion-mnist"
FASHION_MNIST_CLASSES = (
    ("tshirt_top", "T-shirt/top"),
    ("trouser", "Trouser"),
    ("pullover", "Pullover"),
    ("dress", "Dress"),
    ("coat", "Coat"),
    ("sandal", "Sandal"),
    ("shirt", "Shirt"),
    ("sneaker", "Sneaker"),
    ("bag", "Bag"),
    ("ankle_boot", "Ankle boot"),
)
DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
DIGITS_SIZE = 32
SPLITS = ("train", "test", "all")
#: Datasets whose images are arrays in a package (besides fashion-mnist-colours).
BUNDLED_NAMES = ("digits", "fashion-mnist", "fashion_mnist", "fashionmnist")

Transform = Callable[[Image.Image], torch.Tensor]


def to_tensor(image: Image.Image) -> torch.Tensor:
    """The default transform: RGB image → float tensor (3, H, W) in [0, 1]."""
    array = np.asarray(image.convert("RGB"), dtype=np.uint8)
    return torch.from_numpy(array.copy()).permute(2, 0, 1).float().div_(255.0)


@dataclass
class Sample:
    """One item: ``image`` is None when it could not be read (``error`` says why)."""

    image: torch.Tensor | None
    label: int
    key: str
    index: int
    error: str | None = None


@dataclass
class Batch:
    """Collated samples: the readable ones stacked, the unreadable ones listed."""

    images: torch.Tensor
    labels: torch.Tensor
    keys: list[str]
    indices: torch.Tensor
    skipped: list[tuple[str, str, int]] = field(default_factory=list)

    def pin_memory(self) -> Batch:
        self.images = self.images.pin_memory()
        self.labels = self.labels.pin_memory()
        return self

    def __len__(self) -> int:
        return len(self.keys)


def collate_samples(samples: Sequence[Sample]) -> Batch:
    """DataLoader ``collate_fn``: stack readable images, set aside unreadable ones."""
    good = [s for s in samples if s.image is not None]
    skipped = [(s.key, s.error or "unreadable", s.index) for s in samples if s.image is None]
    images = torch.stack([s.image for s in good]) if good else torch.empty(0)
    return Batch(
        images=images,
        labels=torch.tensor([s.label for s in good], dtype=torch.int64),
        keys=[s.key for s in good],
        indices=torch.tensor([s.index for s in good], dtype=torch.int64),
        skipped=skipped,
    )


#: what reading an unreadable image raises (PIL, numpy and the file system)
UNREADABLE = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'unreadable'}"


def _unreadable(key: str, exc: BaseException) -> InputError:
    return InputError(
        f"cannot read image {key} ({_reason(exc)}); fix or remove it, or run without --strict "
        "to skip it."
    )


class ImageDataset(torch.utils.data.Dataset):
    """Base class: subclasses implement ``__len__``, `key`, `label` and `load_image`."""

    name: str = "images"
    source: str = ""
    class_keys: list[str]
    class_names: list[str]

    def __init__(self, transform: Transform | None = None, strict: bool = False) -> None:
        self.transform: Transform = transform or to_tensor
        self.strict = strict

    def __len__(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def key(self, index: int) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def label(self, index: int) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def load_image(self, index: int) -> Image.Image:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def n_classes(self) -> int:
        return len(self.class_keys)

    def __getitem__(self, index: int) -> Sample:
        key = self.key(index)
        label = self.label(index)
        try:
            image = self.transform(self.load_image(index))
        except UNREADABLE as exc:
            if self.strict:
                raise _unreadable(key, exc) from exc
            return Sample(None, label, key, index, _reason(exc))
        return Sample(image, label, key, index)

    def check_image(self, index: int) -> None:
        """Raise the one-line error a strict run stops on if image ``index`` cannot be read.

        A strict extraction checks every image this way before it records anything;
        subclasses whose images live in files read only what tells a broken file apart
        (`ImageFolderDataset`: the header), not the whole image."""
        try:
            self.load_image(index)
        except UNREADABLE as exc:
            raise _unreadable(self.key(index), exc) from exc

    def describe(self) -> dict[str, Any]:
        """What the catalogue records about the dataset."""
        return {
            "name": self.name,
            "source": self.source,
            "n_images": len(self),
            "n_classes": self.n_classes,
        }


# ---------------------------------------------------------------- array-backed sets
class ArrayImageDataset(ImageDataset):
    """Grayscale images held in memory as uint8 (N, H, W), e.g. idx files or scikit-learn digits."""

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        keys: Sequence[str],
        *,
        name: str,
        class_keys: Sequence[str],
        class_names: Sequence[str],
        source: str = "",
        transform: Transform | None = None,
        strict: bool = False,
    ) -> None:
        super().__init__(transform, strict)
        if images.ndim != 3 or images.dtype != np.uint8:
            raise InputError(
                f"{name}: images must be uint8 (N, H, W), got {images.dtype} {images.shape}."
            )
        if not (images.shape[0] == labels.shape[0] == len(keys)):
            raise InputError(
                f"{name}: {images.shape[0]} images, {labels.shape[0]} labels, {len(keys)} keys."
            )
        if labels.size and (labels.min() < 0 or labels.max() >= len(class_keys)):
            raise InputError(f"{name}: labels outside 0..{len(class_keys) - 1}.")
        self.images = images
        self.labels = labels.astype(np.int64, copy=False)
        self._keys = list(keys)
        self.name = name
        self.source = source
        self.class_keys = list(class_keys)
        self.class_names = list(class_names)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def key(self, index: int) -> str:
        return self._keys[index]

    def label(self, index: int) -> int:
        return int(self.labels[index])

    def load_image(self, index: int) -> Image.Image:
        return Image.fromarray(self.images[index])


_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> np.ndarray:
    """Read an idx file (LeCun's MNIST format; ``.gz`` or plain) into a numpy array."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError as exc:
        raise NotFound(f"idx file {path} does not exist.") from exc
    except (OSError, EOFError) as exc:
        raise InputError(f"cannot read idx file {path} ({exc}).") from exc
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise InputError(f"{path} is not an idx file (bad magic number).")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise InputError(f"{path} is truncated (idx header).")
    shape = tuple(int(x) for x in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) - header != expected:
        raise InputError(
            f"{path} holds {len(data) - header} data bytes; its header says {expected}."
        )
    return (
        np.frombuffer(data, dtype=dtype, offset=header)
        .reshape(shape)
        .astype(dtype.newbyteorder("="))
    )


def _idx_file(root: Path, stem: str) -> Path:
    for candidate in (root / f"{stem}.gz", root / stem):
        if candidate.exists():
            return candidate
    raise NotFound(
        f"Fashion-MNIST file {root / (stem + '.gz')} is missing; install it with `{FASHION_MNIST_INSTALL}`"
        " (or pass the folder that holds the idx files)."
    )


def load_fashion_mnist(
    split: str = "test",
    *,
    root: str | Path | None = None,
    transform: Transform | None = None,
    strict: bool = False,
) -> ArrayImageDataset:
    """Fashion-MNIST from its idx files (Debian's ``dataset-fashion-mnist`` by default).

    ``split``: ``test`` (10,000, ``t10k-*``), ``train`` (60,000) or ``all`` (train then test).
    """
    root = Path(root) if root is not None else FASHION_MNIST_DIR
    if split not in SPLITS:
        raise InputError(f"Fashion-MNIST split must be one of {', '.join(SPLITS)}, got {split!r}.")
    parts = ("train", "t10k") if split == "all" else ("t10k",) if split == "test" else ("train",)
    images, labels, keys = [], [], []
    for part in parts:
        x = read_idx(_idx_file(root, f"{part}-images-idx3-ubyte"))
        y = read_idx(_idx_file(root, f"{part}-labels-idx1-ubyte"))
        if x.ndim != 3 or y.ndim != 1 or x.shape[0] != y.shape[0]:
            raise InputError(
                f"Fashion-MNIST {part} files disagree: images {x.shape}, labels {y.shape}."
            )
        name = "test" if part == "t10k" else "train"
        images.append(x.astype(np.uint8, copy=False))
        labels.append(y.astype(np.int64))
        keys += [f"{name}/{i:05d}" for i in range(x.shape[0])]
    return ArrayImageDataset(
        np.concatenate(images),
        np.concatenate(labels),
        keys,
        name=f"fashion-mnist:{split}",
        class_keys=[k for k, _ in FASHION_MNIST_CLASSES],
        class_names=[n for _, n in FASHION_MNIST_CLASSES],
        source=str(root),
        transform=transform,
        strict=strict,
    )


@functools.cache
def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """All 1,797 digits as uint8 32 × 32 images (bilinear upsampling of 0..16 → 0..255) and labels."""
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    raw = np.clip(np.rint(bunch.images * (255.0 / 16.0)), 0, 255).astype(np.uint8)
    size = (DIGITS_SIZE, DIGITS_SIZE)
    up = np.stack(
        [np.asarray(Image.fromarray(im).resize(size, Image.Resampling.BILINEAR)) for im in raw]
    )
    up.setflags(write=False)  # shared between calls
    return up, bunch.target.astype(np.int64)


def load_digits(
    split: str = "test", *, transform: Transform | None = None, strict: bool = False
) -> ArrayImageDataset:
    """scikit-learn's bundled 8 × 8 digits (1,797), upsampled bilinearly to 32 × 32.

    Fixed split: every fifth image (index % 5 == 0, 360 images) is ``test``,
    the rest (1,437) ``train``; keys are the index in the full set.
    """
    if split not in SPLITS:
        raise InputError(f"digits split must be one of {', '.join(SPLITS)}, got {split!r}.")
    images, targets = _digits_arrays()
    index = np.arange(images.shape[0])
    if split == "test":
        index = index[index % 5 == 0]
    elif split == "train":
        index = index[index % 5 != 0]
    return ArrayImageDataset(
        images[index],
        targets[index],
        [f"{i:04d}" for i in index],
        name=f"digits:{split}",
        class_keys=[str(d) for d in range(10)],
        class_names=list(DIGIT_NAMES),
        source="sklearn.datasets.load_digits",
        transform=transform,
        strict=strict,
    )


# ---------------------------------------------------------------- image folders
def read_class_mapping(path: str | Path) -> tuple[list[str], list[str]]:
    """Class keys and names in model output order from a mapping file.

    Accepts a CSV with header ``index,key,name`` (indices 0..C-1, any order)
    or ImageNet's ``LOC_synset_mapping.txt`` (``<wnid> <name, …>`` per line, in order).
    """
    path = Path(path)
    if not path.is_file():
        raise NotFound(f"class mapping file {path} does not exist.")
    text = path.read_text(encoding="utf-8-sig")
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise InputError(f"class mapping file {path} is empty.")
    if lines[0].replace(" ", "").lower().startswith("index,key"):
        rows = list(csv.DictReader(lines))
        try:
            entries = sorted(
                (int(r["index"]), r["key"].strip(), (r.get("name") or r["key"]).strip())
                for r in rows
            )
        except (KeyError, ValueError, AttributeError) as exc:
            raise InputError(
                f"{path}: every row needs an integer index and a key ({exc})."
            ) from exc
        if [e[0] for e in entries] != list(range(len(entries))):
            raise InputError(f"{path}: indices must be 0..{len(entries) - 1}, each once.")
        keys = [e[1] for e in entries]
        names = [e[2] for e in entries]
    else:
        keys, names = [], []
        for line in lines:
            key, _, name = line.strip().partition(" ")
            keys.append(key)
            names.append(name.strip() or key)
    if len(set(keys)) != len(keys):
        raise InputError(f"{path}: class keys must be unique.")
    return keys, names


class ImageFolderDataset(ImageDataset):
    """A tree ``root/<class key>/…/<image>`` (ImageNet layout: one folder per WordNet id)."""

    def __init__(
        self,
        root: str | Path,
        *,
        transform: Transform | None = None,
        class_keys: Sequence[str] | None = None,
        class_names: Sequence[str] | None = None,
        mapping_file: str | Path | None = None,
        strict: bool = False,
        name: str | None = None,
    ) -> None:
        super().__init__(transform, strict)
        root = Path(root).expanduser()
        if not root.exists():
            raise InputError(f"image folder {root} does not exist.")
        if not root.is_dir():
            raise InputError(f"{root} is not a folder of class folders.")
        folders = sorted(
            entry.name
            for entry in os.scandir(root)
            if entry.is_dir() and not entry.name.startswith(".")
        )
        if not folders:
            raise InputError(
                f"image folder {root} has no class folders (expected {root}/<class>/<image>)."
            )
        keys, names = self._class_list(root, folders, class_keys, class_names, mapping_file)
        position = {k: i for i, k in enumerate(keys)}
        unknown = [f for f in folders if f not in position]
        if unknown:
            shown = ", ".join(unknown[:5]) + (" …" if len(unknown) > 5 else "")
            raise InputError(
                f"{len(unknown)} folder(s) in {root} are not classes of the model ({shown}); "
                "remove them or give a mapping file (CSV index,key,name)."
            )
        files: list[tuple[str, int]] = []
        for folder in folders:
            for dirpath, dirnames, filenames in os.walk(root / folder, followlinks=True):
                dirnames.sort()
                for filename in sorted(filenames):
                    if filename.lower().endswith(IMAGE_EXTENSIONS) and not filename.startswith("."):
                        rel = os.path.relpath(os.path.join(dirpath, filename), root)
                        files.append((rel.replace(os.sep, "/"), position[folder]))
        if not files:
            raise InputError(
                f"image folder {root} has class folders but no images ({', '.join(IMAGE_EXTENSIONS)})."
            )
        self.root = root
        self.files = files
        self.name = name or root.name
        self.source = str(root.resolve())
        self.class_keys = keys
        self.class_names = names

    @staticmethod
    def _class_list(
        root: Path,
        folders: list[str],
        class_keys: Sequence[str] | None,
        class_names: Sequence[str] | None,
        mapping_file: str | Path | None,
    ) -> tuple[list[str], list[str]]:
        if mapping_file is not None:
            return read_class_mapping(mapping_file)
        if class_keys is not None:
            keys = [str(k) for k in class_keys]
            names = [str(n) for n in class_names] if class_names is not None else list(keys)
            return keys, names
        if class_names is not None and len(class_names) != len(folders):
            raise InputError(
                f"{root} has {len(folders)} class folders but the model has {len(class_names)} classes "
                "and no class keys to place them; give a mapping file (CSV index,key,name, or "
                "LOC_synset_mapping.txt) or a tree with every class."
            )
        names = [str(n) for n in class_names] if class_names is not None else list(folders)
        return list(folders), names

    def __len__(self) -> int:
        return len(self.files)

    def key(self, index: int) -> str:
        return self.files[index][0]

    def label(self, index: int) -> int:
        return self.files[index][1]

    def load_image(self, index: int) -> Image.Image:
        with Image.open(self.root / self.files[index][0]) as image:
            image.load()
            return image.convert("RGB")

    def check_image(self, index: int) -> None:
        """The header of the image file (fast; a file damaged further in fails when it is read)."""
        try:
            with Image.open(self.root / self.files[index][0]) as image:
                image.verify()
        except UNREADABLE as exc:
            raise _unreadable(self.key(index), exc) from exc
