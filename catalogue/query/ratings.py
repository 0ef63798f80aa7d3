"""The read side of the human rating study: the panels to rate, who answered what, and
the paper's Table 1. (The reads the import and the name analysis make inside their
write transactions are `catalogue.db.ratings`.)

Table 1 of Gale et al. (sec. 3.2) gives, per layer: (a) the share of 'yes'
answers, (b) the share of units with at least `RATING_CONSENSUS_SHARE` 'yes', and
among those consensus units the overlap of people's names (c) with each other,
(d) with the class of the unit's most active image and (e) with its CCMAS class,
each with a standard error. The view `rating_layer_summary` computes it; this
module reads it in layer order.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from sqlalchemy import Engine, func, select
from sqlalchemy.dialects.postgresql import distinct_on

from catalogue.query.views import (
    AM_PANEL,
    LAYER,
    MODEL,
    RATING,
    RATING_LAYER_SUMMARY,
    UNIT,
)

# ---------------------------------------------------------------------------- Table 1


@dataclass(frozen=True)
class Table1Row:
    """One layer of Table 1 (shares in [0, 1]; None where undefined)."""

    model: str
    layer: str
    n_units: int
    n_ratings: int
    share_yes: float
    share_yes_se: float | None
    share_consensus: float | None  # None until some unit has RATING_MIN_RATERS ratings
    share_consensus_se: float | None
    human_agreement: float | None
    human_agreement_se: float | None
    match_most_active: float | None
    match_most_active_se: float | None
    match_ccmas: float | None
    match_ccmas_se: float | None


def table1(engine: Engine) -> list[Table1Row]:
    """Every rated layer's Table 1 row, by model and layer position."""
    s = RATING_LAYER_SUMMARY
    statement = select(*(s.c[f.name] for f in fields(Table1Row))).order_by(
        s.c.model, s.c.layer_position, s.c.layer
    )
    with engine.connect() as conn:
        rows = conn.execute(statement).mappings().all()
    out = []
    for row in rows:
        values = dict(row)
        if values["n_units"] < 2:  # a standard error needs two units
            values["share_consensus_se"] = None
        out.append(Table1Row(**values))
    return out


@dataclass(frozen=True)
class RatingCounts:
    """What the catalogue holds: answers, people who gave them, units rated."""

    n_ratings: int
    n_participants: int
    n_units: int


def rating_counts(engine: Engine) -> RatingCounts:
    statement = select(
        func.count(),
        func.count(func.distinct(RATING.c.participant_id)),
        func.count(func.distinct(RATING.c.unit_id)),
    ).select_from(RATING)
    with engine.connect() as conn:
        n, p, u = conn.execute(statement).one()
    return RatingCounts(n_ratings=int(n), n_participants=int(p), n_units=int(u))


# ------------------------------------------------------------------- the rating study


@dataclass(frozen=True)
class StudyPanel:
    """An AM panel as the study shows it."""

    panel_id: int
    unit_id: int
    model: str
    layer: str
    unit: int
    path: str


def study_panels(engine: Engine) -> list[StudyPanel]:
    """The newest AM panel of every unit, in model, layer and unit order."""
    p = AM_PANEL
    statement = (
        select(
            p.c.id,
            p.c.unit_id,
            MODEL.c.name.label("model"),
            LAYER.c.name.label("layer"),
            UNIT.c.unit_index.label("unit"),
            p.c.path,
            LAYER.c.position,
        )
        .join(UNIT, UNIT.c.id == p.c.unit_id)
        .join(LAYER, LAYER.c.id == UNIT.c.layer_id)
        .join(MODEL, MODEL.c.id == LAYER.c.model_id)
        .ext(distinct_on(p.c.unit_id))
        .order_by(p.c.unit_id, p.c.id.desc())
    )
    with engine.connect() as conn:
        rows = conn.execute(statement).all()
    rows = sorted(rows, key=lambda r: (r.model, r.position, r.unit))
    return [StudyPanel(r.id, r.unit_id, r.model, r.layer, r.unit, r.path) for r in rows]


def answered_units(engine: Engine, participant_id: int) -> set[int]:
    """The units a participant has rated."""
    statement = select(RATING.c.unit_id).where(RATING.c.participant_id == int(participant_id))
    with engine.connect() as conn:
        return set(conn.execute(statement).scalars())
