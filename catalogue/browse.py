"""The read API of the catalogue for the UI (and notebooks): search, one unit, layers, runs.

Every query is SQLAlchemy Core over the views of `catalogue.db.views` and the
tables of `catalogue.db.schema`, with user input only ever in bound parameters:
no SQL text is assembled from what a user typed. Results come back as pandas
DataFrames with the view's column names (DESIGN.md), so that the UI, a
notebook and `psql` see the same names.

The one thing not in the database is a unit's activation for every scored
image (the jitter plot of the paper's Figure 3): `unit_activations` reads it
from the scoring run's parent extraction run's HDF5 store, with the scoring
run's row selection (by default only the correctly classified images).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import (
    Boolean,
    ColumnElement,
    Double,
    Engine,
    Integer,
    Text,
    and_,
    column,
    func,
    literal,
    or_,
    select,
    table,
)
from sqlalchemy.sql import TableClause

from catalogue.config import get_settings
from catalogue.db import schema
from catalogue.errors import InputError, NotFound, UnitcatError
from catalogue.measures import (
    CCMAS_DETECTOR,
    CLASS_MEASURES,
    CORRELATED_MEASURES,
    FLOAT_MEASURES,
    IOU_DETECTOR,
    MEASURES_BY_NAME,
    MISLEADING_FALSE_ALARM,
    PRECISION_DETECTOR,
    UNIT_MEASURES,
)

# ----------------------------------------------------------------------- the views as Core tables


def _measure_columns() -> list[Any]:
    cols: list[Any] = []
    for m in UNIT_MEASURES:
        if m.kind == "class":
            cols += [column(m.name, Text), column(f"{m.name}_index", Integer)]
        elif m.kind == "bool":
            cols.append(column(m.name, Boolean))
        else:
            cols.append(column(m.name, Double))
    return cols


#: `unit_catalogue`: one row per unit and scoring run (run_id NULL for units never scored).
UNIT_CATALOGUE: TableClause = table(
    "unit_catalogue",
    column("run_id", Integer),
    column("model", Text),
    column("architecture", Text),
    column("layer", Text),
    column("layer_kind", Text),
    column("layer_position", Integer),
    column("unit", Integer),
    column("unit_id", Integer),
    column("dataset", Text),
    column("n_images", Integer),
    *_measure_columns(),
    column("best_concept", Text),
    column("best_concept_category", Text),
    column("best_iou", Double),
    column("is_detector", Boolean),
    column("n_ratings", Integer),
    column("share_yes", Double),
    column("rating_consensus", Boolean),
    column("rating_top_name", Text),
)

LAYER_SUMMARY: TableClause = table(
    "layer_summary",
    *(
        column(name, type_)
        for name, type_ in (
            ("run_id", Integer),
            ("model", Text),
            ("layer", Text),
            ("layer_position", Integer),
            ("measure", Text),
            ("n", Integer),
            ("mean", Double),
            ("sd", Double),
            ("min", Double),
            ("q1", Double),
            ("median", Double),
            ("q3", Double),
            ("max", Double),
        )
    ),
)

MEASURE_CORRELATIONS: TableClause = table(
    "measure_correlations",
    column("run_id", Integer),
    column("model", Text),
    column("layer", Text),
    column("measure_a", Text),
    column("measure_b", Text),
    column("n", Integer),
    column("pearson", Double),
    column("spearman", Double),
)

RATING_SUMMARY: TableClause = table(
    "rating_summary",
    *(
        column(name, type_)
        for name, type_ in (
            ("unit_id", Integer),
            ("n_ratings", Integer),
            ("n_yes", Integer),
            ("share_yes", Double),
            ("consensus", Boolean),
            ("top_name", Text),
            ("human_agreement", Double),
        )
    ),
)

DISSECTION_SUMMARY: TableClause = table(
    "dissection_summary",
    column("run_id", Integer),
    column("model", Text),
    column("layer", Text),
    column("layer_position", Integer),
    column("n_units", Integer),
    column("n_detectors", Integer),
    column("n_unique_concepts", Integer),
)

RUN = schema.Run.__table__
MODEL = schema.Model.__table__
LAYER = schema.Layer.__table__
UNIT = schema.Unit.__table__
DATASET = schema.Dataset.__table__
IMAGE_CLASS = schema.ImageClass.__table__
CLASS_GROUP = schema.ClassGroup.__table__
UNIT_METRICS = schema.UnitMetrics.__table__
UNIT_CLASS_STATS = schema.UnitClassStats.__table__
UNIT_GROUP_METRICS = schema.UnitGroupMetrics.__table__
UNIT_TOP_IMAGE = schema.UnitTopImage.__table__
CONCEPT = schema.Concept.__table__
DISSECTION = schema.Dissection.__table__
AM_PANEL = schema.AMPanel.__table__
PARTICIPANT = schema.Participant.__table__
RATING = schema.Rating.__table__

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


def _frame(engine: Engine, statement: Any) -> pd.DataFrame:
    """Run a statement and return its rows as a DataFrame whose columns exist even when empty."""
    with engine.connect() as conn:
        result = conn.execute(statement)
        keys = list(result.keys())
        rows = result.fetchall()
    frame = pd.DataFrame([tuple(r) for r in rows], columns=keys)
    for col in statement.selected_columns if hasattr(statement, "selected_columns") else ():
        name = col.key
        if name in frame.columns and isinstance(col.type, Double):
            frame[name] = pd.to_numeric(frame[name], errors="coerce").astype("float64")
    return frame


# ----------------------------------------------------------------------------- overview


@dataclass(frozen=True)
class Overview:
    """How much the catalogue holds; `is_empty` when there is nothing to browse yet."""

    n_models: int
    n_units: int
    n_scored: int
    n_dissected: int
    n_rated: int
    n_runs: int

    @property
    def is_empty(self) -> bool:
        return self.n_scored == 0 and self.n_dissected == 0 and self.n_rated == 0


def overview(engine: Engine) -> Overview:
    def count(t: Any, col: Any = None) -> Any:
        expr = func.count(func.distinct(col)) if col is not None else func.count()
        return select(expr).select_from(t).scalar_subquery()

    statement = select(
        count(MODEL),
        count(UNIT),
        count(UNIT_METRICS),
        count(DISSECTION, DISSECTION.c.unit_id),
        count(RATING, RATING.c.unit_id),
        count(RUN),
    )
    with engine.connect() as conn:
        row = conn.execute(statement).one()
    return Overview(*(int(v) for v in row))


# ------------------------------------------------------------------------------- search


@dataclass(frozen=True)
class Preset:
    """A named search from the paper: the units some criterion calls "object detectors"."""

    key: str
    label: str
    description: str
    condition: Callable[[TableClause], ColumnElement[bool]] = field(repr=False, compare=False)


PRESETS: dict[str, Preset] = {
    p.key: p
    for p in (
        Preset(
            "misleading",
            f"Precision > {PRECISION_DETECTOR:g} but false-alarm rate > {MISLEADING_FALSE_ALARM:g}",
            "Units that top-60 precision calls object detectors (Zhou et al. 2015) while most "
            "images above their best threshold are of other classes (the paper's unit fc6.1199).",
            lambda t: and_(
                t.c.precision > PRECISION_DETECTOR, t.c.false_alarm_rate > MISLEADING_FALSE_ALARM
            ),
        ),
        Preset(
            "localist",
            "Localist units",
            "Some class has all its images above, and disjoint from, all other images.",
            lambda t: t.c.localist.is_(True),
        ),
        Preset(
            "precision",
            f"Precision > {PRECISION_DETECTOR:g}",
            "Object detectors by Zhou et al.'s (2015) criterion.",
            lambda t: t.c.precision > PRECISION_DETECTOR,
        ),
        Preset(
            "ccmas",
            f"CCMAS > {CCMAS_DETECTOR:g}",
            "Highly selective by class-conditional mean activity (Morcos et al. 2018).",
            lambda t: t.c.ccmas > CCMAS_DETECTOR,
        ),
        Preset(
            "dissection",
            f"Dissection detectors (IoU > {IOU_DETECTOR:g})",
            "Units whose best concept has IoU above 0.04 (Bau, Zhou et al. 2017).",
            lambda t: t.c.best_iou > IOU_DETECTOR,
        ),
        Preset(
            "interpretable",
            "Interpretable to people (rating consensus)",
            "Units whose AM images at least 80% of participants recognised as objects.",
            lambda t: t.c.rating_consensus.is_(True),
        ),
    )
}


@dataclass(frozen=True)
class UnitFilter:
    """What the Search page asks for. Tuples (not lists) so that it hashes for caching.

    ranges: (measure, low, high) with inclusive bounds, None for open.
    class_measure: which `*_class` column `class_name` must match (None: any of them).
    """

    ranges: tuple[tuple[str, float | None, float | None], ...] = ()
    models: tuple[str, ...] = ()
    layers: tuple[str, ...] = ()
    run_ids: tuple[int, ...] = ()
    class_name: str | None = None
    class_measure: str | None = None
    concept: str | None = None
    localist: bool | None = None
    preset: str | None = None


#: Columns the result table can be sorted by on the server (any numeric or identity column).
SORTABLE: tuple[str, ...] = (
    "precision",
    *(m for m in FLOAT_MEASURES if m != "precision"),
    "best_iou",
    "share_yes",
    "model",
    "layer_position",
    "unit",
)


def filter_conditions(flt: UnitFilter) -> list[ColumnElement[bool]]:
    """The WHERE conditions of a search (validated; bad names raise InputError)."""
    t = UNIT_CATALOGUE
    conds: list[ColumnElement[bool]] = [
        or_(t.c.run_id.is_not(None), t.c.best_iou.is_not(None), t.c.n_ratings.is_not(None))
    ]
    for name, low, high in flt.ranges:
        if name not in FLOAT_MEASURES and name not in ("best_iou", "share_yes"):
            raise InputError(
                f"{name!r} is not a numeric measure; use one of {', '.join(FLOAT_MEASURES)}."
            )
        col = t.c[name]
        for bound in (low, high):
            if bound is not None and not math.isfinite(float(bound)):
                raise InputError(f"the bounds for {name} must be finite numbers.")
        if low is not None and high is not None and float(low) > float(high):
            raise InputError(
                f"the range for {name} is empty ({low:g} > {high:g}); swap the bounds."
            )
        if low is not None:
            conds.append(col >= float(low))
        if high is not None:
            conds.append(col <= float(high))
    if flt.models:
        conds.append(t.c.model.in_(list(flt.models)))
    if flt.layers:
        conds.append(t.c.layer.in_(list(flt.layers)))
    if flt.run_ids:
        conds.append(t.c.run_id.in_([int(r) for r in flt.run_ids]))
    if flt.class_name:
        if flt.class_measure is not None:
            if flt.class_measure not in CLASS_MEASURES:
                raise InputError(
                    f"{flt.class_measure!r} is not a class column; use one of {', '.join(CLASS_MEASURES)}."
                )
            conds.append(t.c[flt.class_measure] == flt.class_name)
        else:
            conds.append(or_(*(t.c[c] == flt.class_name for c in CLASS_MEASURES)))
    if flt.concept:
        conds.append(t.c.best_concept == flt.concept)
    if flt.localist is not None:
        conds.append(t.c.localist.is_(bool(flt.localist)))
    if flt.preset:
        try:
            conds.append(PRESETS[flt.preset].condition(t))
        except KeyError:
            raise InputError(
                f"no preset {flt.preset!r}; choose one of {', '.join(PRESETS)}."
            ) from None
    return conds


@dataclass(frozen=True)
class SearchResult:
    frame: pd.DataFrame
    total: int

    @property
    def truncated(self) -> bool:
        return self.total > len(self.frame)


def search_units(
    engine: Engine,
    flt: UnitFilter,
    *,
    order_by: str = "precision",
    descending: bool = True,
    limit: int | None = 1000,
) -> SearchResult:
    """Units matching `flt` (every column of `unit_catalogue`), sorted, with the total count."""
    if order_by not in SORTABLE:
        raise InputError(f"cannot sort by {order_by!r}; use one of {', '.join(SORTABLE)}.")
    if limit is not None and limit < 1:
        raise InputError(f"the row limit must be positive, got {limit}.")
    t = UNIT_CATALOGUE
    where = and_(*filter_conditions(flt))
    key = t.c[order_by]
    statement = (
        select(t)
        .where(where)
        .order_by(
            (key.desc() if descending else key.asc()).nulls_last(),
            t.c.model,
            t.c.layer_position,
            t.c.unit,
            t.c.run_id,
        )
    )
    if limit is not None:
        statement = statement.limit(limit)
    frame = _frame(engine, statement)
    with engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(t).where(where)).scalar_one()
    return SearchResult(frame=frame, total=int(total))


@dataclass(frozen=True)
class FilterOptions:
    """The choices the Search page offers, as found in the catalogue."""

    models: list[str]
    layers: dict[str, list[str]]  # layer names by model, in network order
    class_names: list[str]
    concepts: list[str]
    score_runs: pd.DataFrame


def filter_options(engine: Engine) -> FilterOptions:
    layers = _frame(
        engine,
        select(MODEL.c.name.label("model"), LAYER.c.name.label("layer"))
        .join(LAYER, LAYER.c.model_id == MODEL.c.id)
        .order_by(MODEL.c.name, LAYER.c.position, LAYER.c.name),
    )
    by_model: dict[str, list[str]] = {}
    for model, layer in layers.itertuples(index=False):
        by_model.setdefault(model, []).append(layer)
    scored_datasets = select(RUN.c.dataset_id).where(RUN.c.kind == "score").distinct()
    classes = _frame(
        engine,
        select(IMAGE_CLASS.c.name)
        .where(IMAGE_CLASS.c.dataset_id.in_(scored_datasets))
        .distinct()
        .order_by(IMAGE_CLASS.c.name),
    )
    concepts = _frame(
        engine,
        select(CONCEPT.c.name)
        .where(CONCEPT.c.id.in_(select(DISSECTION.c.concept_id)))
        .distinct()
        .order_by(CONCEPT.c.name),
    )
    return FilterOptions(
        models=list(by_model),
        layers=by_model,
        class_names=classes["name"].tolist(),
        concepts=concepts["name"].tolist(),
        score_runs=score_runs(engine),
    )


def measure_ranges(engine: Engine) -> dict[str, tuple[float, float]]:
    """Observed (min, max) of every numeric measure over all scored units (NaN ignored)."""
    t = UNIT_CATALOGUE
    names = [*FLOAT_MEASURES, "best_iou", "share_yes"]
    parts = []
    for name in names:
        col = t.c[name]
        ok = col != literal(float("nan"), Double)
        parts += [func.min(col).filter(ok), func.max(col).filter(ok)]
    with engine.connect() as conn:
        row = conn.execute(select(*parts)).one()
    out: dict[str, tuple[float, float]] = {}
    for i, name in enumerate(names):
        low, high = row[2 * i], row[2 * i + 1]
        if low is not None:
            out[name] = (float(low), float(high))
    return out


# --------------------------------------------------------------------------------- runs


def list_runs(
    engine: Engine, kinds: Sequence[str] = (), statuses: Sequence[str] = ()
) -> pd.DataFrame:
    """Every run, newest first, with its model and dataset names."""
    parent = RUN.alias("parent")
    statement = (
        select(
            RUN.c.id,
            RUN.c.kind,
            RUN.c.status,
            RUN.c.label,
            MODEL.c.name.label("model"),
            DATASET.c.name.label("dataset"),
            RUN.c.parent_id,
            parent.c.kind.label("parent_kind"),
            RUN.c.started_at,
            RUN.c.finished_at,
            RUN.c.duration_s,
            RUN.c.error,
            RUN.c.params,
            RUN.c.stats,
            RUN.c.h5_path,
            RUN.c.code_version,
        )
        .select_from(RUN)
        .outerjoin(MODEL, MODEL.c.id == RUN.c.model_id)
        .outerjoin(DATASET, DATASET.c.id == RUN.c.dataset_id)
        .outerjoin(parent, parent.c.id == RUN.c.parent_id)
        .order_by(RUN.c.started_at.desc(), RUN.c.id.desc())
    )
    if kinds:
        statement = statement.where(RUN.c.kind.in_(list(kinds)))
    if statuses:
        statement = statement.where(RUN.c.status.in_(list(statuses)))
    return _frame(engine, statement)


def score_runs(engine: Engine) -> pd.DataFrame:
    """Scoring runs that have results: id, a readable name, model, dataset, units scored."""
    n_units = (
        select(UNIT_METRICS.c.run_id, func.count().label("n_units"))
        .group_by(UNIT_METRICS.c.run_id)
        .subquery()
    )
    frame = _frame(
        engine,
        select(
            RUN.c.id,
            RUN.c.label,
            MODEL.c.name.label("model"),
            DATASET.c.name.label("dataset"),
            RUN.c.params,
            RUN.c.started_at,
            n_units.c.n_units,
        )
        .select_from(RUN)
        .join(n_units, n_units.c.run_id == RUN.c.id)
        .outerjoin(MODEL, MODEL.c.id == RUN.c.model_id)
        .outerjoin(DATASET, DATASET.c.id == RUN.c.dataset_id)
        .where(RUN.c.kind == "score")
        .order_by(RUN.c.started_at.desc(), RUN.c.id.desc()),
    )
    frame["name"] = [run_name(r) for r in frame.to_dict("records")]
    return frame


def run_name(run: Mapping[str, Any]) -> str:
    """'#12 alexnet on imagenet-val (correct images)': how the UI names a scoring run."""
    label = str(run.get("label") or "")
    if not label:
        model, dataset = run.get("model"), run.get("dataset")
        label = f"{model} on {dataset}" if model and dataset else str(model or "")
    params = run.get("params") or {}
    if isinstance(params, Mapping) and "all_images" in params:
        which = "(all images)" if params["all_images"] else "(correct images)"
        if which not in label:
            label = f"{label} {which}".strip()
    return f"#{run['id']} {label}".strip()


# --------------------------------------------------------------------------------- units


def find_unit(engine: Engine, model: str, layer: str, unit: int) -> int:
    """The id of unit `unit` of `model`.`layer`; NotFound with the valid range otherwise."""
    statement = (
        select(UNIT.c.id, LAYER.c.n_units)
        .join(LAYER, LAYER.c.id == UNIT.c.layer_id)
        .join(MODEL, MODEL.c.id == LAYER.c.model_id)
        .where(MODEL.c.name == model, LAYER.c.name == layer, UNIT.c.unit_index == int(unit))
    )
    with engine.connect() as conn:
        row = conn.execute(statement).one_or_none()
    if row is None:
        raise NotFound(f"no unit {model}.{layer}.{unit} in the catalogue.")
    return int(row.id)


def layer_units(engine: Engine, model: str, layer: str) -> int:
    """Number of units of a registered layer (0 when unknown)."""
    statement = (
        select(LAYER.c.n_units)
        .join(MODEL, MODEL.c.id == LAYER.c.model_id)
        .where(MODEL.c.name == model, LAYER.c.name == layer)
    )
    with engine.connect() as conn:
        return int(conn.execute(statement).scalar_one_or_none() or 0)


def unit_runs(engine: Engine, unit_id: int) -> pd.DataFrame:
    """The scoring runs that scored a unit (newest first), named for a picker."""
    statement = (
        select(
            RUN.c.id,
            RUN.c.label,
            MODEL.c.name.label("model"),
            DATASET.c.name.label("dataset"),
            RUN.c.params,
        )
        .select_from(UNIT_METRICS)
        .join(RUN, RUN.c.id == UNIT_METRICS.c.run_id)
        .outerjoin(MODEL, MODEL.c.id == RUN.c.model_id)
        .outerjoin(DATASET, DATASET.c.id == RUN.c.dataset_id)
        .where(UNIT_METRICS.c.unit_id == int(unit_id))
        .order_by(RUN.c.started_at.desc(), RUN.c.id.desc())
    )
    frame = _frame(engine, statement)
    frame["name"] = [run_name(r) for r in frame.to_dict("records")]
    return frame


def unit_record(engine: Engine, unit_id: int, run_id: int | None = None) -> dict[str, Any]:
    """The unit's `unit_catalogue` row for a scoring run (None: its newest, or its unscored row).

    Adds `run_label`, `run_params`, `parent_id` and `dataset_id` of the scoring run.
    """
    t = UNIT_CATALOGUE
    statement = (
        select(
            t,
            RUN.c.label.label("run_label"),
            RUN.c.params.label("run_params"),
            RUN.c.parent_id,
            RUN.c.dataset_id,
        )
        .select_from(t.outerjoin(RUN, RUN.c.id == t.c.run_id))
        .where(t.c.unit_id == int(unit_id))
    )
    if run_id is not None:
        statement = statement.where(t.c.run_id == int(run_id))
    statement = statement.order_by(RUN.c.started_at.desc().nulls_last(), t.c.run_id.desc()).limit(1)
    with engine.connect() as conn:
        row = conn.execute(statement).mappings().one_or_none()
    if row is None:
        what = f"unit id {unit_id}" + (f" in scoring run {run_id}" if run_id is not None else "")
        raise NotFound(f"no {what} in the catalogue; pick a unit on the Search page.")
    record = dict(row)
    for name in FLOAT_MEASURES:
        if record.get(name) is not None:
            record[name] = float(record[name])
    return record


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


@dataclass(frozen=True)
class Verdict:
    criterion: str
    is_detector: bool | None
    detail: str


def detector_verdicts(record: Mapping[str, Any]) -> list[Verdict]:
    """What each criterion of the literature says about the unit (None: not measured)."""

    def above(name: str, cut: float) -> bool | None:
        value = record.get(name)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return None
        return float(value) > cut

    far = above("false_alarm_rate", MISLEADING_FALSE_ALARM)
    return [
        Verdict(
            f"Top-60 precision > {PRECISION_DETECTOR:g} (Zhou et al. 2015)",
            above("precision", PRECISION_DETECTOR),
            f"{record.get('precision_class') or '—'}",
        ),
        Verdict(
            f"CCMAS > {CCMAS_DETECTOR:g} (Morcos et al. 2018)",
            above("ccmas", CCMAS_DETECTOR),
            f"{record.get('ccmas_class') or '—'}",
        ),
        Verdict(
            "Localist (Bowers et al. 2014)",
            None if record.get("localist") is None else bool(record.get("localist")),
            f"{record.get('localist_class') or '—'}",
        ),
        Verdict(
            f"Dissection IoU > {IOU_DETECTOR:g} (Bau, Zhou et al. 2017)",
            above("best_iou", IOU_DETECTOR),
            f"{record.get('best_concept') or '—'}",
        ),
        Verdict(
            f"False-alarm rate at max informedness ≤ {MISLEADING_FALSE_ALARM:g}",
            None if far is None else not far,
            f"{record.get('mi_class') or '—'}",
        ),
    ]


def run_classes(engine: Engine, run_id: int) -> list[str]:
    """Class names of a run's dataset, by class index."""
    statement = (
        select(IMAGE_CLASS.c.name)
        .join(RUN, RUN.c.dataset_id == IMAGE_CLASS.c.dataset_id)
        .where(RUN.c.id == int(run_id))
        .order_by(IMAGE_CLASS.c.class_index)
    )
    with engine.connect() as conn:
        return [str(n) for n in conn.execute(statement).scalars()]


