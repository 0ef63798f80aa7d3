"""Labelled image sets, and the names by which a command asks for one.

- `datasets`: every dataset behind one interface (`ImageDataset` of `Sample`s): image
  folders, Fashion-MNIST, scikit-learn's digits, arrays; the idx reader and class maps.
- `fashion_colours`: Fashion-MNIST in ten colours, the demo's 100-class set.

`resolve_dataset` turns a name (``digits:test``, ``fashion-mnist-colours:train``, a
folder) into one of them; the package re-exports what callers use, so
``from catalogue.data import ImageDataset, resolve_dataset`` is the one import.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from catalogue.data.datasets import (
    BUNDLED_NAMES,
    DIGIT_NAMES,
    DIGITS_SIZE,
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_DIR,
    FASHION_MNIST_INSTALL,
    IMAGE_EXTENSIONS,
    SPLITS,
    ArrayImageDataset,
    Batch,
    ImageDataset,
    ImageFolderDataset,
    Sample,
    Transform,
    collate_samples,
    load_digits,
    load_fashion_mnist,
    read_class_mapping,
    read_idx,
    to_tensor,
)
from catalogue.data.fashion_colours import load_fashion_mnist_colours, parse_name
from catalogue.errors import InputError

__all__ = [
    "BUNDLED_NAMES",
    "DIGITS_SIZE",
    "DIGIT_NAMES",
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_DIR",
    "FASHION_MNIST_INSTALL",
    "IMAGE_EXTENSIONS",
    "SPLITS",
    "ArrayImageDataset",
    "Batch",
    "ImageDataset",
    "ImageFolderDataset",
    "Sample",
    "Transform",
    "collate_samples",
    "is_bundled",
    "load_digits",
    "load_fashion_mnist",
    "load_fashion_mnist_colours",
    "read_class_mapping",
    "read_idx",
    "resolve_dataset",
    "to_tensor",
]


def resolve_dataset(
    spec: str,
    *,
    transform: Transform | None = None,
    class_keys: Sequence[str] | None = None,
    class_names: Sequence[str] | None = None,
    mapping_file: str | Path | None = None,
    strict: bool = False,
    fashion_mnist_dir: str | Path | None = None,
) -> ImageDataset:
    """A dataset from a CLI string.

    ``digits[:train|test|all]`` (test by default), ``fashion-mnist[:train|test|all]``
    (test by default), ``fashion-mnist-colours[-seed<n>][:train|test|all]`` (the
    100-class set of `catalogue.data.fashion_colours`, test by default), or a path to an
    image-folder tree. ``class_keys`` /
    ``class_names`` are the model's classes (used to order folder classes).
    """
    text = spec.strip()
    base, _, split = text.partition(":")
    lowered = base.lower()
    colour_seed = _colour_seed(base)
    if colour_seed is not None and not Path(text).exists():
        return load_fashion_mnist_colours(
            (split or "test").lower(),
            seed=colour_seed,
            root=fashion_mnist_dir,
            transform=transform,
            strict=strict,
        )
    if (
        lowered in ("digits", "fashion-mnist", "fashion_mnist", "fashionmnist")
        and not Path(text).exists()
    ):
        split = (split or "test").lower()
        if lowered == "digits":
            return load_digits(split, transform=transform, strict=strict)
        return load_fashion_mnist(split, root=fashion_mnist_dir, transform=transform, strict=strict)
    path = Path(text).expanduser()
    if path.exists():
        return ImageFolderDataset(
            path,
            transform=transform,
            class_keys=class_keys,
            class_names=class_names,
            mapping_file=mapping_file,
            strict=strict,
        )
    raise InputError(
        f"dataset {spec!r} is not digits[:split], fashion-mnist[:split], "
        "fashion-mnist-colours[:split] or an existing image folder."
    )


def _colour_seed(base: str) -> int | None:
    """The seed of a ``fashion-mnist-colours[-seed<n>]`` name, None for any other name."""
    return parse_name(base)


def is_bundled(name: str) -> bool:
    """Whether a dataset name (``digits:test``, ``fashion-mnist-colours:train`` …) is one
    whose images ship in a package rather than as files (`resolve_dataset` rebuilds it)."""
    base = name.partition(":")[0]
    return base.lower() in BUNDLED_NAMES or _colour_seed(base) is not None
