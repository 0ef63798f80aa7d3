"""What the pages show about a unit and the criteria, built from catalogue records:
the Unit page's measure table and verdict lines, the Layers page's criterion names.

Presentation only: the numbers and the rules come from `catalogue.measures` and
`catalogue.query`; this module decides how they read.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from catalogue.measures import (
    CRITERIA_BY_KEY,
    DISSECTION_PARAMETERS,
    IOU_ABOVE,
    MEASURES_BY_NAME,
    UNIT_MEASURES,
    Condition,
    Criterion,
    Measure,
)
from catalogue.query.units import Verdict

#: The measure whose class and threshold belong with each measure on the Unit page.
MEASURE_CLASS: dict[str, str] = {
    "localist": "localist_class",
    "precision": "precision_class",
    "top60_threshold": "precision_class",
    "ccmas": "ccmas_class",
    "max_informedness": "mi_class",
    "mi_threshold": "mi_class",
    "recall_at_mi": "mi_class",
    "specificity_at_mi": "mi_class",
    "false_alarm_rate": "mi_class",
    "detector_bar": "detector_bar_class",
}
MEASURE_THRESHOLD: dict[str, str] = {
    "precision": "top60_threshold",
    "max_informedness": "mi_threshold",
    "recall_at_mi": "mi_threshold",
    "specificity_at_mi": "mi_threshold",
    "false_alarm_rate": "mi_threshold",
}

#: Short names of the columns criteria test, for table headers ("CCMAS > …", "IoU > …").
SHORT_NAMES: dict[str, str] = {
    "ccmas": "CCMAS",
    "best_iou": "IoU",
    "false_alarm_rate": "false alarms",
    "rating_consensus": "rated interpretable",
}

VERDICT_MARKS: dict[bool | None, str] = {
    True: ":green[:material/check_circle:]",
    False: ":red[:material/cancel:]",
    None: ":gray[:material/remove:]",
}
#: Marks for a criterion that flags a doubtful detector (holding it is the bad news).
WARNING_MARKS: dict[bool | None, str] = {
    True: ":orange[:material/warning:]",
    False: ":gray[:material/cancel:]",
    None: ":gray[:material/remove:]",
}


#: The textbook false-positive rate, shown beside the paper's false-alarm rate: not a
#: stored measure (it is 1 - specificity_at_mi), but the quantity readers expect.
FALSE_POSITIVE_LABEL = "False-positive rate at MI, 1 − specificity"
FALSE_POSITIVE_DESCRIPTION = (
    "FP / (N - n_c): the share of the other classes' images at or above the threshold. "
    "The false-alarm rate divides the same FP by the images above the threshold instead, "
    "so the two are not complements of each other."
)


#: Where the exact definitions, tie rules and column names are written down.
DESIGN_DOC = "docs/DESIGN.md in unitcat's repository"


def measure_help(measure: Measure) -> str:
    """A measure's definition with the parameters it depends on (a column's help text)."""
    params = measure.parameter_text()
    return f"{measure.description} Parameters: {params}." if params else measure.description


def definitions_markdown() -> str:
    """Every measure's definition and parameters, and dissection's, as a Markdown list: the
    pages' "Definitions" (the exact ones, tie rules included: `DESIGN_DOC`)."""
    lines = [
        f"- **{m.label}** (`{m.name}`): {measure_help(m)}"
        for m in UNIT_MEASURES
        if m.kind != "class"
    ]
    dissection = ", ".join(p.text() for p in DISSECTION_PARAMETERS)
    lines.append(
        f"- **Dissection IoU** (`{IOU_ABOVE.column}`): the best concept's IoU with the region "
        f"where the unit fires, its top `quantile` of activations over the probe set; a "
        f"detector above `iou_threshold` (Bau et al. 2017; {dissection})"
    )
    lines.append(f'\nExact definitions, tie rules and column names: {DESIGN_DOC} ("The measures").')
    return "\n".join(lines)


