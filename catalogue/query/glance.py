"""A unit at a glance: the stored numbers its one-line summary is made of.

Every fact is a number the catalogue holds (the unit's `unit_catalogue` row, its
scoring run, its newest ablation run and that run's per-class file), never a word
made up from them: which classes its measures name, the precision share of its top
images, the false-alarm rate at its max-informedness threshold, its best dissection
concept, and what removing it cost with the number of images that cost was measured
on. A fact that was not measured is None, so that the summary can say "not measured"
rather than guess.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine, select

from catalogue.errors import InputError, NotFound
from catalogue.measures import TOP_K_PRECISION
from catalogue.query.importance import unit_class_changes, unit_importance
from catalogue.query.units import unit_record
from catalogue.query.views import LAYER, MODEL, RUN, UNIT


@dataclass(frozen=True)
class AblationCost:
    """What replacing the unit's activation did in one ablation run (the newest).

    `images_lost` per class is the change in its correctly classified images,
    −change × class size, rounded (a change is a difference of two counts over the
    class's size); `worst_*` is the class that lost most images (None: the run's file,
    which holds the per-class changes, cannot be read here).
    """

    run_id: int
    n_images: int
    replaced_by: str | None
    accuracy_change: float | None
    most_hurt_class: str | None
    most_hurt_change: float | None
    n_classes: int | None = None
    min_class_size: int | None = None
    max_class_size: int | None = None
    worst_class: str | None = None
    worst_images_lost: int | None = None
    worst_class_size: int | None = None


@dataclass(frozen=True)
class UnitGlance:
    """The facts of a unit's summary line (None: not measured)."""

    model: str
    layer: str
    layer_kind: str | None
    unit: int
    unit_id: int
    run_id: int | None
    n_images: int | None
    constant: bool
    constant_value: float | None
    baseline_of: int | None
    model_weights: str | None
    precision: float | None
    precision_class: str | None
    top_k: int
    max_informedness: float | None
    mi_class: str | None
    mi_threshold: float | None
    false_alarm_rate: float | None
    best_concept: str | None
    best_iou: float | None
    is_detector: bool | None
    ablation: AblationCost | None

    @property
    def scored(self) -> bool:
        return self.run_id is not None


def _value(record: dict[str, Any], name: str) -> Any:
    value = record.get(name)
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return value


def _float(record: dict[str, Any], name: str) -> float | None:
    value = _value(record, name)
    return None if value is None else float(value)


def _int(record: dict[str, Any], name: str) -> int | None:
    value = _value(record, name)
    return None if value is None else int(value)


def _identity(engine: Engine, unit_id: int, run_id: int | None) -> dict[str, Any]:
    """The unit's model weights label and whether its scoring run is a baseline's."""
    statement = (
        select(MODEL.c.weights, LAYER.c.kind)
        .select_from(UNIT)
        .join(LAYER, LAYER.c.id == UNIT.c.layer_id)
        .join(MODEL, MODEL.c.id == LAYER.c.model_id)
        .where(UNIT.c.id == int(unit_id))
    )
    with engine.connect() as conn:
        row = conn.execute(statement).one()
        baseline_of = (
            None
            if run_id is None
            else conn.execute(select(RUN.c.baseline_of).where(RUN.c.id == int(run_id))).scalar()
        )
    return {"weights": row.weights, "kind": row.kind, "baseline_of": baseline_of}


def ablation_cost(row: dict[str, Any], changes: pd.DataFrame | None) -> AblationCost:
    """An ablation run's `unit_importance` row, with the per-class changes of its file
    (`catalogue.query.importance.unit_class_changes`; None when the file is unreadable)."""
    cost: dict[str, Any] = {
        "run_id": int(row["run_id"]),
        "n_images": int(row["n_images"]),
        "replaced_by": _value(row, "replaced_by"),
        "accuracy_change": _float(row, "accuracy_change"),
        "most_hurt_class": _value(row, "most_hurt_class"),
        "most_hurt_change": _float(row, "most_hurt_change"),
    }
    if changes is not None and not changes.empty:
        sizes = changes["n_images"].to_numpy(dtype=np.int64)
        lost = np.rint(-changes["change"].to_numpy(dtype=np.float64) * sizes).astype(np.int64)
        # the class that lost most images; ties: the smaller change first, then class index
        order = np.lexsort((changes["class_index"].to_numpy(), -lost))
        worst = int(order[0])
        cost |= {
            "n_classes": int(sizes.size),
            "min_class_size": int(sizes.min()),
            "max_class_size": int(sizes.max()),
            "worst_class": changes["class_name"].iloc[worst],
            "worst_images_lost": int(lost[worst]),
            "worst_class_size": int(sizes[worst]),
        }
    return AblationCost(**cost)


def unit_ablation_cost(engine: Engine, unit_id: int) -> AblationCost | None:
    """What removing the unit cost in its newest ablation run (None: never ablated)."""
    rows = unit_importance(engine, unit_id)
    if rows.empty:
        return None
    row = rows.iloc[0].to_dict()
    try:
        changes = unit_class_changes(engine, int(row["run_id"]), int(unit_id))
    except (NotFound, InputError, OSError):
        changes = None
    return ablation_cost(row, changes)


def glance_of(
    record: dict[str, Any], identity: dict[str, Any], ablation: AblationCost | None
) -> UnitGlance:
    """The facts from a `unit_catalogue` record (`catalogue.query.units.unit_record`)."""
    run_id = _int(record, "run_id")
    constant = bool(_value(record, "constant") or False)
    return UnitGlance(
        model=str(record["model"]),
        layer=str(record["layer"]),
        layer_kind=identity.get("kind") or _value(record, "layer_kind"),
        unit=int(record["unit"]),
        unit_id=int(record["unit_id"]),
        run_id=run_id,
        n_images=_int(record, "n_images"),
        constant=constant,
        constant_value=_float(record, "max_activation") if constant else None,
        baseline_of=_int(identity, "baseline_of"),
        model_weights=identity.get("weights"),
        precision=_float(record, "precision"),
        precision_class=_value(record, "precision_class"),
        top_k=TOP_K_PRECISION,
        max_informedness=_float(record, "max_informedness"),
        mi_class=_value(record, "mi_class"),
        mi_threshold=_float(record, "mi_threshold"),
        false_alarm_rate=_float(record, "false_alarm_rate"),
        best_concept=_value(record, "best_concept"),
        best_iou=_float(record, "best_iou"),
        is_detector=None if _value(record, "is_detector") is None else bool(record["is_detector"]),
        ablation=ablation,
    )


def unit_glance(engine: Engine, unit_id: int, run_id: int | None = None) -> UnitGlance:
    """A unit's summary facts for a scoring run (None: its newest, as `unit_record`)."""
    record = unit_record(engine, unit_id, run_id)
    identity = _identity(engine, unit_id, _int(record, "run_id"))
    return glance_of(record, identity, unit_ablation_cost(engine, unit_id))
