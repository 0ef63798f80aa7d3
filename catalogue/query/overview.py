"""How much the catalogue holds: what every UI page checks before it draws anything."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, func, select

from catalogue.query.views import DISSECTION, MODEL, RATING, RUN, UNIT, UNIT_METRICS


@dataclass(frozen=True)
class Overview:
    """Counts of the catalogue's contents; `is_empty` when there is nothing to browse yet."""

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