def measure_rows(record: Mapping[str, Any]) -> pd.DataFrame:
    """Every measure of a unit with its label, class and threshold (one row per measure),
    and the textbook false-positive rate right after the paper's false-alarm rate."""
    rows = []
    for m in UNIT_MEASURES:
        if m.kind == "class" or m.name == "constant":
            continue
        class_col = MEASURE_CLASS.get(m.name)
        threshold_col = MEASURE_THRESHOLD.get(m.name)
        value = record.get(m.name)
        rows.append(
            {
                "measure": m.name,
                "label": m.label,
                "value": None
                if value is None
                else (float(value) if m.kind == "float" else bool(value)),
                "class": record.get(class_col) if class_col else None,
                "threshold": record.get(threshold_col) if threshold_col else None,
                "description": m.description,
            }
        )
        if m.name == "false_alarm_rate":
            specificity = record.get("specificity_at_mi")
            rows.append(
                {
                    "measure": "false_positive_rate",
                    "label": FALSE_POSITIVE_LABEL,
                    "value": None if _missing(specificity) else 1.0 - float(specificity),
                    "class": record.get("mi_class"),
                    "threshold": record.get("mi_threshold"),
                    "description": FALSE_POSITIVE_DESCRIPTION,
                }
            )
    frame = pd.DataFrame(
        rows, columns=["measure", "label", "value", "class", "threshold", "description"]
    )
    frame["threshold"] = pd.to_numeric(frame["threshold"], errors="coerce")
    return frame


def condition_short_label(condition: Condition) -> str:
    """A condition as a column header: the column's short name, the operator and the value
    ("IoU > …"), or the name alone for a condition that the column is true ("localist")."""
    name = SHORT_NAMES.get(condition.column, condition.column.replace("_", " "))
    return name if condition.op == "is true" else f"{name} {condition.op} {condition.value:g}"


def criterion_short_label(criterion: Criterion) -> str:
    """A criterion as a column header: its conditions joined by "&"."""
    return " & ".join(condition_short_label(c) for c in criterion.conditions)


def flags_doubtful_detectors(criterion: Criterion) -> bool:
    """Whether the criterion asks for a high value of a measure on which high means *less*
    selective (the false-alarm rate): a unit meeting it is a doubtful detector."""
    return any(
        c.op in (">", ">=")
        and getattr(MEASURES_BY_NAME.get(c.column), "higher_is_selective", None) is False
        for c in criterion.conditions
    )


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _number(value: Any) -> str:
    return f"{float(value):.3f}".rstrip("0").rstrip(".") if float(value) else "0"


def condition_check(condition: Condition, value: Any) -> str:
    """What a reader can check: the unit's value against the condition, e.g.
    "precision = 0.776 > 0.75", "ccmas = 0.412, not > 0.9", "best_iou not measured"."""
    name = condition.column
    if condition.op in ("is true", "is not true"):
        if _missing(value):
            return f"{name} not measured"
        return f"{name} = {'yes' if bool(value) else 'no'}"
    if _missing(value):
        return f"{name} not measured"
    held = condition.test({name: value})
    shown = f"{name} = {_number(value)}"
    return (
        f"{shown} {condition.op} {condition.value:g}"
        if held
        else f"{shown}, not {condition.op} {condition.value:g}"
    )


#: The word each verdict starts with: which way the criterion went.
VERDICT_WORDS: dict[bool | None, str] = {True: "passes", False: "fails", None: "not measured"}
WARNING_WORDS: dict[bool | None, str] = {
    True: "holds: a doubtful detector",
    False: "does not hold",
    None: "not measured",
}


