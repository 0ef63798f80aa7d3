"""Unit labels: each unit's concepts ranked by IoU, and the detector flag (IoU above
`catalogue.measures.IOU_DETECTOR_THRESHOLD`, 0.04 in Bau et al.)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from catalogue.dissection.tally import ConceptIoU
from catalogue.errors import InputError
from catalogue.measures import IOU_DETECTOR_THRESHOLD
from catalogue.probe import Concept


@dataclass(frozen=True)
class LayerDissection:
    """Network dissection of one layer: IoU per unit and concept, and unit labels.

    `top_concepts[u]` are indices into `concepts` by decreasing IoU (ties to
    the lower index) and `top_iou[u]` their IoUs; a unit is a detector when
    its best IoU exceeds `iou_threshold` (0.04 in Bau et al.).
    """

    layer: str
    concepts: tuple[Concept, ...]
    scores: ConceptIoU
    top_concepts: np.ndarray
    top_iou: np.ndarray
    detector: np.ndarray
    iou_threshold: float

    @property
    def thresholds(self) -> np.ndarray:
        return self.scores.thresholds

    @property
    def iou(self) -> np.ndarray:
        return self.scores.iou

    @property
    def n_units(self) -> int:
        return int(self.detector.shape[0])

    @property
    def n_detectors(self) -> int:
        return int(self.detector.sum())

    @property
    def detected_concepts(self) -> list[int]:
        """Distinct best concepts of the detector units (indices into `concepts`)."""
        return sorted({int(c) for c in self.top_concepts[self.detector, 0]})

    @property
    def n_unique_concepts(self) -> int:
        """The number Network Dissection reports: unique concepts with a detector."""
        return len(self.detected_concepts)

    def unique_concepts_by_category(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for c in self.detected_concepts:
            category = self.concepts[c].category
            counts[category] = counts.get(category, 0) + 1
        return counts

    def rows(self) -> list[dict[str, Any]]:
        """One dict per unit and rank: unit, rank (1 = best), concept, category, iou, detector."""
        out = []
        for unit in range(self.n_units):
            for rank, (c, value) in enumerate(
                zip(self.top_concepts[unit], self.top_iou[unit], strict=True)
            ):
                concept = self.concepts[int(c)]
                out.append(
                    {
                        "unit": unit,
                        "rank": rank + 1,
                        "concept_number": concept.number,
                        "concept": concept.name,
                        "category": concept.category,
                        "iou": float(value),
                        "detector": bool(value > self.iou_threshold),
                        "threshold": float(self.scores.thresholds[unit]),
                    }
                )
        return out


def label_units(
    layer: str,
    scores: ConceptIoU,
    concepts: Sequence[Concept],
    *,
    iou_threshold: float = IOU_DETECTOR_THRESHOLD,
    top_n: int = 5,
) -> LayerDissection:
    """Rank each unit's concepts by IoU and flag detectors (IoU > iou_threshold)."""
    units, k = scores.iou.shape
    if k != len(concepts):
        raise InputError(f"{k} concepts scored but {len(concepts)} concepts named.")
    n = min(top_n, k)
    order = np.argsort(-scores.iou, axis=1, kind="stable")[:, :n]
    top_iou = np.take_along_axis(scores.iou, order, axis=1)
    best = top_iou[:, 0] if n else np.zeros(units)
    return LayerDissection(
        layer=layer,
        concepts=tuple(concepts),
        scores=scores,
        top_concepts=order,
        top_iou=top_iou,
        detector=best > iou_threshold,
        iou_threshold=iou_threshold,
    )