def _class_of_run(class_col: Any, run_id: int) -> ColumnElement[bool]:
    """Join condition: the `image_class` row of `class_col` in the scoring run's dataset."""
    dataset = select(RUN.c.dataset_id).where(RUN.c.id == int(run_id)).scalar_subquery()
    return and_(IMAGE_CLASS.c.class_index == class_col, IMAGE_CLASS.c.dataset_id == dataset)


def unit_class_stats(engine: Engine, unit_id: int, run_id: int) -> pd.DataFrame:
    """Per class: mean activation, share non-zero, informedness and its threshold, ranks."""
    s = UNIT_CLASS_STATS
    statement = (
        select(
            s.c.class_index,
            IMAGE_CLASS.c.name.label("class_name"),
            s.c.mean_activation,
            s.c.frac_nonzero,
            s.c.informedness,
            s.c.informedness_threshold,
            s.c.rank_by_informedness,
            s.c.rank_by_mean,
        )
        .select_from(s)
        .outerjoin(IMAGE_CLASS, _class_of_run(s.c.class_index, run_id))
        .where(s.c.unit_id == int(unit_id), s.c.run_id == int(run_id))
        .order_by(s.c.rank_by_informedness.asc().nulls_last(), s.c.class_index)
    )
    return _frame(engine, statement)


