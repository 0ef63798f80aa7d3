"""Probe sets in the Broden on-disk format: read them, write them, make them.

Network dissection (Bau, Zhou, Khosla, Oliva & Torralba, CVPR 2017) measures
how well each unit's thresholded activation map overlaps pixel-labelled
concepts of a *probe set*. Their probe set, Broden, is stored as:

```
index.csv          image,split,ih,iw,sh,sw,<category>,<category>,…
                   one row per image; a category field holds ';'-separated
                   mask PNG names (pixel labels) or label numbers (labels of
                   the whole image, e.g. scene, texture); '' = not annotated
label.csv          number,name,category,frequency,coverage,syns
                   category is e.g. "material(36);object(3)" (images per category)
category.csv       name,first,last,count,frequency
c_<category>.csv   code,number,name,frequency,coverage  (dense per-category codes)
images/…           the images and the mask PNGs, paths relative to images/;
                   a mask pixel's label number is R + 256·G, 0 = unlabelled
```

`ProbeSet.open` reads such a directory (the real Broden too) lazily, one
image at a time, so Broden's 63,305 images never have their masks in memory
together. `ProbeWriter` writes one, and `make_probe` builds a small synthetic
probe set in this format from any labelled image collection (objects pasted
onto varied backgrounds, plus Broden-style colour labels); such a set is a
probe set *in Broden's format*, not Broden.
"""

from __future__ import annotations

import csv
import math
import os
import re
import shutil
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from catalogue.color_names import BASIC_COLOR_TERMS, PROTOTYPES_RGB, name_colors
from catalogue.errors import InputError

META_COLUMNS = ("image", "split", "ih", "iw", "sh", "sw")
LABEL_COLUMNS = ("number", "name", "category", "frequency", "coverage", "syns")
CATEGORY_COLUMNS = ("name", "first", "last", "count", "frequency")
CODE_COLUMNS = ("code", "number", "name", "frequency", "coverage")
COLOR_SUFFIX = "-c"  # Broden names its colour labels "red-c", "black-c", …

_NOT_IN_LABELS = -2  # label number absent from label.csv
_OTHER_CATEGORY = -1  # known label, but not of a selected category
_CATEGORY_FIELD = re.compile(r"^([^()]+)\((\d+)\)$")
_NAME_OK = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass(frozen=True)
class Concept:
    """A labelled concept: its global label number, name and (primary) category."""

    number: int
    name: str
    category: str


@dataclass
class ImageMasks:
    """The concept masks of one probe image, sparse over concepts.

    `concepts` (k,) indexes the probe set's concept list; `masks` (k, H, W) is
    True where that concept is present (the whole image for image-level
    labels). Only concepts present in the image are listed. `annotated` (G,)
    says for each category whether the image carries any label of it (Bau et
    al.'s code counts a unit's firing pixels towards a concept's union only on
    images annotated in the concept's category); None = annotated in all.
    """

    concepts: np.ndarray
    masks: np.ndarray
    annotated: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.masks.shape[1]), int(self.masks.shape[2])

    def dense(self, n_concepts: int) -> np.ndarray:
        """(n_concepts, H, W) boolean masks, all False for absent concepts."""
        out = np.zeros((n_concepts, *self.shape), dtype=bool)
        out[self.concepts] = self.masks
        return out


@dataclass
class ProbeSample:
    """One probe image: RGB uint8 pixels (ih × iw × 3) and its concept masks (sh × sw)."""

    index: int
    key: str
    split: str
    image: np.ndarray
    masks: ImageMasks


@dataclass(frozen=True)
class _Row:
    line: int
    image: str
    split: str
    ih: int
    iw: int
    sh: int
    sw: int
    fields: tuple[tuple[str, ...], ...]  # per selected category: the ';'-separated entries


