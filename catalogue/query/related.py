"""Units related to one unit, for moving through the catalogue: its neighbours in its
layer, the units selective for the same class (by the same measure's class), and the
units whose best dissection concept is the same.

Everything reads `unit_catalogue` and the identity tables with bound parameters.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from sqlalchemy import Engine, and_, func, select

from catalogue.errors import InputError
from catalogue.measures import CLASS_MEASURES
from catalogue.query.frame import read_frame
from catalogue.query.views import LAYER, MODEL, UNIT, UNIT_CATALOGUE

#: The measure each class column belongs to: related units are sorted by it.
CLASS_SCORE: dict[str, str] = {
    "localist_class": "max_informedness",
    "precision_class": "precision",
    "ccmas_class": "ccmas",
    "mi_class": "max_informedness",
}

#: Columns each related-units list carries besides the unit's address.
RELATED_COLUMNS: tuple[str, ...] = (
    "precision",
    "max_informedness",
    "false_alarm_rate",
    "ccmas",
    "best_iou",
)


@dataclass(frozen=True)
class UnitAddress:
    """A unit as people name it (model, layer, index) and as the catalogue keys it."""

    unit_id: int
    model: str
    layer: str
    unit: int

    @property
    def name(self) -> str:
        return f"{self.layer}.{self.unit}"


def unit_address(engine: Engine, unit_id: int) -> UnitAddress | None:
    statement = (
        select(UNIT.c.id, MODEL.c.name, LAYER.c.name, UNIT.c.unit_index)
        .join(LAYER, LAYER.c.id == UNIT.c.layer_id)
        .join(MODEL, MODEL.c.id == LAYER.c.model_id)
        .where(UNIT.c.id == int(unit_id))
    )
    with engine.connect() as conn:
        row = conn.execute(statement).one_or_none()
    return None if row is None else UnitAddress(int(row[0]), row[1], row[2], int(row[3]))


def layer_neighbours(engine: Engine, unit_id: int) -> tuple[UnitAddress | None, UnitAddress | None]:
    """The previous and next unit of the unit's layer by index (None at either end)."""
    me = UNIT.alias("me")
    out: list[UnitAddress | None] = []
    for step in (-1, 1):
        statement = (
            select(UNIT.c.id, MODEL.c.name, LAYER.c.name, UNIT.c.unit_index)
            .select_from(me)
            .join(UNIT, UNIT.c.layer_id == me.c.layer_id)
            .join(LAYER, LAYER.c.id == UNIT.c.layer_id)
            .join(MODEL, MODEL.c.id == LAYER.c.model_id)
            .where(me.c.id == int(unit_id))
            .where(
                UNIT.c.unit_index < me.c.unit_index
                if step < 0
                else UNIT.c.unit_index > me.c.unit_index
            )
            .order_by(UNIT.c.unit_index.desc() if step < 0 else UNIT.c.unit_index.asc())
            .limit(1)
        )
        with engine.connect() as conn:
            row = conn.execute(statement).one_or_none()
        out.append(None if row is None else UnitAddress(int(row[0]), row[1], row[2], int(row[3])))
    return out[0], out[1]


def _related_columns() -> list[object]:
    t = UNIT_CATALOGUE
    return [
        t.c.model,
        t.c.layer,
        t.c.unit,
        t.c.unit_id,
        t.c.run_id,
        *(t.c[c] for c in RELATED_COLUMNS),
    ]


def units_same_class(
    engine: Engine,
    unit_id: int,
    run_id: int,
    class_column: str = "mi_class",
    *,
    limit: int = 20,
) -> pd.DataFrame:
    """Other units of the same scoring run whose `class_column` names the same class as the
    unit's, most selective first (by that class's measure, e.g. precision for
    precision_class). Empty when the unit has no such class."""
    if class_column not in CLASS_MEASURES:
        raise InputError(
            f"{class_column!r} is not a class column; use one of {', '.join(CLASS_MEASURES)}."
        )
    t = UNIT_CATALOGUE
    me = UNIT_CATALOGUE.alias("me")
    score = t.c[CLASS_SCORE.get(class_column, "max_informedness")]
    statement = (
        select(*_related_columns(), t.c[class_column].label("class_name"))
        .select_from(t)
        .join(
            me,
            and_(
                me.c.unit_id == int(unit_id),
                me.c.run_id == t.c.run_id,
                me.c[class_column] == t.c[class_column],
            ),
        )
        .where(t.c.run_id == int(run_id), t.c.unit_id != int(unit_id))
        .order_by(score.desc().nulls_last(), t.c.layer_position, t.c.unit)
        .limit(int(limit))
    )
    return read_frame(engine, statement)


def units_same_concept(engine: Engine, unit_id: int, *, limit: int = 20) -> pd.DataFrame:
    """Other units whose best dissection concept is the unit's, highest IoU first (one row
    per unit: the newest scoring run's measures beside it)."""
    t = UNIT_CATALOGUE
    mine = (
        select(t.c.best_concept)
        .where(t.c.unit_id == int(unit_id), t.c.best_concept.is_not(None))
        .limit(1)
        .scalar_subquery()
    )
    ranked = (
        select(
            *_related_columns(),
            t.c.best_concept.label("concept"),
            func.row_number()
            .over(partition_by=t.c.unit_id, order_by=t.c.run_id.desc().nulls_last())
            .label("pick"),
            t.c.layer_position,
        )
        .where(t.c.best_concept == mine, t.c.unit_id != int(unit_id))
        .subquery()
    )
    statement = (
        select(*(c for c in ranked.c if c.key not in ("pick", "layer_position")))
        .where(ranked.c.pick == 1)
        .order_by(ranked.c.best_iou.desc().nulls_last(), ranked.c.layer_position, ranked.c.unit)
        .limit(int(limit))
    )
    return read_frame(engine, statement)
