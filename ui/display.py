"""What the pages show about a unit and the criteria, built from catalogue records:
the Unit page's measure table and verdict lines, the Layers page's criterion names.

Presentation only: the numbers and the rules come from `catalogue.measures` and
`catalogue.query`; this module decides how they read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from catalogue.measures import MEASURES_BY_NAME, UNIT_MEASURES, Condition, Criterion
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


def measure_rows(record: Mapping[str, Any]) -> pd.DataFrame:
    """Every measure of a unit with its label, class and threshold (one row per measure)."""
    rows = []
    for m in UNIT_MEASURES:
        if m.kind == "class":
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


def verdict_line(verdict: Verdict) -> str:
    """One markdown line: a mark, the criterion and its source, what the unit detects."""
    marks = WARNING_MARKS if flags_doubtful_detectors(verdict.criterion) else VERDICT_MARKS
    c = verdict.criterion
    return f"{marks[verdict.holds]} {c.label} ({c.source}) — {verdict.subject or '—'}"
