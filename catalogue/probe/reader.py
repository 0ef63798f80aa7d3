"""`ProbeSet`: read a probe set in Broden's on-disk format, lazily, one image at a time."""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from catalogue.errors import InputError
from catalogue.probe.broden import (
    CATEGORY_COLUMNS,
    META_COLUMNS,
    Concept,
    ImageMasks,
    ProbeSample,
)

_NOT_IN_LABELS = -2  # label number absent from label.csv
_OTHER_CATEGORY = -1  # known label, but not of a selected category
_CATEGORY_FIELD = re.compile(r"^([^()]+)\((\d+)\)$")


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