def unit_group_metrics(engine: Engine, unit_id: int, run_id: int) -> pd.DataFrame:
    """The paper's Tables 4–6 for each class group (e.g. *bus*) scored for the unit."""
    g = UNIT_GROUP_METRICS
    statement = (
        select(
            CLASS_GROUP.c.name.label("group_name"),
            g.c.n_nonzero_in,
            g.c.n_nonzero_out,
            g.c.mu_in,
            g.c.mu_out,
            g.c.precision,
            g.c.ccmas,
            g.c.max_informedness,
            g.c.mi_threshold,
        )
        .join(CLASS_GROUP, CLASS_GROUP.c.id == g.c.group_id)
        .where(g.c.unit_id == int(unit_id), g.c.run_id == int(run_id))
        .order_by(CLASS_GROUP.c.name)
    )
    return _frame(engine, statement)


def unit_top_images(engine: Engine, unit_id: int, run_id: int) -> pd.DataFrame:
    """The unit's most active images (rank 1 first) with class names and, where the image
    file can be found, its path (see `image_path`)."""
    ti = UNIT_TOP_IMAGE
    statement = (
        select(
            ti.c.rank,
            ti.c.image_index,
            ti.c.image_key,
            ti.c.class_index,
            IMAGE_CLASS.c.name.label("class_name"),
            ti.c.activation,
        )
        .select_from(ti)
        .outerjoin(IMAGE_CLASS, _class_of_run(ti.c.class_index, run_id))
        .where(ti.c.unit_id == int(unit_id), ti.c.run_id == int(run_id))
        .order_by(ti.c.rank)
    )
    frame = _frame(engine, statement)
    roots = image_roots(engine, run_id)
    frame["path"] = [image_path(k, roots) for k in frame["image_key"]]
    images: list[Any] = list(frame["path"])
    missing = [i for i, p in enumerate(images) if p is None and frame["image_key"].iloc[i]]
    if missing:
        with engine.connect() as conn:
            dataset = conn.execute(
                select(DATASET.c.name, DATASET.c.source)
                .join(RUN, RUN.c.dataset_id == DATASET.c.id)
                .where(RUN.c.id == int(run_id))
            ).one_or_none()
        if dataset is not None:
            for i in missing:
                images[i] = bundled_image(dataset.name, dataset.source, frame["image_key"].iloc[i])
    frame["image"] = images
    return frame


