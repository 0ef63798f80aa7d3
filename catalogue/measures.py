"""The per-unit measures, defined once.

Names are the contract of DESIGN.md ("The measures"): the Python keys returned
by `catalogue.selectivity.score_units`, the columns of `unit_metrics` and of the
`unit_catalogue` view, and the labels the UI shows all come from this table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

MeasureKind = Literal["float", "bool", "class"]


@dataclass(frozen=True)
class Measure:
    name: str
    kind: MeasureKind
    label: str
    description: str
    #: whether a higher value means "more selective" (None: not a selectivity score)
    higher_is_selective: bool | None = True


UNIT_MEASURES: tuple[Measure, ...] = (
    Measure(
        "localist",
        "bool",
        "Localist",
        "Some class has all its images above, and disjoint from, all other images (Bowers et al. 2014).",
    ),
    Measure(
        "localist_class", "class", "Localist class", "The class a localist unit codes for.", None
    ),
    Measure(
        "precision",
        "float",
        "Top-60 precision",
        "Largest share of one class among the 60 most active images (Zhou et al. 2015); ties at the cut-off shared out.",
    ),
    Measure("precision_class", "class", "Precision class", "The class with that share.", None),
    Measure(
        "top60_threshold",
        "float",
        "Top-60 cut-off",
        "Activation of the 60th most active image.",
        None,
    ),
    Measure(
        "classes_in_top100",
        "float",
        "Classes in top 100",
        "Expected number of distinct classes among the 100 most active images.",
        False,
    ),
    Measure(
        "ccmas",
        "float",
        "CCMAS",
        "(mu_c - mu_not_c) / (mu_c + mu_not_c) for the class with the highest mean (Morcos et al. 2018).",
    ),
    Measure(
        "ccmas_class", "class", "CCMAS class", "The class with the highest mean activation.", None
    ),
    Measure(
        "recall_at_p100",
        "float",
        "Recall at 100% precision",
        "Share of the top image's class more active than every image of any other class.",
    ),
    Measure(
        "recall_at_p95",
        "float",
        "Recall at 95% precision",
        "Highest recall over classes and thresholds with precision at least .95.",
    ),
    Measure(
        "max_informedness",
        "float",
        "Max informedness",
        "Highest hit rate minus false-positive rate over classes and thresholds (Youden's J; Powers 2003).",
    ),
    Measure("mi_class", "class", "MI class", "The class at maximum informedness.", None),
    Measure(
        "mi_threshold", "float", "MI threshold", "The threshold at maximum informedness.", None
    ),
    Measure(
        "recall_at_mi", "float", "Hit rate at MI", "TP / n_c at the maximum-informedness point."
    ),
    Measure(
        "specificity_at_mi",
        "float",
        "Specificity at MI",
        "TN / (N - n_c) at the maximum-informedness point.",
    ),
    Measure(
        "false_alarm_rate",
        "float",
        "False-alarm rate at MI",
        "FP / (TP + FP) at the maximum-informedness point: the share of images above the threshold not of the class.",
        False,
    ),
    Measure(
        "frac_zero", "float", "Share of zeros", "Share of images with activation exactly 0.", None
    ),
    Measure("mean_activation", "float", "Mean activation", "Mean over the scored images.", None),
    Measure("max_activation", "float", "Max activation", "Maximum over the scored images.", None),
    Measure(
        "class_selectivity_index",
        "float",
        "Class selectivity index",
        "Rafegas et al. (2020): (N - M) / (N - 1) over the 100 most active images, activation-weighted.",
    ),
)

MEASURES_BY_NAME: dict[str, Measure] = {m.name: m for m in UNIT_MEASURES}
MEASURE_NAMES: tuple[str, ...] = tuple(m.name for m in UNIT_MEASURES)
CLASS_MEASURES: tuple[str, ...] = tuple(m.name for m in UNIT_MEASURES if m.kind == "class")
FLOAT_MEASURES: tuple[str, ...] = tuple(m.name for m in UNIT_MEASURES if m.kind == "float")

#: Measures compared with each other in `measure_correlations` and the UI's Measures page.
CORRELATED_MEASURES: tuple[str, ...] = (
    "precision",
    "classes_in_top100",
    "ccmas",
    "recall_at_p100",
    "recall_at_p95",
    "max_informedness",
    "recall_at_mi",
    "specificity_at_mi",
    "false_alarm_rate",
    "class_selectivity_index",
    "frac_zero",
    "mean_activation",
)

#: Measures summarised per layer in `layer_summary` (localist as a 0/1 share).
SUMMARISED_MEASURES: tuple[str, ...] = ("localist", *FLOAT_MEASURES)

#: Columns of `unit_group_metrics`: the paper's Tables 4–6 for a named group of classes.
GROUP_MEASURES: tuple[str, ...] = (
    "n_nonzero_in",
    "n_nonzero_out",
    "mu_in",
    "mu_out",
    "precision",
    "ccmas",
    "max_informedness",
    "mi_threshold",
)

#: Criteria by which the literature calls a unit an "object detector".
PRECISION_DETECTOR = 0.75
CCMAS_DETECTOR = 0.9
IOU_DETECTOR = 0.04
MISLEADING_FALSE_ALARM = 0.9
