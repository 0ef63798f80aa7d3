"""Identity lookups the pipelines make before they write: names by id, a model's
registered checksum, which units already have AM panels.

Registration itself (and the records the writers need) is `catalogue.db.registry`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Engine, func, select

from catalogue.query.views import AM_PANEL, DATASET, LAYER, MODEL, UNIT


def model_name(conn: Connection, model_id: int) -> str:
    return conn.execute(select(MODEL.c.name).where(MODEL.c.id == int(model_id))).scalar_one()


def dataset_name(conn: Connection, dataset_id: int) -> str:
    statement = select(DATASET.c.name).where(DATASET.c.id == int(dataset_id))
    return conn.execute(statement).scalar_one()


def registered_model(conn: Connection, name: str) -> Any | None:
    """The model's row (id, name, checksum), or None when it is not registered."""
    statement = select(MODEL.c.id, MODEL.c.name, MODEL.c.checksum).where(MODEL.c.name == name)
    return conn.execute(statement).one_or_none()


def n_units_with_panels(engine: Engine, model: str, layer: str, units: Sequence[int]) -> int:
    """How many of `units` of `model`.`layer` have at least one AM panel."""
    statement = (
        select(func.count(func.distinct(UNIT.c.unit_index)))
        .select_from(AM_PANEL)
        .join(UNIT, UNIT.c.id == AM_PANEL.c.unit_id)
        .join(LAYER, LAYER.c.id == UNIT.c.layer_id)
        .join(MODEL, MODEL.c.id == LAYER.c.model_id)
        .where(MODEL.c.name == model, LAYER.c.name == layer, UNIT.c.unit_index.in_(list(units)))
    )
    with engine.connect() as conn:
        return int(conn.execute(statement).scalar_one())