#: Datasets that ship with a package (catalogue.data): their images are arrays, not files.
BUNDLED_DATASETS: tuple[str, ...] = ("digits", "fashion-mnist")


@functools.lru_cache(maxsize=2)
def _bundled_index(name: str, source: str | None) -> tuple[Any, dict[str, int]] | None:
    """A bundled dataset (digits:test, fashion-mnist:train …) and its index by image key.

    Imports catalogue.data (and torch) lazily: only the Unit page of such a run needs it.
    """
    if name.partition(":")[0].lower() not in BUNDLED_DATASETS:
        return None
    from catalogue.data import resolve_dataset

    folder = source if source and Path(source).is_dir() else None
    try:
        dataset = resolve_dataset(name, fashion_mnist_dir=folder)
    except (UnitcatError, OSError):
        return None
    return dataset, {dataset.key(i): i for i in range(len(dataset))}


def bundled_image(name: str, source: str | None, key: str) -> Any:
    """The image (PIL) with this key in a bundled dataset, or None when it cannot be read."""
    found = _bundled_index(name, source)
    if found is None or key not in found[1]:
        return None
    dataset, index = found
    return dataset.load_image(index[key])


#: Extraction-run parameters that may name the folder image keys are relative to
#: (`dataset_source` is what `unitcat ingest extract` records for an image folder).
IMAGE_ROOT_PARAMS: tuple[str, ...] = ("dataset_source", "root", "image_root", "data_root")


