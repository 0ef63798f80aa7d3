"""The per-unit measures, defined once, with the parameters their definitions depend on.

Names are the contract of docs/DESIGN.md ("The measures"): the Python keys returned
by `catalogue.selectivity.score_units`, the columns of `unit_metrics` and of the
`unit_catalogue` view, and the labels the UI shows all come from this table. The
numbers the definitions depend on (top-k, top-n, the CSI's images, the dissection
quantile and IoU cut-off) are named here once: the scorer's and dissection's defaults,
the stored top images, the criteria and the UI's definitions read them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

MeasureKind = Literal["float", "bool", "class"]

#: images in top-k precision (Zhou et al. 2015's 60): `precision`, `top60_threshold`
TOP_K_PRECISION = 60
#: images whose classes `classes_in_top100` counts; also the top images stored per unit
TOP_N_CLASSES = 100
#: the precision `recall_at_p95` must reach
PRECISION_TARGET = 0.95
#: images of Rafegas et al.'s class selectivity index
CSI_TOP_N = 100
#: share of the top images' weighted class frequencies the index's M classes must cover
#: (1.0: M = the classes present)
CSI_THRESHOLD = 1.0
#: share of each unit's spatial activations over the probe set above its dissection
#: threshold (Bau et al. 2017's top 0.005 quantile)
DISSECTION_QUANTILE = 0.005
#: IoU above which a unit detects a concept (Bau et al. 2017)
IOU_DETECTOR_THRESHOLD = 0.04


@dataclass(frozen=True)
class Parameter:
    """A number a definition depends on, named as the keyword argument that sets it
    (`catalogue.selectivity.score_units`, `catalogue.dissection.unit_concept_iou`)."""

    name: str
    value: float
    description: str

    def text(self) -> str:
        """E.g. "top_k = 60"."""
        return f"{self.name} = {self.value:g}"


#: Every parameter of the measures and of dissection, by keyword.
PARAMETERS: dict[str, Parameter] = {
    p.name: p
    for p in (
        Parameter("top_k", TOP_K_PRECISION, "images in top-k precision"),
        Parameter("top_n_classes", TOP_N_CLASSES, "images whose distinct classes are counted"),
        Parameter("precision_target", PRECISION_TARGET, "precision the recall must keep"),
        Parameter("csi_top_n", CSI_TOP_N, "most active images of the class selectivity index"),
        Parameter(
            "csi_threshold", CSI_THRESHOLD, "share of the weighted frequencies M classes cover"
        ),
        Parameter(
            "quantile",
            DISSECTION_QUANTILE,
            "share of a unit's spatial activations above its dissection threshold",
        ),
        Parameter("iou_threshold", IOU_DETECTOR_THRESHOLD, "IoU above which a unit detects"),
    )
}
#: The parameters of network dissection (not a column of `unit_metrics`).
DISSECTION_PARAMETERS: tuple[Parameter, ...] = (PARAMETERS["quantile"], PARAMETERS["iou_threshold"])


@dataclass(frozen=True)
class Measure:
    name: str
    kind: MeasureKind
    label: str
    description: str
    #: whether a higher value means "more selective" (None: not a selectivity score)
    higher_is_selective: bool | None = True
    #: the parameters its definition depends on (`PARAMETERS`)
    parameters: tuple[Parameter, ...] = ()

    def parameter_text(self) -> str:
        """The parameters in words, e.g. "top_k = 60" ("" for none)."""
        return ", ".join(p.text() for p in self.parameters)


_TOP_K = (PARAMETERS["top_k"],)

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
        f"Top-{TOP_K_PRECISION} precision",
        f"Largest share of one class among the {TOP_K_PRECISION} most active images (Zhou et "
        "al. 2015); ties at the cut-off shared out.",
        parameters=_TOP_K,
    ),
    Measure(
        "precision_class",
        "class",
        "Precision class",
        "The class with that share.",
        None,
        parameters=_TOP_K,
    ),
    Measure(
        "top60_threshold",
        "float",
        f"Top-{TOP_K_PRECISION} cut-off",
        f"Activation of the {TOP_K_PRECISION}th most active image.",
        None,
        parameters=_TOP_K,
    ),
    Measure(
        "classes_in_top100",
        "float",
        f"Classes in top {TOP_N_CLASSES}",
        f"Expected number of distinct classes among the {TOP_N_CLASSES} most active images.",
        False,
        parameters=(PARAMETERS["top_n_classes"],),
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
        f"Recall at {PRECISION_TARGET:.0%} precision",
        "Highest recall over classes and thresholds with precision at least "
        f"{str(PRECISION_TARGET).lstrip('0')}.",
        parameters=(PARAMETERS["precision_target"],),
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
        "TN / (N - n_c) at the maximum-informedness point; 1 - specificity is the textbook "
        "false-positive rate, not the complement of the false-alarm rate.",
    ),
    Measure(
        "false_alarm_rate",
        "float",
        "False-alarm rate at MI, FP/(TP+FP)",
        "FP / (TP + FP) at the maximum-informedness point: the share of images above the "
        "threshold not of the class (the paper's quantity; the textbook false-positive rate "
        "is 1 - specificity).",
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
        f"Rafegas et al. (2020): (N - M) / (N - 1) over the {CSI_TOP_N} most active images, "
        "activation-weighted.",
        parameters=(PARAMETERS["csi_top_n"], PARAMETERS["csi_threshold"]),
    ),
    Measure(
        "constant",
        "bool",
        "Constant (dead)",
        "Every scored activation is equal (a dead unit): its scores describe the class sizes, "
        "not the unit; left out of presets, counts, summaries and plots by default.",
        None,
    ),
    Measure(
        "detector_bar",
        "float",
        "Detector bar",
        "Gale et al. (2020)'s minimal bar: the highest min(hit rate TP/n_c, precision "
        "TP/(TP+FP)) over classes and thresholds; above .5, some threshold gives more hits "
        "than misses and more hits than false alarms.",
    ),
    Measure("detector_bar_class", "class", "Detector-bar class", "The class at that point.", None),
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
    "detector_bar",
)

#: Per-unit values beside the measures that `measure_correlations` also pairs with them:
#: the best dissection IoU, human 2-AFC accuracy (`unit_catalogue` columns) and the overall
#: accuracy drop when the unit is ablated (`unit_importance`), so that the view answers
#: whether a selectivity measure predicts what people can tell about a unit.
CORRELATED_BESIDE: tuple[str, ...] = ("best_iou", "human_2afc_accuracy", "ablation_drop")
#: What might predict a unit's human 2-AFC accuracy: selectivity (precision, CCMAS, max
#: informedness), dissection (best IoU) and importance (the accuracy drop when ablated).
TWOAFC_PREDICTORS: tuple[str, ...] = (
    "precision",
    "ccmas",
    "max_informedness",
    "best_iou",
    "ablation_drop",
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

#: The classes a unit is selective for, by four measures: the columns of `unit_ablation`
#: that hold the accuracy change of each when the unit is removed (`<class>_change`).
SELECTIVE_CLASSES: tuple[str, ...] = (
    "precision_class",
    "mi_class",
    "ccmas_class",
    "detector_bar_class",
)

#: For `selectivity_vs_importance` (Morcos et al. 2018's question): each selectivity measure
#: and the class whose accuracy change (on removing the unit) it is compared with — its own
#: class where it has one (the informedness family's is the max-informedness class); the
#: measures of the top images (recall at 100%/95% precision, classes in the top 100, the
#: class selectivity index) use the precision class, the top images' modal class; Gale et
#: al.'s detector bar uses its own class.
IMPORTANCE_CLASS: dict[str, str] = {
    "precision": "precision_class",
    "ccmas": "ccmas_class",
    "max_informedness": "mi_class",
    "recall_at_mi": "mi_class",
    "specificity_at_mi": "mi_class",
    "false_alarm_rate": "mi_class",
    "recall_at_p100": "precision_class",
    "recall_at_p95": "precision_class",
    "classes_in_top100": "precision_class",
    "class_selectivity_index": "precision_class",
    "detector_bar": "detector_bar_class",
}

# ------------------------------------------------------------------------------ criteria
#
# The criteria by which the literature calls a unit an "object detector", defined
# once. View SQL (`catalogue.db.views`), Search presets, Unit-page verdicts, the
# Layers page's counts and the CLI reports are all generated from this table, so a
# threshold is a number in exactly one place.

ComparisonOp = Literal[">", ">=", "<", "<=", "is true", "is not true"]


@dataclass(frozen=True)
class Condition:
    """One test of a `unit_catalogue` column: `column op value`, or `column IS TRUE`."""

    column: str
    op: ComparisonOp
    value: float | None = None

    def text(self) -> str:
        """Human form, e.g. "precision > 0.75"."""
        if self.op == "is true":
            return self.column
        if self.op == "is not true":
            return f"not {self.column}"
        return f"{self.column} {self.op} {self.value:g}"

    def sql(self, alias: str | None = None) -> str:
        """SQL form over `unit_catalogue` (or a relation with the same column names)."""
        col = f"{alias}.{self.column}" if alias else self.column
        if self.op in ("is true", "is not true"):
            return f"{col} {self.op.upper()}"
        return f"{col} {self.op} {self.value!r}"

    def core(self, columns: Any) -> Any:
        """SQLAlchemy Core form; `columns` is a table's `.c` (anything indexable by name)."""
        col = columns[self.column]
        if self.op == "is true":
            return col.is_(True)
        if self.op == "is not true":
            return col.is_not(True)
        return {
            ">": col.__gt__,
            ">=": col.__ge__,
            "<": col.__lt__,
            "<=": col.__le__,
        }[self.op](self.value)

    def test(self, record: Mapping[str, Any]) -> bool | None:
        """Python form on one unit's record; None where the value is missing or NaN."""
        value = record.get(self.column)
        if self.op == "is not true":  # SQL's IS NOT TRUE: a missing value is not true
            return value is None or not bool(value)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return None
        if self.op == "is true":
            return bool(value)
        v = float(value)
        assert self.value is not None
        return {
            ">": v > self.value,
            ">=": v >= self.value,
            "<": v < self.value,
            "<=": v <= self.value,
        }[self.op]