class ProbeSet:
    """A probe set in Broden's on-disk format, read one image at a time.

    Concepts are the labels of the selected categories, in label-number order;
    a label listed under several categories (Broden's *fabric* is a material
    and an object) is one concept whose `category` is the one where it covers
    the most pixels (c_<category>.csv's coverage, as NetDissect's primary
    category; then the most images), and its mask is the union over those
    categories' masks.
    Indexing returns a `ProbeSample`; the object is picklable, so a torch
    DataLoader with worker processes can decode images in parallel.
    """

    def __init__(
        self,
        directory: Path,
        categories: tuple[str, ...],
        concepts: tuple[Concept, ...],
        rows: list[_Row],
        concept_of_number: np.ndarray,
    ) -> None:
        self.directory = directory
        self.categories = categories
        self.concepts = concepts
        self._rows = rows
        self._concept_of_number = concept_of_number
        self.concept_category = np.array(
            [categories.index(c.category) for c in concepts], dtype=np.int64
        )

    @classmethod
    def open(
        cls,
        directory: str | os.PathLike[str],
        *,
        categories: Sequence[str] | None = None,
        split: str | None = None,
        limit: int | None = None,
    ) -> ProbeSet:
        """Read the csv files of a Broden-format directory (images are read lazily).

        Args:
            directory: holds index.csv, label.csv, category.csv, c_<category>.csv, images/.
            categories: keep only these categories (default: all in category.csv);
                images with no label in any of them are skipped, as in NetDissect.
            split: keep only images of this split (e.g. "train", "val").
            limit: keep at most this many images (the first ones in index.csv).
        """
        root = Path(directory).expanduser()
        if not root.is_dir():
            raise InputError(
                f"probe directory {root} does not exist; point to a Broden-format folder."
            )
        all_categories = _read_categories(root)
        if categories is None:
            selected = tuple(all_categories)
        else:
            unknown = [c for c in categories if c not in all_categories]
            if unknown:
                raise InputError(
                    f"category {unknown[0]!r} is not in {root / 'category.csv'}; "
                    f"choose from {', '.join(all_categories)}."
                )
            selected = tuple(c for c in all_categories if c in set(categories))
        if not selected:
            raise InputError(
                f"no categories selected in {root}; choose from {', '.join(all_categories)}."
            )
        labels = _read_labels(root)
        coverage = {category: _read_codes(root, category, labels) for category in selected}
        concepts: list[Concept] = []
        for number in sorted(labels):
            name, per_category = labels[number]
            ranked = [  # NetDissect's primary category: the largest pixel coverage
                (coverage[c].get(number, 0.0), per_category[c], -selected.index(c), c)
                for c in selected
                if c in per_category
            ]
            if ranked:
                concepts.append(Concept(number, name, max(ranked)[3]))
        size = max(labels, default=0) + 1
        concept_of_number = np.full(size, _NOT_IN_LABELS, dtype=np.int64)
        concept_of_number[list(labels)] = _OTHER_CATEGORY
        for i, concept in enumerate(concepts):
            concept_of_number[concept.number] = i
        rows = _read_index(root, selected, split, limit)
        return cls(root, selected, tuple(concepts), rows, concept_of_number)

    def __len__(self) -> int:
        return len(self._rows)

    def __iter__(self) -> Iterator[ProbeSample]:
        for i in range(len(self)):
            yield self[i]

    def __getitem__(self, i: int) -> ProbeSample:
        row = self._row(i)
        return ProbeSample(i, row.image, row.split, self._read_image(row), self._read_masks(row))

    def image(self, i: int) -> np.ndarray:
        """The i-th image alone (ih × iw × 3 uint8), without decoding its masks."""
        return self._read_image(self._row(i))

    def masks(self, i: int) -> ImageMasks:
        """The i-th image's concept masks alone."""
        return self._read_masks(self._row(i))

    def _row(self, i: int) -> _Row:
        if not 0 <= i < len(self._rows):
            raise IndexError(i)
        return self._rows[i]

    @property
    def keys(self) -> list[str]:
        """Image paths relative to images/, in probe order."""
        return [r.image for r in self._rows]

    def _read_image(self, row: _Row) -> np.ndarray:
        path = self.directory / "images" / row.image
        try:
            with Image.open(path) as im:
                pixels = np.asarray(im.convert("RGB"))
        except FileNotFoundError:
            raise InputError(
                f"probe image {path} (index.csv line {row.line}) is missing; restore it or remove its row."
            ) from None
        except OSError as e:
            raise InputError(f"probe image {path} cannot be read ({e}); replace it.") from None
        if pixels.shape[:2] != (row.ih, row.iw):
            raise InputError(
                f"probe image {path} is {pixels.shape[0]}×{pixels.shape[1]} but index.csv line "
                f"{row.line} says ih×iw = {row.ih}×{row.iw}; fix the image or the row."
            )
        return pixels

    def _read_masks(self, row: _Row) -> ImageMasks:
        masks: dict[int, np.ndarray] = {}
        annotated = np.zeros(len(self.categories), dtype=bool)
        shape = (row.sh, row.sw)
        for g, entries in enumerate(row.fields):
            for entry in entries:
                if entry.isdigit():
                    number = int(entry)
                    self._check_known(number, f"index.csv line {row.line}")
                    annotated[g] = True
                    concept = int(self._concept_of_number[number])
                    if concept >= 0:
                        masks[concept] = np.ones(shape, dtype=bool)
                    continue
                labelmap = self._read_labelmap(entry, row)
                counts = np.bincount(labelmap.ravel())
                counts[0] = 0
                present = np.flatnonzero(counts)
                if present.size == 0:
                    continue
                lookup = self._concept_of_number
                if present[-1] >= lookup.size:
                    self._check_known(int(present[-1]), f"mask {self.directory / 'images' / entry}")
                unknown = present[lookup[present] == _NOT_IN_LABELS]
                if unknown.size:
                    self._check_known(int(unknown[0]), f"mask {self.directory / 'images' / entry}")
                annotated[g] = True
                for number in present:
                    concept = int(self._concept_of_number[number])
                    if concept < 0:
                        continue
                    hit = labelmap == number
                    if concept in masks:
                        masks[concept] |= hit
                    else:
                        masks[concept] = hit
        order = sorted(masks)
        # A concept found through another category's column (fabric in an object mask)
        # marks the image annotated in the concept's own category, so unions cover it.
        annotated[self.concept_category[order]] = True
        stacked = (
            np.stack([masks[c] for c in order]) if order else np.zeros((0, *shape), dtype=bool)
        )
        return ImageMasks(np.array(order, dtype=np.int64), stacked, annotated)

    def _read_labelmap(self, name: str, row: _Row) -> np.ndarray:
        path = self.directory / "images" / name
        try:
            with Image.open(path) as im:
                pixels = np.asarray(im)
        except FileNotFoundError:
            raise InputError(
                f"mask {path} (index.csv line {row.line}) is missing; restore it or remove it from the row."
            ) from None
        except OSError as e:
            raise InputError(f"mask {path} cannot be read ({e}); replace it.") from None
        if pixels.shape[:2] != (row.sh, row.sw):
            raise InputError(
                f"mask {path} is {pixels.shape[0]}×{pixels.shape[1]} but index.csv line {row.line} "
                f"says sh×sw = {row.sh}×{row.sw}; masks must have the segmentation size."
            )
        if pixels.ndim == 3:
            return pixels[..., 0].astype(np.int64) + 256 * pixels[..., 1].astype(np.int64)
        return pixels.astype(np.int64)

    def _check_known(self, number: int, where: str) -> None:
        if (
            number >= self._concept_of_number.size
            or self._concept_of_number[number] == _NOT_IN_LABELS
        ):
            raise InputError(
                f"{where} uses label number {number}, which label.csv does not define; "
                "add it to label.csv or fix the mask."
            )