def image_roots(engine: Engine, run_id: int) -> list[Path]:
    """Folders that image keys of a scoring run may be relative to: its extraction run's
    dataset source and its dataset's registered source."""
    parent = RUN.alias("parent")
    statement = (
        select(RUN.c.params, parent.c.params.label("parent_params"), DATASET.c.source)
        .select_from(
            RUN.outerjoin(parent, parent.c.id == RUN.c.parent_id).outerjoin(
                DATASET, DATASET.c.id == RUN.c.dataset_id
            )
        )
        .where(RUN.c.id == int(run_id))
    )
    with engine.connect() as conn:
        row = conn.execute(statement).one_or_none()
    if row is None:
        return []
    candidates: list[str] = []
    for params in (row.parent_params, row.params):
        for key in IMAGE_ROOT_PARAMS:
            value = (params or {}).get(key)
            if isinstance(value, str):
                candidates.append(value)
    if row.source:
        candidates.append(row.source)
    roots: list[Path] = []
    for value in dict.fromkeys(candidates):
        path = Path(value).expanduser()
        if value and path.is_dir():
            roots.append(path)
    return roots


def image_path(key: str | None, roots: Iterable[Path]) -> str | None:
    """The readable image file a key names (absolute, or relative to one of `roots`), else None."""
    if not key:
        return None
    candidate = Path(key).expanduser()
    options = [candidate] if candidate.is_absolute() else [root / key for root in roots]
    for path in options:
        if path.is_file():
            return str(path)
    return None