@dataclass(frozen=True)
class Criterion:
    """A named rule for calling a unit a detector, with the paper it comes from.

    `conditions` are ANDed. `class_column` names the class (or concept) the rule
    says the unit detects; `count_column` is its column in `layer_detectors`.
    """

    key: str
    label: str
    source: str
    description: str
    conditions: tuple[Condition, ...]
    class_column: str | None = None
    count_column: str | None = None

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(c.column for c in self.conditions)

    def rule(self) -> str:
        """The rule in words, e.g. "precision > 0.75 and false_alarm_rate > 0.9"."""
        return " and ".join(c.text() for c in self.conditions)

    def sql(self, alias: str | None = None) -> str:
        return " AND ".join(c.sql(alias) for c in self.conditions)

    def core(self, columns: Any) -> Any:
        from sqlalchemy import and_

        return and_(*(c.core(columns) for c in self.conditions))

    def test(self, record: Mapping[str, Any]) -> bool | None:
        """True/False on one unit's record; None if any value it needs is missing."""
        results = [c.test(record) for c in self.conditions]
        if any(r is False for r in results):
            return False
        if any(r is None for r in results):
            return None
        return True


PRECISION_ABOVE = Condition("precision", ">", 0.75)
CCMAS_ABOVE = Condition("ccmas", ">", 0.9)
IOU_ABOVE = Condition("best_iou", ">", IOU_DETECTOR_THRESHOLD)
FALSE_ALARM_ABOVE = Condition("false_alarm_rate", ">", 0.9)
DETECTOR_BAR_ABOVE = Condition("detector_bar", ">", 0.5)
#: Constant (dead) units say nothing about classes: views, presets, detector counts,
#: summaries and plots keep only the units this condition holds for, unless asked.
NOT_CONSTANT = Condition("constant", "is not true")
#: share of participants answering "yes" for a unit to count as interpretable (Gale et al.)
RATING_CONSENSUS_SHARE = 0.8
#: people who must have rated a unit's panel before its consensus is stated (NULL before:
#: one "yes" is not a consensus). The paper gave each list to 5 or 6 participants.
RATING_MIN_RATERS = 5
#: The 2-AFC study: a participant's answers count once they answered at least this share of
#: their catch trials correctly (IMI's exclusion threshold, Zimmermann et al. 2023).
TWOAFC_CATCH_PASS_SHARE = 0.8
#: z of the two-sided 95 % Wilson score interval of a unit's 2-AFC accuracy: Φ⁻¹(0.975).
TWOAFC_INTERVAL_Z = 1.959963984540054