def _read_csv(path: Path, required: Sequence[str]) -> list[dict[str, str]]:
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames or []
            missing = [c for c in required if c not in header]
            if missing:
                raise InputError(
                    f"{path} lacks the column(s) {', '.join(missing)}; a Broden-format "
                    f"{path.name} needs {', '.join(required)}."
                )
            return list(reader)
    except FileNotFoundError:
        raise InputError(
            f"{path.name} is missing from the probe directory {path.parent}; a Broden-format "
            "probe set needs index.csv, label.csv, category.csv and c_<category>.csv."
        ) from None


def _int(value: str | None, path: Path, line: int, column: str) -> int:
    try:
        return int(value or "")
    except ValueError:
        raise InputError(
            f"{path} line {line}: column {column} is {value!r}, not an integer; fix the file."
        ) from None


def _read_categories(root: Path) -> list[str]:
    path = root / "category.csv"
    rows = _read_csv(path, CATEGORY_COLUMNS[:1])
    names = [r["name"] for r in rows]
    if not names:
        raise InputError(f"{path} lists no categories; a probe set needs at least one.")
    return names


def _read_labels(root: Path) -> dict[int, tuple[str, dict[str, int]]]:
    path = root / "label.csv"
    labels: dict[int, tuple[str, dict[str, int]]] = {}
    for line, r in enumerate(_read_csv(path, ("number", "name", "category")), start=2):
        number = _int(r["number"], path, line, "number")
        if number <= 0:
            raise InputError(
                f"{path} line {line}: label number {number} must be positive (0 = unlabelled)."
            )
        per_category: dict[str, int] = {}
        for part in filter(None, (r["category"] or "").split(";")):
            m = _CATEGORY_FIELD.match(part.strip())
            if m is None:
                raise InputError(
                    f"{path} line {line}: category {part!r} is not of the form name(count), e.g. object(12)."
                )
            per_category[m.group(1)] = int(m.group(2))
        labels[number] = (r["name"], per_category)
    return labels


