"""The Search page's query: units by any measure, model, layer, class, concept or preset.

A preset is a detector criterion of `catalogue.measures.CRITERIA`: the units
the literature would call "object detectors" by that criterion (and the paper's
headline, the misleading ones). Every condition is Core over `unit_catalogue`;
what a user typed only ever reaches the database as a bound parameter. Constant
(dead) units are left out unless the filter includes them (`NOT_CONSTANT`):
their scores describe the class sizes, not the unit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd
from sqlalchemy import ColumnElement, Double, Engine, and_, func, literal, or_, select
from sqlalchemy.sql import TableClause

from catalogue.errors import InputError
from catalogue.measures import CLASS_MEASURES, CRITERIA, FLOAT_MEASURES, NOT_CONSTANT, Criterion
from catalogue.query.frame import read_frame
from catalogue.query.runs import score_runs
from catalogue.query.views import (
    CONCEPT,
    DISSECTION,
    IMAGE_CLASS,
    LAYER,
    MODEL,
    RUN,
    UNIT_CATALOGUE,
)

#: Columns of `unit_catalogue` besides the measures that hold numbers a user can filter on.
EXTRA_NUMERIC: tuple[str, ...] = ("best_iou", "share_yes")

#: Preset names in URLs (?preset=…) that differ from their criterion's key (links stay valid).
_PRESET_NAMES: dict[str, str] = {"iou": "dissection", "consensus": "interpretable"}


@dataclass(frozen=True)
class Preset:
    """A named search: the units one detector criterion of the literature selects."""

    key: str
    criterion: Criterion

    @property
    def label(self) -> str:
        return self.criterion.label

    @property
    def description(self) -> str:
        c = self.criterion
        return f"{c.description} ({c.source}; {c.rule()})"

    def condition(self, t: TableClause) -> ColumnElement[bool]:
        return self.criterion.core(t.c)


def _presets() -> dict[str, Preset]:
    """One preset per criterion, the paper's headline (misleading detectors) first."""
    ordered = sorted(CRITERIA, key=lambda c: c.key != "misleading")
    presets = [Preset(_PRESET_NAMES.get(c.key, c.key), c) for c in ordered]
    return {p.key: p for p in presets}


PRESETS: dict[str, Preset] = _presets()


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
    include_constant: bool = False


#: Columns the result table can be sorted by on the server (any numeric or identity column).
SORTABLE: tuple[str, ...] = (
    "precision",
    *(m for m in FLOAT_MEASURES if m != "precision"),
    *EXTRA_NUMERIC,
    "model",
    "layer_position",
    "unit",
)


def filter_conditions(flt: UnitFilter) -> list[ColumnElement[bool]]:
    """The WHERE conditions of a search (validated; bad names raise InputError)."""
    t = UNIT_CATALOGUE
    conds = _conditions(flt)
    if not flt.include_constant:
        conds.append(NOT_CONSTANT.core(t.c))
    return conds


def _conditions(flt: UnitFilter) -> list[ColumnElement[bool]]:
    """Every condition of a search but the constant-unit switch."""
    t = UNIT_CATALOGUE
    conds: list[ColumnElement[bool]] = [
        or_(t.c.run_id.is_not(None), t.c.best_iou.is_not(None), t.c.n_ratings.is_not(None))
    ]
    for name, low, high in flt.ranges:
        if name not in FLOAT_MEASURES and name not in EXTRA_NUMERIC:
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
    #: constant units that match the other filters but were left out (0 when included)
    n_constant_left_out: int = 0

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
    """Units matching `flt` (every column of `unit_catalogue`, and `baseline_of`: the trained
    scoring run a baseline row's run is a baseline of, else NULL), sorted, with the total
    count."""
    if order_by not in SORTABLE:
        raise InputError(f"cannot sort by {order_by!r}; use one of {', '.join(SORTABLE)}.")
    if limit is not None and limit < 1:
        raise InputError(f"the row limit must be positive, got {limit}.")
    t = UNIT_CATALOGUE
    where = and_(*filter_conditions(flt))
    key = t.c[order_by]
    statement = (
        # each row says whether its scoring run is a baseline (random weights) of another
        select(t, RUN.c.baseline_of)
        .select_from(t.outerjoin(RUN, RUN.c.id == t.c.run_id))
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
    frame = read_frame(engine, statement)
    hidden = and_(*_conditions(flt), t.c.constant.is_(True))
    with engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(t).where(where)).scalar_one()
        left_out = 0
        if not flt.include_constant:
            left_out = conn.execute(select(func.count()).select_from(t).where(hidden)).scalar_one()
    return SearchResult(frame=frame, total=int(total), n_constant_left_out=int(left_out))


@dataclass(frozen=True)
class FilterOptions:
    """The choices the Search page offers, as found in the catalogue."""

    models: list[str]
    layers: dict[str, list[str]]  # layer names by model, in network order
    class_names: list[str]
    concepts: list[str]
    score_runs: pd.DataFrame


def filter_options(engine: Engine) -> FilterOptions:
    layers = read_frame(
        engine,
        select(MODEL.c.name.label("model"), LAYER.c.name.label("layer"))
        .join(LAYER, LAYER.c.model_id == MODEL.c.id)
        .order_by(MODEL.c.name, LAYER.c.position, LAYER.c.name),
    )
    by_model: dict[str, list[str]] = {}
    for model, layer in layers.itertuples(index=False):
        by_model.setdefault(model, []).append(layer)
    scored_datasets = select(RUN.c.dataset_id).where(RUN.c.kind == "score").distinct()
    classes = read_frame(
        engine,
        select(IMAGE_CLASS.c.name)
        .where(IMAGE_CLASS.c.dataset_id.in_(scored_datasets))
        .distinct()
        .order_by(IMAGE_CLASS.c.name),
    )
    concepts = read_frame(
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
    names = [*FLOAT_MEASURES, *EXTRA_NUMERIC]
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