def unit_dissection(engine: Engine, unit_id: int) -> pd.DataFrame:
    """The unit's top concepts by IoU over every dissection run (best first)."""
    statement = (
        select(
            DISSECTION.c.run_id,
            CONCEPT.c.probe,
            CONCEPT.c.category,
            CONCEPT.c.name.label("concept"),
            DISSECTION.c.rank,
            DISSECTION.c.iou,
            DISSECTION.c.threshold,
            DISSECTION.c.is_detector,
        )
        .join(CONCEPT, CONCEPT.c.id == DISSECTION.c.concept_id)
        .where(DISSECTION.c.unit_id == int(unit_id))
        .order_by(DISSECTION.c.iou.desc(), DISSECTION.c.run_id.desc(), CONCEPT.c.name)
    )
    return _frame(engine, statement)


def artifact_path(path: str | None) -> str | None:
    """An artifact file (AM panel …) as stored: absolute, or relative to UNITCAT_HOME/artifacts."""
    if not path:
        return None
    candidate = Path(path).expanduser()
    if not candidate.is_absolute():
        candidate = get_settings().artifacts_dir / candidate
    return str(candidate) if candidate.is_file() else None


def unit_am_panels(engine: Engine, unit_id: int) -> pd.DataFrame:
    """The unit's activation-maximisation panels (newest first); `file` is None when unreadable."""
    statement = (
        select(
            AM_PANEL.c.id,
            AM_PANEL.c.run_id,
            AM_PANEL.c.method,
            AM_PANEL.c.params,
            AM_PANEL.c.path,
            AM_PANEL.c.activations,
            AM_PANEL.c.dataset_max,
            AM_PANEL.c.created_at,
        )
        .where(AM_PANEL.c.unit_id == int(unit_id))
        .order_by(AM_PANEL.c.created_at.desc(), AM_PANEL.c.id.desc())
    )
    frame = _frame(engine, statement)
    frame["file"] = [artifact_path(p) for p in frame["path"]]
    return frame