def _read_codes(root: Path, category: str, labels: Mapping[int, object]) -> dict[int, float]:
    """Check c_<category>.csv against label.csv; return each label's coverage there."""
    path = root / f"c_{category}.csv"
    coverage: dict[int, float] = {}
    for line, r in enumerate(_read_csv(path, ("code", "number")), start=2):
        number = _int(r["number"], path, line, "number")
        if number not in labels:
            raise InputError(f"{path} line {line}: label number {number} is not in label.csv.")
        try:
            coverage[number] = float(r.get("coverage") or 0.0)
        except ValueError:
            raise InputError(
                f"{path} line {line}: coverage {r['coverage']!r} is not a number."
            ) from None
    return coverage


def _read_index(
    root: Path, categories: tuple[str, ...], split: str | None, limit: int | None
) -> list[_Row]:
    path = root / "index.csv"
    rows: list[_Row] = []
    for line, r in enumerate(_read_csv(path, META_COLUMNS), start=2):
        if split is not None and r["split"] != split:
            continue
        fields = tuple(tuple(e for e in (r.get(c) or "").split(";") if e) for c in categories)
        if not any(fields):
            continue
        if not r["image"]:
            raise InputError(f"{path} line {line}: the image column is empty.")
        dims = [_int(r[c], path, line, c) for c in ("ih", "iw", "sh", "sw")]
        if min(dims) <= 0:
            raise InputError(f"{path} line {line}: ih, iw, sh, sw must be positive, got {dims}.")
        rows.append(_Row(line, r["image"], r["split"], *dims, fields))
        if limit is not None and len(rows) >= limit:
            break
    return rows


# --------------------------------------------------------------------------- writing


@dataclass
class _Stats:
    frequency: int = 0
    coverage: float = 0.0


