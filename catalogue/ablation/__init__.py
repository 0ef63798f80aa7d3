"""Unit ablation: does a unit matter for the classes it is selective for?

Bau et al. (2020, "Understanding the role of individual units in a deep neural
network") and Zhou et al. (2018, "Revisiting the importance of individual units
in CNNs via ablation") remove units and watch each class's accuracy; Gale et
al. cite the latter: removing the most selective units hurt their classes more
than others, "but the pattern of performance was not consistent with the units
being labeled 'object detectors'". Morcos et al. (2018) asked whether class
selectivity predicts that importance at all.

- `core`: replacing units in many copies of a batch at once, counting correct
  images per class; `LayerAblation` (per unit × class accuracy change).
- `rankings`: per-class unit rankings and the k = 1, 2, 4, … of class curves.
- `feeds`: the layer's output from the store (fc) or the images (conv).
- `driver`: `ablate_layer`, one layer's single-unit ablation and curves.

The fast path runs only the part of the network after the layer
(`catalogue.models.split`), on the layer's output computed once per batch (or
read from the store), many configurations per forward; `bench/ablate.py`
compares it with a forward hook and a full forward pass per unit.
"""

from catalogue.ablation.core import (
    VALUES,
    LayerAblation,
    configuration_masks,
    count_correct,
    curve_accuracies,
    single_unit_masks,
)
from catalogue.ablation.driver import CurvePlan, CurvePoint, ablate_layer, evaluate
from catalogue.ablation.feeds import (
    FeedBatch,
    ImageFeed,
    StoreFeed,
    choose_rows,
    dataset_indices,
    layer_means,
)
from catalogue.ablation.rankings import (
    RANKINGS,
    ClassScores,
    class_scores,
    concatenate_scores,
    curve_ks,
    rank_units,
    top_share,
)

__all__ = [
    "RANKINGS",
    "VALUES",
    "ClassScores",
    "CurvePlan",
    "CurvePoint",
    "FeedBatch",
    "ImageFeed",
    "LayerAblation",
    "StoreFeed",
    "ablate_layer",
    "choose_rows",
    "class_scores",
    "concatenate_scores",
    "configuration_masks",
    "count_correct",
    "curve_accuracies",
    "curve_ks",
    "dataset_indices",
    "evaluate",
    "layer_means",
    "rank_units",
    "single_unit_masks",
    "top_share",
]