CRITERIA: tuple[Criterion, ...] = (
    Criterion(
        "precision",
        f"Top-{TOP_K_PRECISION} precision > {PRECISION_ABOVE.value:g}",
        "Zhou et al. 2015",
        "Object detectors by Zhou et al.'s criterion: one class holds most of the "
        f"{TOP_K_PRECISION} most active images.",
        (PRECISION_ABOVE,),
        class_column="precision_class",
        count_column="n_precision",
    ),
    Criterion(
        "ccmas",
        f"CCMAS > {CCMAS_ABOVE.value:g}",
        "Morcos et al. 2018",
        "Highly selective by class-conditional mean activity.",
        (CCMAS_ABOVE,),
        class_column="ccmas_class",
        count_column="n_ccmas",
    ),
    Criterion(
        "localist",
        "Localist",
        "Bowers et al. 2014",
        "Some class has all its images above, and disjoint from, all other images.",
        (Condition("localist", "is true"),),
        class_column="localist_class",
        count_column="n_localist",
    ),
    Criterion(
        "iou",
        f"Dissection IoU > {IOU_ABOVE.value:g}",
        "Bau, Zhou et al. 2017",
        "Network dissection: the unit's best concept overlaps its top-quantile activation "
        "region with IoU above the cut-off.",
        (IOU_ABOVE,),
        class_column="best_concept",
        count_column="n_iou",
    ),
    Criterion(
        "misleading",
        f"Precision > {PRECISION_ABOVE.value:g} but false-alarm rate > {FALSE_ALARM_ABOVE.value:g}",
        "Gale et al. 2020",
        f"Units that top-{TOP_K_PRECISION} precision calls object detectors while most images above their "
        "best threshold are of other classes (the paper's unit fc6.1199).",
        (PRECISION_ABOVE, FALSE_ALARM_ABOVE),
        class_column="precision_class",
        count_column="n_misleading",
    ),
    Criterion(
        "consensus",
        f"Rated interpretable (≥ {RATING_CONSENSUS_SHARE:.0%} yes)",
        "Gale et al. 2020",
        f"Units whose AM images most participants (at least {RATING_MIN_RATERS} rated them) "
        "recognised as objects.",
        (Condition("rating_consensus", "is true"),),
        class_column="rating_top_name",
    ),
    Criterion(
        "detector_bar",
        f"Detector bar > {DETECTOR_BAR_ABOVE.value:g}",
        "Gale et al. 2020",
        "The least a detector must do: at some threshold, more hits than misses (hit rate "
        "above .5) and more hits than false alarms (precision above .5) for one class.",
        (DETECTOR_BAR_ABOVE,),
        class_column="detector_bar_class",
        count_column="n_detector_bar",
    ),
)

CRITERIA_BY_KEY: dict[str, Criterion] = {c.key: c for c in CRITERIA}