class ProbeWriter:
    """Write a probe set in Broden's format, one image at a time.

    Use as a context manager (or call `close`): the csv files are written when
    it closes, index.csv last, so an interrupted write leaves a directory that
    `ProbeSet.open` refuses. Each concept belongs to one category; its global
    `number` (≥ 1) is the value stored in the mask PNGs.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        concepts: Sequence[Concept],
        *,
        source: str = "probe",
        overwrite: bool = False,
        readme: str | None = None,
    ) -> None:
        self.directory = Path(directory).expanduser()
        numbers = [c.number for c in concepts]
        names = [c.name for c in concepts]
        if not concepts:
            raise InputError("a probe set needs at least one concept.")
        if min(numbers) < 1 or max(numbers) >= 256 * 256:
            raise InputError("concept numbers must lie in 1..65535 (they are stored as R + 256·G).")
        if len(set(numbers)) != len(numbers) or len(set(names)) != len(names):
            raise InputError("concept numbers and names must be unique within a probe set.")
        for c in concepts:
            if not _NAME_OK.match(c.category):
                raise InputError(
                    f"category name {c.category!r} must be letters, digits, '_', '.', '-'."
                )
        if not _NAME_OK.match(source):
            raise InputError(f"source name {source!r} must be letters, digits, '_', '.', '-'.")
        if (self.directory / "index.csv").exists():
            if not overwrite:
                raise InputError(
                    f"{self.directory} already holds a probe set; choose another folder or overwrite it."
                )
            shutil.rmtree(self.directory / "images", ignore_errors=True)
            (self.directory / "index.csv").unlink()
        (self.directory / "images" / source).mkdir(parents=True, exist_ok=True)
        self.concepts = list(concepts)
        self.categories = list(dict.fromkeys(c.category for c in concepts))
        self._by_number = {c.number: c for c in concepts}
        self._source = source
        self._readme = readme
        self._rows: list[dict[str, str | int]] = []
        self._stats = {c.number: _Stats() for c in concepts}
        self._closed = False

    def __enter__(self) -> ProbeWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.close()

    def add(
        self,
        image: np.ndarray,
        labels: Mapping[str, np.ndarray | Sequence[int] | int],
        *,
        split: str = "train",
    ) -> str:
        """Add one image (ih × iw × 3 uint8) with its labels; returns its key.

        `labels[category]` is a label map (sh × sw integer array of concept
        numbers, 0 = unlabelled), a stack of label maps (layers × sh × sw, for
        overlapping concepts such as parts), or one or more image-level label
        numbers. All label maps of an image share one size.
        """
        if self._closed:
            raise InputError("this ProbeWriter is closed; open a new one.")
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise InputError(
                f"probe images must be H × W × 3 uint8 arrays, got {image.dtype} {image.shape}."
            )
        stem = f"{self._source}/{len(self._rows):06d}"
        key = f"{stem}.png"
        row: dict[str, str | int] = {
            "image": key,
            "split": split,
            "ih": image.shape[0],
            "iw": image.shape[1],
        }
        mask_shape: tuple[int, int] | None = None
        pending: list[tuple[str, np.ndarray]] = []
        present: dict[int, float] = {}
        for category, value in labels.items():
            if category not in self.categories:
                raise InputError(f"category {category!r} has no concepts in this probe set.")
            array = np.asarray(value)
            if array.ndim <= 1:
                numbers = [int(n) for n in array.reshape(-1)]
                for n in numbers:
                    self._check(n, category)
                    present[n] = 1.0
                row[category] = ";".join(str(n) for n in numbers)
                continue
            layers = array[None] if array.ndim == 2 else array
            if layers.ndim != 3 or not np.issubdtype(layers.dtype, np.integer):
                raise InputError(f"labels for {category!r} must be integer label maps (sh × sw).")
            if mask_shape is None:
                mask_shape = layers.shape[1:]
            elif layers.shape[1:] != mask_shape:
                raise InputError(
                    f"all label maps of one image must share a size; got {mask_shape} and {layers.shape[1:]}."
                )
            names = []
            for layer_index, layer in enumerate(layers):
                for n in np.unique(layer):
                    if n != 0:
                        self._check(int(n), category)
                name = (
                    f"{stem}_{category}.png"
                    if layer_index == 0
                    else f"{stem}_{category}_{layer_index + 1}.png"
                )
                names.append(name)
                pending.append((name, layer))
            for n in np.unique(layers):
                if n != 0:
                    present[int(n)] = float((layers == n).any(axis=0).mean())
            row[category] = ";".join(names)
        if mask_shape is None:
            mask_shape = image.shape[:2]
        row["sh"], row["sw"] = mask_shape
        Image.fromarray(image).save(self.directory / "images" / key)
        for name, layer in pending:
            encoded = np.zeros((*layer.shape, 3), dtype=np.uint8)
            encoded[..., 0] = layer % 256
            encoded[..., 1] = layer // 256
            Image.fromarray(encoded).save(self.directory / "images" / name)
        for n, coverage in present.items():
            self._stats[n].frequency += 1
            self._stats[n].coverage += coverage
        self._rows.append(row)
        return key

    def _check(self, number: int, category: str) -> None:
        concept = self._by_number.get(number)
        if concept is None or concept.category != category:
            raise InputError(
                f"label {number} is not a concept of category {category!r} in this probe set."
            )

    def close(self) -> None:
        """Write README.txt, label.csv, category.csv, c_<category>.csv, then index.csv."""
        if self._closed:
            return
        self._closed = True
        d = self.directory
        if self._readme is not None:
            (d / "README.txt").write_text(self._readme, encoding="utf-8")
        by_number = sorted(self.concepts, key=lambda c: c.number)
        with (d / "label.csv").open("w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(LABEL_COLUMNS)
            for c in by_number:
                s = self._stats[c.number]
                w.writerow(
                    [
                        c.number,
                        c.name,
                        f"{c.category}({s.frequency})",
                        s.frequency,
                        f"{s.coverage:f}",
                        "",
                    ]
                )
        with (d / "category.csv").open("w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(CATEGORY_COLUMNS)
            for category in self.categories:
                members = [c for c in by_number if c.category == category]
                w.writerow(
                    [
                        category,
                        members[0].number,
                        members[-1].number,
                        len(members),
                        sum(self._stats[c.number].frequency for c in members),
                    ]
                )
        for category in self.categories:
            members = [c for c in by_number if c.category == category]
            members.sort(
                key=lambda c: (
                    -self._stats[c.number].frequency,
                    -self._stats[c.number].coverage,
                    c.number,
                )
            )
            with (d / f"c_{category}.csv").open("w", newline="", encoding="utf-8") as f:
                w = csv.writer(f)
                w.writerow(CODE_COLUMNS)
                for code, c in enumerate(members, start=1):
                    s = self._stats[c.number]
                    w.writerow([code, c.number, c.name, s.frequency, f"{s.coverage:f}"])
        tmp = d / "index.csv.tmp"
        with tmp.open("w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=[*META_COLUMNS, *self.categories], restval="")
            w.writeheader()
            w.writerows(self._rows)
        tmp.replace(d / "index.csv")


# --------------------------------------------------------------------------- making


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