def unit_ratings(engine: Engine, unit_id: int) -> pd.DataFrame:
    """Every participant's answer about the unit's AM panel (the paper's Q1–Q3)."""
    statement = (
        select(
            PARTICIPANT.c.code.label("participant"),
            RATING.c.answer,
            RATING.c.estimate,
            RATING.c.names,
            RATING.c.source,
            RATING.c.created_at,
        )
        .join(PARTICIPANT, PARTICIPANT.c.id == RATING.c.participant_id)
        .where(RATING.c.unit_id == int(unit_id))
        .order_by(RATING.c.created_at, PARTICIPANT.c.code)
    )
    return _frame(engine, statement)


def unit_rating_summary(engine: Engine, unit_id: int) -> dict[str, Any] | None:
    """The unit's `rating_summary` row, or None when nobody rated it."""
    statement = select(RATING_SUMMARY).where(RATING_SUMMARY.c.unit_id == int(unit_id))
    with engine.connect() as conn:
        row = conn.execute(statement).mappings().one_or_none()
    return None if row is None else dict(row)


# ------------------------------------------------------------------------- activations


@dataclass(frozen=True)
class UnitActivations:
    """One unit's activation for every image its scoring run scored.

    `rows` are the store rows scored (in store order): all complete rows when the
    run scored all images, else those with ``/correct`` true (the paper's choice).
    """

    values: np.ndarray  # float32 (n,)
    labels: np.ndarray  # int64 (n,)
    class_names: list[str]
    all_images: bool
    n_stored: int
    source: Path


def _h5_file(path: str) -> Path:
    candidate = Path(path).expanduser()
    if not candidate.is_absolute() and not candidate.exists():
        candidate = get_settings().runs_dir / candidate
    return candidate


def unit_activations(engine: Engine, unit_id: int, run_id: int) -> UnitActivations:
    """Read a unit's activations from the HDF5 store of the scoring run's extraction run.

    Raises NotFound when the run has no extraction run or file, or the file lacks the layer.
    """
    from catalogue.store import ActivationStore

    parent = RUN.alias("parent")
    statement = (
        select(
            RUN.c.kind,
            RUN.c.params,
            RUN.c.h5_path,
            parent.c.h5_path.label("parent_h5"),
            LAYER.c.name.label("layer"),
            UNIT.c.unit_index,
        )
        .select_from(RUN.outerjoin(parent, parent.c.id == RUN.c.parent_id))
        .join(UNIT, UNIT.c.id == int(unit_id))
        .join(LAYER, LAYER.c.id == UNIT.c.layer_id)
        .where(RUN.c.id == int(run_id))
    )
    with engine.connect() as conn:
        row = conn.execute(statement).one_or_none()
    if row is None:
        raise NotFound(f"no scoring run {run_id} or unit id {unit_id} in the catalogue.")
    h5 = row.parent_h5 or row.h5_path
    if not h5:
        raise NotFound(
            f"scoring run {run_id} has no extraction run with an activation file; "
            "the jitter plot needs the HDF5 store that `unitcat ingest extract` writes."
        )
    params = row.params or {}
    all_images = bool(params.get("all_images", False))
    with ActivationStore.open(_h5_file(h5)) as store:
        rows = None if all_images else store.correct
        values = store.read_units(row.layer, row.unit_index, row.unit_index + 1, rows=rows)[:, 0]
        labels = store.labels if rows is None else store.labels[rows]
        return UnitActivations(
            values=values,
            labels=labels.astype(np.int64, copy=False),
            class_names=store.class_names,
            all_images=all_images,
            n_stored=store.n_complete,
            source=store.path,
        )


# ------------------------------------------------------------------------------ layers


#: Criteria counted per layer on the Layers page: (key, label, condition on unit_catalogue).
def detector_criteria(mi_cutoff: float) -> list[tuple[str, str, ColumnElement[bool]]]:
    t = UNIT_CATALOGUE
    return [
        ("precision", f"precision > {PRECISION_DETECTOR:g}", t.c.precision > PRECISION_DETECTOR),
        ("ccmas", f"CCMAS > {CCMAS_DETECTOR:g}", t.c.ccmas > CCMAS_DETECTOR),
        ("localist", "localist", t.c.localist.is_(True)),
        ("iou", f"IoU > {IOU_DETECTOR:g}", t.c.best_iou > IOU_DETECTOR),
        ("max_informedness", f"max informedness > {mi_cutoff:g}", t.c.max_informedness > mi_cutoff),
        (
            "misleading",
            f"precision > {PRECISION_DETECTOR:g} & false alarms > {MISLEADING_FALSE_ALARM:g}",
            and_(t.c.precision > PRECISION_DETECTOR, t.c.false_alarm_rate > MISLEADING_FALSE_ALARM),
        ),
        ("consensus", "rated interpretable", t.c.rating_consensus.is_(True)),
    ]


