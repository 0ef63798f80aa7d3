"""`make_probe`: a small synthetic probe set in Broden's format, from any labelled object images.

Each scene pastes 2–4 tinted objects onto a generated background; category
``object`` masks each visible class, category ``color`` names every pixel
with a basic colour term, as Broden's colour labels do. Such a set is a probe
set *in Broden's format*, not Broden.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from catalogue.color_names import BASIC_COLOR_TERMS, PROTOTYPES_RGB, name_colors
from catalogue.errors import InputError
from catalogue.probe.broden import COLOR_SUFFIX, Concept
from catalogue.probe.reader import ProbeSet
from catalogue.probe.writer import ProbeWriter


@dataclass
class _Item:
    intensity: np.ndarray  # float32 in [0, 1], h × w, max 1
    rgb: np.ndarray | None  # float32 h × w × 3 in [0, 1] for colour items
    klass: int


@dataclass
class _Scene:
    image: np.ndarray
    objects: np.ndarray  # int64 label map of object numbers


def make_probe(
    items: Iterable[tuple[np.ndarray, object, str]],
    out_dir: str | os.PathLike[str],
    n_images: int,
    image_size: int | tuple[int, int] = 64,
    seed: int = 0,
    *,
    mask_size: int | tuple[int, int] | None = None,
    objects_per_image: tuple[int, int] = (2, 4),
    object_scale: tuple[float, float] = (0.3, 0.6),
    shape_threshold: float = 0.3,
    val_fraction: float = 0.0,
    overwrite: bool = False,
) -> ProbeSet:
    """Build a probe set in Broden's format from labelled object images.

    Each probe image is a scene: a background (a colour gradient, smooth
    colour noise, or stripes/checks of two colours) with 2–4 objects drawn
    from `items`, each scaled to `object_scale` of the image side, tinted with
    a random colour and pasted at a random place (later objects occlude
    earlier ones). Category ``object`` gets one mask per class present (its
    visible pixels); category ``color`` names every pixel with a basic colour
    term (nearest CIELAB prototype, `catalogue.color_names`), labelled
    "<term>-c" as in Broden, so the colour masks partition each image.

    Args:
        items: (image, class key, class name) triples; images are grayscale
            (h × w) or RGB (h × w × 3) arrays of a light object on a dark
            ground (MNIST, Fashion-MNIST, scikit-learn digits). The object's
            shape is where its intensity (grey level, or the RGB mean) is at
            least `shape_threshold` of the item's maximum.
        out_dir: the directory to write (index.csv, label.csv, …, images/).
        n_images: number of scenes.
        image_size: side (or (height, width)) of the scenes, in pixels.
        seed: seeds every random choice; the same arguments give the same files.
        mask_size: size of the masks (default: the image size); Broden's are half.
        val_fraction: share of scenes put in split "val" (the rest: "train").

    Returns:
        The written probe set, opened.
    """
    ih, iw = _pair(image_size)
    sh, sw = _pair(mask_size) if mask_size is not None else (ih, iw)
    if n_images < 1:
        raise InputError(f"n_images must be at least 1, got {n_images}.")
    if min(ih, iw, sh, sw) < 8:
        raise InputError("image and mask sizes must be at least 8 pixels.")
    lo, hi = objects_per_image
    if not 1 <= lo <= hi:
        raise InputError(
            f"objects_per_image must be (lo, hi) with 1 <= lo <= hi, got {objects_per_image}."
        )
    if not 0 < object_scale[0] <= object_scale[1] <= 1:
        raise InputError(f"object_scale must be (lo, hi) within (0, 1], got {object_scale}.")
    if not 0 < shape_threshold < 1:
        raise InputError(f"shape_threshold must lie in (0, 1), got {shape_threshold}.")
    class_keys, class_names, prepared = _prepare_items(items)
    colours = [Concept(i + 1, t + COLOR_SUFFIX, "color") for i, t in enumerate(BASIC_COLOR_TERMS)]
    first_object = len(colours) + 1
    objects = [Concept(first_object + i, name, "object") for i, name in enumerate(class_names)]
    if {c.name for c in colours} & {c.name for c in objects}:
        raise InputError("an object class is named like a colour label (e.g. 'red-c'); rename it.")
    readme = (
        "A probe set in the Broden on-disk format (index.csv, label.csv, category.csv,\n"
        "c_<category>.csv, images/), made by unitcat's catalogue.probe.make_probe.\n"
        "It is NOT Broden: its scenes are synthetic composites of labelled object images\n"
        "on generated backgrounds, with categories 'object' (one mask per visible class)\n"
        "and 'color' (each pixel named with a basic colour term, nearest CIELAB prototype).\n"
        f"images: {n_images}; image size {ih}x{iw}; mask size {sh}x{sw}; seed {seed};\n"
        f"objects per image {lo}-{hi}; object scale {object_scale}; shape threshold {shape_threshold};\n"
        f"object classes ({len(class_keys)}): "
        + ", ".join(f"{k}={n}" for k, n in zip(class_keys, class_names, strict=True))
        + "\nMask pixels hold the label number as R + 256*G.\n"
    )
    rng = np.random.default_rng(seed)
    with ProbeWriter(out_dir, [*colours, *objects], overwrite=overwrite, readme=readme) as writer:
        for _ in range(n_images):
            while True:
                scene = _compose(
                    rng, prepared, (ih, iw), (lo, hi), object_scale, shape_threshold, first_object
                )
                object_map = _resize_labels(scene.objects, (sh, sw))
                if object_map.any():
                    break
            colour_map = _resize_labels(name_colors(scene.image).astype(np.int64) + 1, (sh, sw))
            split = "val" if rng.random() < val_fraction else "train"
            writer.add(scene.image, {"color": colour_map, "object": object_map}, split=split)
    return ProbeSet.open(out_dir)


def _pair(size: int | tuple[int, int]) -> tuple[int, int]:
    if isinstance(size, int):
        return size, size
    h, w = size
    return int(h), int(w)


def _prepare_items(
    items: Iterable[tuple[np.ndarray, object, str]],
) -> tuple[list[str], list[str], list[_Item]]:
    keys: dict[object, int] = {}
    names: list[str] = []
    prepared: list[_Item] = []
    for image, key, name in items:
        array = np.asarray(image, dtype=np.float32)
        if array.ndim == 3 and array.shape[2] == 3:
            intensity = array.mean(axis=2)
            rgb: np.ndarray | None = array
        elif array.ndim == 2:
            intensity, rgb = array, None
        else:
            raise InputError(
                f"item images must be h × w or h × w × 3 arrays, got shape {array.shape}."
            )
        top = float(intensity.max())
        if not math.isfinite(top) or top <= 0:
            continue  # an all-dark item has no shape
        if key not in keys:
            if str(name) in names:
                raise InputError(
                    f"two classes share the name {name!r}; class names must be unique."
                )
            keys[key] = len(names)
            names.append(str(name))
        elif names[keys[key]] != str(name):
            raise InputError(f"class {key!r} is named both {names[keys[key]]!r} and {name!r}.")
        prepared.append(
            _Item(
                intensity / top, None if rgb is None else np.clip(rgb / rgb.max(), 0, 1), keys[key]
            )
        )
    if not prepared:
        raise InputError("make_probe needs at least one item with a visible (non-black) object.")
    return [str(k) for k in keys], names, prepared


def _random_colour(rng: np.random.Generator) -> np.ndarray:
    if rng.random() < 0.5:
        base = PROTOTYPES_RGB[rng.integers(len(PROTOTYPES_RGB))].astype(np.float32)
        return np.clip(base + rng.normal(0, 20, 3), 0, 255) / 255.0
    return rng.random(3).astype(np.float32)


def _background(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    h, w = shape
    c1, c2 = _random_colour(rng), _random_colour(rng)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    kind = ("gradient", "noise", "stripes", "checks")[rng.integers(4)]
    if kind == "gradient":
        angle = rng.uniform(0, 2 * np.pi)
        t = x * np.cos(angle) + y * np.sin(angle)
        t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    elif kind == "noise":
        cells = int(rng.integers(2, 7))
        coarse = (rng.random((cells, cells)) * 255).astype(np.uint8)
        t = (
            np.asarray(
                Image.fromarray(coarse).resize((w, h), Image.Resampling.BILINEAR), np.float32
            )
            / 255
        )
        t = np.clip(t + rng.normal(0, 0.05, (h, w)), 0, 1)
    else:
        period = rng.uniform(4, max(h, w) / 3)
        angle = rng.uniform(0, np.pi)
        u = (x * np.cos(angle) + y * np.sin(angle)) / period
        if kind == "stripes":
            t = (np.floor(u) % 2).astype(np.float32)
        else:
            v = (-x * np.sin(angle) + y * np.cos(angle)) / period
            t = ((np.floor(u) + np.floor(v)) % 2).astype(np.float32)
    return (c1 * (1 - t[..., None]) + c2 * t[..., None]).astype(np.float32)


def _compose(
    rng: np.random.Generator,
    items: Sequence[_Item],
    shape: tuple[int, int],
    count: tuple[int, int],
    scale: tuple[float, float],
    shape_threshold: float,
    first_object: int,
) -> _Scene:
    h, w = shape
    canvas = _background(rng, shape)
    objects = np.zeros(shape, dtype=np.int64)
    for _ in range(int(rng.integers(count[0], count[1] + 1))):
        item = items[int(rng.integers(len(items)))]
        side = rng.uniform(*scale) * min(h, w)
        ratio = item.intensity.shape[1] / item.intensity.shape[0]
        oh = max(4, min(h, round(side / math.sqrt(ratio))))
        ow = max(4, min(w, round(side * math.sqrt(ratio))))
        alpha = _resize_float(item.intensity, (oh, ow))
        shape_mask = alpha >= shape_threshold
        if not shape_mask.any():
            continue
        top = int(rng.integers(0, h - oh + 1))
        left = int(rng.integers(0, w - ow + 1))
        tint = _random_colour(rng)
        if item.rgb is None:
            look = tint * (0.7 + 0.3 * alpha[..., None])
        else:
            look = _resize_float(item.rgb, (oh, ow)) * (0.5 + 0.5 * tint)
        region = canvas[top : top + oh, left : left + ow]
        a = np.clip(alpha / shape_threshold, 0, 1)[..., None]  # opaque inside the shape
        canvas[top : top + oh, left : left + ow] = a * look + (1 - a) * region
        objects[top : top + oh, left : left + ow][shape_mask] = first_object + item.klass
    image = np.round(np.clip(canvas, 0, 1) * 255).astype(np.uint8)
    return _Scene(image, objects)


def _resize_float(array: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of an h × w (× c) float array in [0, 1] to `shape`."""
    h, w = shape
    if array.ndim == 2:
        return np.asarray(
            Image.fromarray(array.astype(np.float32)).resize((w, h), Image.Resampling.BILINEAR)
        )
    return np.stack([_resize_float(array[..., c], shape) for c in range(array.shape[2])], axis=-1)


def _resize_labels(labels: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of an integer label map (keeps labels exact)."""
    if labels.shape == shape:
        return labels
    h, w = labels.shape
    rows = np.minimum(((np.arange(shape[0]) + 0.5) * h / shape[0]).astype(np.int64), h - 1)
    cols = np.minimum(((np.arange(shape[1]) + 0.5) * w / shape[1]).astype(np.int64), w - 1)
    return labels[rows[:, None], cols[None, :]]
