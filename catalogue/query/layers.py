"""Per layer of a scoring run: how many units each detector criterion calls a detector,
each measure's distribution (the paper's Figure 2), how the measures correlate (its
Table 3), dissection per layer, and the measure values behind the scatter plots.

Constant (dead) units are left out of all of these unless `include_constant` is true
(the UI's switch): by default the views are read; with constant units the same SELECTs
(`catalogue.db.views`) run without that filter."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from sqlalchemy import Engine, and_, column, func, literal, select, text
from sqlalchemy.sql import TableClause
from sqlalchemy.sql.selectable import Subquery

from catalogue.db.views import layer_summary_select, measure_correlations_select
from catalogue.errors import InputError
from catalogue.measures import (
    CORRELATED_MEASURES,
    CRITERIA,
    MEASURES_BY_NAME,
    NOT_CONSTANT,
    UNDEFINED_REASONS,
    Condition,
    Criterion,
)
from catalogue.query.frame import read_frame
from catalogue.query.search import EXTRA_NUMERIC
from catalogue.query.views import (
    DISSECTION_SUMMARY,
    LAYER_SUMMARY,
    MEASURE_CORRELATIONS,
    UNIT_CATALOGUE,
)

# ------------------------------------------------------------------------ detector counts


def _informedness_criterion(cutoff: float) -> Criterion:
    """A unit counts as a detector by informedness when its max informedness is above
    `cutoff` (the Layers page's slider: the literature names no one cut-off)."""
    if not math.isfinite(cutoff):
        raise InputError("the max-informedness cut-off must be a finite number.")
    return Criterion(
        "max_informedness",
        f"Max informedness > {cutoff:g}",
        "Powers 2003; Gale et al. 2020",
        "Hit rate minus false-positive rate at the best class and threshold (Youden's J).",
        (Condition("max_informedness", ">", float(cutoff)),),
        class_column="mi_class",
    )


def detector_criteria(mi_cutoff: float) -> list[Criterion]:
    """The criteria counted per layer: the registry's, then max informedness > `mi_cutoff`."""
    return [*CRITERIA, _informedness_criterion(mi_cutoff)]


def _with_constant(view: TableClause, select_sql: str) -> Subquery:
    """The rows a view would hold with constant units kept: its generated SELECT, run as is."""
    columns = [column(c.name, c.type) for c in view.columns]
    return text(select_sql).columns(*columns).subquery(f"{view.name}_all")


def layer_detector_counts(
    engine: Engine, run_id: int, *, mi_cutoff: float = 0.5, include_constant: bool = False
) -> pd.DataFrame:
    """Per layer of a scoring run: units, constant units (`n_constant`), and how many units
    each criterion calls a detector (one column per criterion, named by its key), constant
    units left out unless `include_constant`."""
    t = UNIT_CATALOGUE
    live = NOT_CONSTANT.core(t.c)
    counts = [
        func.count()
        .filter(c.core(t.c) if include_constant else and_(live, c.core(t.c)))
        .label(c.key)
        for c in detector_criteria(mi_cutoff)
    ]
    n_constant = func.count().filter(t.c.constant.is_(True)).label("n_constant")
    statement = (
        select(
            t.c.model,
            t.c.layer,
            t.c.layer_position,
            func.count().label("n_units"),
            n_constant,
            *counts,
        )
        .where(t.c.run_id == int(run_id))
        .group_by(t.c.model, t.c.layer, t.c.layer_position)
        .order_by(t.c.layer_position, t.c.layer)
    )
    return read_frame(engine, statement)


# ------------------------------------------------------------------ undefined measures

#: Columns of `undefined_counts`.
UNDEFINED_COLUMNS: tuple[str, ...] = ("model", "layer", "layer_position", "measure", "reason", "n")


def undefined_counts(
    engine: Engine, run_id: int, *, include_constant: bool = False
) -> pd.DataFrame:
    """Per layer of a scoring run: for each measure that can be undefined
    (`catalogue.measures.UNDEFINED_REASONS`, e.g. CCMAS in a layer of logits), how many
    units have no value of it and why (`reason`), constant units left out unless
    `include_constant` — the units a plot or a correlation of the measure leaves out."""
    t = UNIT_CATALOGUE
    frames = []
    for reason in UNDEFINED_REASONS:
        why = t.c[reason.column]
        statement = (
            select(
                t.c.model,
                t.c.layer,
                t.c.layer_position,
                literal(reason.measure).label("measure"),
                why.label("reason"),
                func.count().label("n"),
            )
            .where(t.c.run_id == int(run_id), why.is_not(None))
            .group_by(t.c.model, t.c.layer, t.c.layer_position, why)
            .order_by(t.c.layer_position, t.c.layer, why)
        )
        if not include_constant:
            statement = statement.where(NOT_CONSTANT.core(t.c))
        frames.append(read_frame(engine, statement))
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame(columns=list(UNDEFINED_COLUMNS))
    return pd.concat(frames, ignore_index=True)[list(UNDEFINED_COLUMNS)]


def undefined_note(counts: pd.DataFrame, measure: str, *, layer: str | None = None) -> str | None:
    """One sentence on the units without `measure` in `counts` (`undefined_counts`), for
    the caption of a plot or a correlation that leaves them out, e.g. "CCMAS is undefined
    for 100 units, left out: fc8 100 (activations can be negative)."; None when none is."""
    rows = counts[counts["measure"] == measure]
    if layer is not None:
        rows = rows[rows["layer"] == layer]
    if rows.empty:
        return None
    label = MEASURES_BY_NAME[measure].label if measure in MEASURES_BY_NAME else measure
    total = int(rows["n"].sum())
    parts = [f"{r.layer} {int(r.n):,} ({r.reason})" for r in rows.itertuples()]
    units = "unit" if total == 1 else "units"
    return f"{label} is undefined for {total:,} {units}, left out: {'; '.join(parts)}."


def undefined_layers(
    counts: pd.DataFrame,
    undefined: pd.DataFrame,
    criteria: Sequence[Criterion],
    include_constant: bool = False,
) -> list[tuple[str, set[str]]]:
    """(criterion key, layers) where a measure the criterion tests is undefined for every
    counted unit of the layer (`counts`: `layer_detector_counts`; `undefined`:
    `undefined_counts` with the same `include_constant`): its count there is no finding."""
    live = {
        str(r["layer"]): int(r["n_units"]) - (0 if include_constant else int(r["n_constant"]))
        for r in counts.to_dict("records")
    }
    per_layer = undefined.groupby(["measure", "layer"])["n"].sum() if len(undefined) else {}
    out = []
    for c in criteria:
        layers = {
            layer
            for (measure, layer), n in dict(per_layer).items()
            if measure in c.columns and live.get(layer, 0) > 0 and int(n) >= live[layer]
        }
        if layers:
            out.append((c.key, layers))
    return out


# ------------------------------------------------------------------------- distributions


def layer_summary(
    engine: Engine,
    run_id: int,
    measures: Sequence[str] | None = None,
    *,
    include_constant: bool = False,
) -> pd.DataFrame:
    """`layer_summary` rows of a scoring run (quartiles, mean, sd per layer and measure),
    over the non-constant units unless `include_constant`."""
    s = (
        _with_constant(LAYER_SUMMARY, layer_summary_select(include_constant=True))
        if include_constant
        else LAYER_SUMMARY
    )
    statement = select(s).where(s.c.run_id == int(run_id))
    if measures:
        statement = statement.where(s.c.measure.in_(list(measures)))
    return read_frame(engine, statement.order_by(s.c.layer_position, s.c.layer, s.c.measure))


def dissection_summary(engine: Engine) -> pd.DataFrame:
    """`dissection_summary`: per dissection run and layer, units, detectors, unique concepts."""
    s = DISSECTION_SUMMARY
    return read_frame(engine, select(s).order_by(s.c.run_id, s.c.layer_position))


# -------------------------------------------------------------------------- correlations


def measure_correlations(
    engine: Engine, run_id: int, layer: str, *, include_constant: bool = False
) -> pd.DataFrame:
    """`measure_correlations` rows (Pearson and Spearman per pair of measures) of one layer,
    over the non-constant units unless `include_constant`."""
    c = (
        _with_constant(MEASURE_CORRELATIONS, measure_correlations_select(include_constant=True))
        if include_constant
        else MEASURE_CORRELATIONS
    )
    statement = (
        select(c)
        .where(c.c.run_id == int(run_id), c.c.layer == layer)
        .order_by(c.c.measure_a, c.c.measure_b)
    )
    return read_frame(engine, statement)


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
    include_constant: bool = False,
) -> pd.DataFrame:
    """Identity columns and the given measures for every unit of a scoring run (the
    non-constant ones unless `include_constant`), with its `constant` flag."""
    t = UNIT_CATALOGUE
    unknown = [m for m in measures if m not in MEASURES_BY_NAME and m not in EXTRA_NUMERIC]
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
        t.c.constant,
        *(t.c[m] for m in dict.fromkeys([*measures, *extra]) if m != "constant"),
    ).where(t.c.run_id == int(run_id))
    if not include_constant:
        statement = statement.where(NOT_CONSTANT.core(t.c))
    if layers:
        statement = statement.where(t.c.layer.in_(list(layers)))
    return read_frame(engine, statement.order_by(t.c.layer_position, t.c.unit))