def layer_detector_counts(engine: Engine, run_id: int, *, mi_cutoff: float = 0.5) -> pd.DataFrame:
    """Per layer of a scoring run: units, and how many units each criterion calls a detector."""
    if not math.isfinite(mi_cutoff):
        raise InputError("the max-informedness cut-off must be a finite number.")
    t = UNIT_CATALOGUE
    counts = [
        func.count().filter(cond).label(key) for key, _label, cond in detector_criteria(mi_cutoff)
    ]
    statement = (
        select(t.c.model, t.c.layer, t.c.layer_position, func.count().label("n_units"), *counts)
        .where(t.c.run_id == int(run_id))
        .group_by(t.c.model, t.c.layer, t.c.layer_position)
        .order_by(t.c.layer_position, t.c.layer)
    )
    return _frame(engine, statement)


def layer_summary(
    engine: Engine, run_id: int, measures: Sequence[str] | None = None
) -> pd.DataFrame:
    """`layer_summary` rows of a scoring run (quartiles, mean, sd per layer and measure)."""
    s = LAYER_SUMMARY
    statement = select(s).where(s.c.run_id == int(run_id))
    if measures:
        statement = statement.where(s.c.measure.in_(list(measures)))
    return _frame(engine, statement.order_by(s.c.layer_position, s.c.layer, s.c.measure))


def dissection_summary(engine: Engine) -> pd.DataFrame:
    s = DISSECTION_SUMMARY
    return _frame(engine, select(s).order_by(s.c.run_id, s.c.layer_position))


# ---------------------------------------------------------------------------- measures


def measure_correlations(engine: Engine, run_id: int, layer: str) -> pd.DataFrame:
    """`measure_correlations` rows (Pearson and Spearman per pair of measures) of one layer."""
    c = MEASURE_CORRELATIONS
    statement = (
        select(c)
        .where(c.c.run_id == int(run_id), c.c.layer == layer)
        .order_by(c.c.measure_a, c.c.measure_b)
    )
    return _frame(engine, statement)


def pooled_correlations(
    values: pd.DataFrame, measures: Sequence[str] = CORRELATED_MEASURES
) -> pd.DataFrame:
    """Correlations over all units of `values` (pairwise-complete, like the view), in the
    view's long shape: measure_a < measure_b, n, pearson, spearman."""
    rows = []
    names = sorted(m for m in measures if m in values.columns)
    numeric = values[names].apply(pd.to_numeric, errors="coerce").astype("float64")
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            pair = numeric[[a, b]].dropna()
            n = len(pair)
            pearson = spearman = float("nan")
            if n >= 2 and pair[a].nunique() > 1 and pair[b].nunique() > 1:
                pearson = float(np.corrcoef(pair[a], pair[b])[0, 1])
                spearman = float(np.corrcoef(pair[a].rank(), pair[b].rank())[0, 1])
            rows.append(
                {"measure_a": a, "measure_b": b, "n": n, "pearson": pearson, "spearman": spearman}
            )
    return pd.DataFrame(rows, columns=["measure_a", "measure_b", "n", "pearson", "spearman"])


def measure_values(
    engine: Engine,
    run_id: int,
    measures: Sequence[str],
    *,
    layers: Sequence[str] = (),
) -> pd.DataFrame:
    """Identity columns and the given measures for every unit of a scoring run."""
    t = UNIT_CATALOGUE
    unknown = [
        m for m in measures if m not in MEASURES_BY_NAME and m not in ("best_iou", "share_yes")
    ]
    if unknown:
        raise InputError(f"unknown measures: {', '.join(unknown)}.")
    extra = [c for c in ("precision_class", "mi_class", "ccmas_class") if c not in measures]
    statement = select(
        t.c.run_id,
        t.c.unit_id,
        t.c.model,
        t.c.layer,
        t.c.layer_position,
        t.c.unit,
        *(t.c[m] for m in dict.fromkeys([*measures, *extra])),
    ).where(t.c.run_id == int(run_id))
    if layers:
        statement = statement.where(t.c.layer.in_(list(layers)))
    return _frame(engine, statement.order_by(t.c.layer_position, t.c.unit))


__all__ = [
    "PRESETS",
    "SORTABLE",
    "UNIT_CATALOGUE",
    "FilterOptions",
    "Overview",
    "Preset",
    "SearchResult",
    "UnitActivations",
    "UnitFilter",
    "Verdict",
    "detector_criteria",
    "detector_verdicts",
    "dissection_summary",
    "filter_options",
    "find_unit",
    "image_path",
    "layer_detector_counts",
    "layer_summary",
    "layer_units",
    "list_runs",
    "measure_correlations",
    "measure_ranges",
    "measure_rows",
    "measure_values",
    "overview",
    "pooled_correlations",
    "run_classes",
    "run_name",
    "score_runs",
    "search_units",
    "unit_activations",
    "unit_am_panels",
    "unit_class_stats",
    "unit_dissection",
    "unit_group_metrics",
    "unit_rating_summary",
    "unit_ratings",
    "unit_record",
    "unit_runs",
    "unit_top_images",
]