def verdict_line(verdict: Verdict) -> str:
    """One markdown line a reader can check: a mark, whether the unit passes, the criterion
    (its threshold) and its source, the unit's values against it, and what it detects.

    A green check only for a criterion the unit passes as a detector; a criterion that
    flags doubtful detectors (the misleading one) is a warning when it holds.
    """
    c = verdict.criterion
    doubtful = flags_doubtful_detectors(c)
    marks = WARNING_MARKS if doubtful else VERDICT_MARKS
    word = (WARNING_WORDS if doubtful else VERDICT_WORDS)[verdict.holds]
    checks = " and ".join(condition_check(x, verdict.values.get(x.column)) for x in c.conditions)
    line = f"{marks[verdict.holds]} {c.label} ({c.source}) — **{word}**: {checks}"
    if verdict.holds and verdict.subject:
        line += f" — {verdict.subject}"
    return line


#: Share of false alarms above which most images at the threshold are of other classes.
MOSTLY_FALSE_ALARMS = 0.5


def false_alarm_line(record: Mapping[str, Any], counts: Mapping[str, int] | None) -> str | None:
    """The false-alarm row of the verdicts: the paper's FP/(TP+FP) at the max-informedness
    threshold, labelled, with the textbook false-positive rate FP/(N − n_c) beside it; a
    warning when most images at or above the threshold belong to other classes.

    `counts` (TP, FP, n_c, N at that class and threshold, counted from the activations)
    lets the reader check the rates; without them the rates alone are shown.
    """
    far, specificity = record.get("false_alarm_rate"), record.get("specificity_at_mi")
    if _missing(far):
        return None
    far = float(far)
    cls = record.get("mi_class") or "the class"
    threshold = record.get("mi_threshold")
    mostly_other = far > MOSTLY_FALSE_ALARMS
    mark = WARNING_MARKS[True] if mostly_other else ":gray[:material/info:]"
    at = f"at or above its max-informedness threshold ({_number(threshold)})"
    if counts:
        tp, fp = counts["tp"], counts["fp"]
        above = f"{fp:,} of the {tp + fp:,} images {at} are not {cls}"
        fpr = f"{fp:,} of the {counts['n'] - counts['n_class']:,} images of other classes"
    else:
        above = f"{far:.1%} of the images {at} are not {cls}"
        fpr = "of the images of other classes"
    line = (
        f"{mark} **False-alarm rate** FP/(TP+FP) = {_number(far)} (the paper's quantity): "
        f"{above}"
        + (" — most images above the threshold belong to other classes." if mostly_other else ".")
    )
    if not _missing(specificity):
        rate = 1.0 - float(specificity)
        line += (
            f" **False-positive rate** FP/(N − n_c) = 1 − specificity = {_number(rate)} ({fpr})."
        )
    return line


#: How the Unit page names the class a `*_class` column holds.
CLASS_SOURCE_LABELS: dict[str, str] = {
    "mi_class": "max-informedness class",
    "precision_class": "precision class (most frequent among the top 60)",
    "ccmas_class": "CCMAS class (highest mean activation)",
    "localist_class": "localist class",
    "detector_bar_class": "detector-bar class",
}

#: Where the class to highlight comes from, by the measure or preset the user came from.
HIGHLIGHT_PRESETS: dict[str, str] = {"dissection": "iou", "interpretable": "consensus"}


def highlight_class_column(came_from: str | None) -> str:
    """The `*_class` column whose class the Unit page's jitter plot highlights for a user who
    came from a measure (``?highlight=precision``) or a preset (``?preset=misleading``):
    its own class (the precision class for precision and for the misleading preset).
    Anything else (or a criterion about concepts or names) gives the max-informedness class.
    """
    if not came_from:
        return "mi_class"
    if came_from in MEASURE_CLASS:
        return MEASURE_CLASS[came_from]
    if came_from.endswith("_class") and came_from in MEASURES_BY_NAME:
        return came_from
    criterion = CRITERIA_BY_KEY.get(HIGHLIGHT_PRESETS.get(came_from, came_from))
    column = criterion.class_column if criterion else None
    if column and MEASURES_BY_NAME.get(column) is not None:
        return column
    return "mi_class"
