"""`ProbeWriter`: write a probe set in Broden's on-disk format, one image at a time."""

from __future__ import annotations

import csv
import os
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from catalogue.errors import InputError
from catalogue.probe.broden import (
    CATEGORY_COLUMNS,
    CODE_COLUMNS,
    LABEL_COLUMNS,
    META_COLUMNS,
    Concept,
)

_NAME_OK = re.compile(r"^[A-Za-z0-9_.-]+$")


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
