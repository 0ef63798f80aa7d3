"""Broden's on-disk format: the csv columns, and the records a probe set is read into.

Bau et al.'s Broden (Network Dissection, CVPR 2017) stores a probe set as
index.csv, label.csv, category.csv, c_<category>.csv and images/ (see
`catalogue.probe`); these are their column names and the in-memory records
of one concept, one image's masks and one image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

META_COLUMNS = ("image", "split", "ih", "iw", "sh", "sw")
LABEL_COLUMNS = ("number", "name", "category", "frequency", "coverage", "syns")
CATEGORY_COLUMNS = ("name", "first", "last", "count", "frequency")
CODE_COLUMNS = ("code", "number", "name", "frequency", "coverage")
COLOR_SUFFIX = "-c"  # Broden names its colour labels "red-c", "black-c", …


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
