"""Tables a reader can read: human column labels from the measure registry, blanks for
missing values, integers as integers, yes/no for flags, the key columns pinned.

`readable(frame)` returns a pandas Styler that st.dataframe draws with these display
values while sorting on the underlying numbers; `column_config(frame)` labels and
pins the columns. Presentation only: the values are the catalogue's.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from catalogue.measures import MEASURES_BY_NAME
from ui.display import measure_help

#: Labels of `unit_catalogue` columns that are not measures (the measures carry their own).
COLUMN_LABELS: dict[str, str] = {
    "open": "Open",
    "model": "Model",
    "architecture": "Architecture",
    "layer": "Layer",
    "layer_kind": "Layer kind",
    "layer_position": "Layer position",
    "unit": "Unit",
    "unit_id": "Unit id",
    "run_id": "Run",
    "dataset": "Dataset",
    "n_images": "Images scored",
    "best_concept": "Best concept",
    "best_concept_category": "Concept category",
    "best_iou": "Best dissection IoU",
    "n_ratings": "Ratings",
    "share_yes": "Share of 'yes' ratings",
    "rating_consensus": "Rated interpretable",
    "rating_top_name": "Name people gave",
    "n_units": "Units",
    "n_constant": "Constant units",
    "concept": "Concept",
    "category": "Category",
    "probe": "Probe set",
    "iou": "IoU",
    "rank": "Rank",
    "threshold": "Threshold",
    "class_name": "Class",
    "class_index": "Class index",
    "activation": "Activation",
    "image_key": "Image",
    "image_index": "Image index",
    "group_name": "Class group",
    "group_version": "Group version",
    "n_nonzero_in": "Share non-zero inside",
    "n_nonzero_out": "Share non-zero outside",
    "mean_activation": "Mean activation",
    "frac_nonzero": "Share non-zero",
    "informedness_threshold": "Informedness threshold",
    "rank_by_informedness": "Rank by informedness",
    "rank_by_mean": "Rank by mean",
    "in_top60": "In top 60",
    "in_top100": "In top 100",
    "mu_in": "Mean inside",
    "mu_out": "Mean outside",
    "is_detector": "Detector (IoU)",
    "participant": "Participant",
    "answer": "Answer (Q1)",
    "estimate": "Estimate (Q2)",
    "names": "Names (Q3)",
    "source": "Source",
    "created_at": "When",
}
#: The columns that identify a unit: pinned to the left of wide tables.
KEY_COLUMNS: tuple[str, ...] = ("open", "model", "layer", "unit")
#: Columns that count things: a whole number there is shown without decimals ("6", not
#: "6.000"); other numbers keep a fixed number of decimals, so a column reads evenly.
COUNT_COLUMNS: frozenset[str] = frozenset(
    {"unit", "unit_id", "run_id", "n_images", "n_ratings", "n_units", "n_constant", "rank"}
    | {"layer_position"}
    | {"classes_in_top100", "n", "n_yes", "n_named", "n_detectors", "n_unique_concepts"}
    | {"id", "parent_id", "class_index", "image_index", "concept_id", "group_version"}
    | {"rank_by_informedness", "rank_by_mean", "in_top60", "in_top100"}
)


def label(name: str) -> str:
    """A column's human label: the measure registry's, then ours, then the name itself."""
    measure = MEASURES_BY_NAME.get(name)
    if measure is not None:
        return measure.label
    return COLUMN_LABELS.get(name, name.replace("_", " ").capitalize())


def help_text(name: str) -> str | None:
    """A measure column's definition with its parameters (`ui.display.measure_help`)."""
    measure = MEASURES_BY_NAME.get(name)
    return measure_help(measure) if measure is not None else None


def _missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float | np.floating) and math.isnan(value)


def cell(value: Any, *, digits: int = 3, count: bool = False) -> str:
    """One value as text: blank when missing, yes/no, integers as integers (and whole
    floats too when the value is a `count`), other numbers with `digits` decimals."""
    if _missing(value):
        return ""
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, pd.Timestamp | datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, int | np.integer):
        return f"{int(value):,}" if abs(int(value)) >= 10_000 else str(int(value))
    if isinstance(value, float | np.floating):
        if count and float(value).is_integer() and abs(value) < 1e15:
            return str(int(value))
        return f"{float(value):.{digits}f}"
    if isinstance(value, list | tuple):
        return ", ".join(cell(v) for v in value)
    return str(value)


def count_and_share(value: Any, total: int) -> str:
    """'3 (38%)': a count with its share of `total` (blank when missing)."""
    if _missing(value):
        return ""
    n = int(value)
    return f"{n} ({n / total:.0%})" if total else str(n)


def readable(frame: pd.DataFrame, *, digits: int = 3) -> Any:
    """`frame` as a Styler whose display values are `cell` of each value (sorting and the
    selection still see the numbers)."""
    formats = {
        column: (lambda v, c=column in COUNT_COLUMNS: cell(v, digits=digits, count=c))
        for column in frame.columns
    }
    return frame.style.format(formats)


def column_config(
    frame: pd.DataFrame,
    *,
    pinned: Iterable[str] = KEY_COLUMNS,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Labels (and help from the measure registry) for every column; key columns pinned."""
    pin = set(pinned)
    config: dict[str, Any] = {}
    for name in frame.columns:
        config[name] = st.column_config.Column(
            label(name), help=help_text(name), pinned=True if name in pin else None
        )
    config.update(overrides or {})
    return config
