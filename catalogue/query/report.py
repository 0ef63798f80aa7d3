"""What a pipeline run reports (`unitcat demo`, `unitcat ingest paper`): the detector
counts per layer (the paper's Figure 2 in numbers) and the headline query's units.

The headline is the paper's point: units that top-60 precision calls object
detectors while most images above their best threshold belong to other classes
(the "misleading" criterion of `catalogue.measures.CRITERIA`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, func, select

from catalogue.measures import CRITERIA, CRITERIA_BY_KEY, NOT_CONSTANT
from catalogue.query.layers import undefined_counts
from catalogue.query.views import (
    DISSECTION_SUMMARY,
    LAYER_DETECTORS,
    MISLEADING_DETECTORS,
    UNIT_CATALOGUE,
)

_MISLEADING = CRITERIA_BY_KEY["misleading"]
_PRECISION = CRITERIA_BY_KEY["precision"]

#: The headline query as a user types it in psql or the SQL page.
HEADLINE_SQL = (
    "SELECT model, layer, unit, precision, precision_class, false_alarm_rate\n"
    "FROM unit_catalogue\n"
    f"WHERE {_MISLEADING.sql()} AND {NOT_CONSTANT.sql()}"
)

#: The columns of a unit in the report's unit tables.
_UNIT_COLUMNS: tuple[str, ...] = (
    "layer",
    "unit",
    "precision",
    "precision_class",
    "false_alarm_rate",
    "max_informedness",
    "recall_at_mi",
)


@dataclass
class RunReport:
    model: str
    #: per layer: layer, n_units, n_constant, one count per criterion (its `count_column`,
    #: constant units left out; None for IoU where no dissection covered the layer), medians
    layers: list[dict[str, Any]] = field(default_factory=list)
    misleading: list[dict[str, Any]] = field(default_factory=list)
    n_misleading: int = 0
    #: the precision "detectors" with the highest false-alarm rates (shown when none is misleading)
    worst_precision_detectors: list[dict[str, Any]] = field(default_factory=list)
    #: per layer, measure and reason: the units (not constant) without the measure, e.g.
    #: CCMAS in a layer of logits (`catalogue.query.layers.undefined_counts`)
    undefined: list[dict[str, Any]] = field(default_factory=list)


def run_report(engine: Engine, model_name: str, score_run_id: int) -> RunReport:
    """The per-layer detector counts and the headline query of one scoring run."""
    ld, md, uc = LAYER_DETECTORS, MISLEADING_DETECTORS, UNIT_CATALOGUE
    counts = [ld.c[c.count_column] for c in CRITERIA if c.count_column]
    run = int(score_run_id)
    with engine.connect() as conn:
        layers = conn.execute(
            select(
                ld.c.layer,
                ld.c.n_units,
                ld.c.n_constant,
                *counts,
                ld.c.median_max_informedness,
                ld.c.median_false_alarm_rate,
            )
            .where(ld.c.run_id == run)
            .order_by(ld.c.layer_position)
        ).mappings()
        layers = [dict(r) for r in layers]
        dissected = set(
            conn.execute(
                select(DISSECTION_SUMMARY.c.layer).where(DISSECTION_SUMMARY.c.model == model_name)
            ).scalars()
        )
        for row in layers:  # "0 IoU detectors" would claim a dissection that never ran
            if row["layer"] not in dissected:
                row[CRITERIA_BY_KEY["iou"].count_column] = None
        misleading = conn.execute(
            select(*(md.c[name] for name in _UNIT_COLUMNS))
            .where(md.c.run_id == run)
            .order_by(md.c.false_alarm_rate.desc(), md.c.precision.desc())
            .limit(10)
        ).mappings()
        misleading = [dict(r) for r in misleading]
        n_misleading = conn.execute(
            select(func.count()).select_from(md).where(md.c.run_id == run)
        ).scalar_one()
        worst = conn.execute(
            select(*(uc.c[name] for name in _UNIT_COLUMNS))
            .where(uc.c.run_id == run, _PRECISION.core(uc.c), NOT_CONSTANT.core(uc.c))
            .order_by(uc.c.false_alarm_rate.desc().nulls_last(), uc.c.precision.desc())
            .limit(5)
        ).mappings()
        worst = [dict(r) for r in worst]
    undefined = undefined_counts(engine, run).to_dict("records")
    _no_count_where_undefined(layers, undefined)
    return RunReport(
        model=model_name,
        layers=layers,
        misleading=misleading,
        n_misleading=int(n_misleading),
        worst_precision_detectors=worst,
        undefined=undefined,
    )


def _no_count_where_undefined(
    layers: list[dict[str, Any]], undefined: list[dict[str, Any]]
) -> None:
    """A layer where a criterion's measure is undefined for every (non-constant) unit gets
    no count for it (None), not "0 detectors": it was not measured there."""
    missing: dict[tuple[str, str], int] = {}
    for row in undefined:
        key = (row["layer"], row["measure"])
        missing[key] = missing.get(key, 0) + int(row["n"])
    for row in layers:
        live = int(row["n_units"]) - int(row["n_constant"] or 0)
        for c in CRITERIA:
            if not c.count_column or row.get(c.count_column) is None:
                continue
            if live > 0 and all(missing.get((row["layer"], col), 0) >= live for col in c.columns):
                row[c.count_column] = None


def showcase_unit(engine: Engine, run_id: int | None = None) -> tuple[int, int] | None:
    """(unit id, scoring run) of the precision "detector" with the highest false-alarm rate
    (constant units left out) in the catalogue or in one scoring run: the README's Unit
    page; None when there is none. Ties go to the higher precision, then the lower unit id."""
    uc = UNIT_CATALOGUE
    statement = (
        select(uc.c.unit_id, uc.c.run_id)
        .where(_PRECISION.core(uc.c), NOT_CONSTANT.core(uc.c))
        .order_by(uc.c.false_alarm_rate.desc().nulls_last(), uc.c.precision.desc(), uc.c.unit_id)
        .limit(1)
    )
    if run_id is not None:
        statement = statement.where(uc.c.run_id == int(run_id))
    with engine.connect() as conn:
        row = conn.execute(statement).one_or_none()
    return None if row is None else (int(row.unit_id), int(row.run_id))
