"""The read side of the human rating study: the panels to rate, who answered what, the
answers for the name analysis, and the paper's Table 1.

Table 1 of Gale et al. (sec. 3.2) gives, per layer: (a) the share of 'yes'
answers, (b) the share of units with at least `RATING_CONSENSUS_SHARE` 'yes', and
among those consensus units the overlap of people's names (c) with each other,
(d) with the class of the unit's most active image and (e) with its CCMAS class,
each with a standard error. The view `rating_layer_summary` computes it; this
module reads it in layer order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import Connection, Engine, Integer, Text, bindparam, func, select
from sqlalchemy.dialects.postgresql import ARRAY, distinct_on

from catalogue.query.views import (
    AM_PANEL,
    IMAGE_CLASS,
    LAYER,
    MODEL,
    PARTICIPANT,
    RATING,
    RATING_LAYER_SUMMARY,
    RUN,
    UNIT,
    UNIT_METRICS,
    UNIT_TOP_IMAGE,
)
from catalogue.ratings import UnitKey

# ------------------------------------------------------------------------------ units


def unit_ids_of(conn: Connection, keys: Sequence[UnitKey]) -> dict[UnitKey, int]:
    """The unit id of each (model, layer, unit) key that names a registered unit."""
    if not keys:
        return {}
    k = (
        func.unnest(
            bindparam("models", [key[0] for key in keys], type_=ARRAY(Text)),
            bindparam("layers", [key[1] for key in keys], type_=ARRAY(Text)),
            bindparam("units", [int(key[2]) for key in keys], type_=ARRAY(Integer)),
        )
        .table_valued("model", "layer", "unit")
        .render_derived(name="k")
    )
    statement = (
        select(
            MODEL.c.name.label("model"),
            LAYER.c.name.label("layer"),
            UNIT.c.unit_index.label("unit"),
            UNIT.c.id,
        )
        .select_from(UNIT)
        .join(LAYER, LAYER.c.id == UNIT.c.layer_id)
        .join(MODEL, MODEL.c.id == LAYER.c.model_id)
        .join(
            k,
            (k.c.model == MODEL.c.name)
            & (k.c.layer == LAYER.c.name)
            & (k.c.unit == UNIT.c.unit_index),
        )
    )
    return {(r.model, r.layer, r.unit): r.id for r in conn.execute(statement)}


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
    share_consensus: float
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


def newest_panel_ids(conn: Connection, unit_ids: Sequence[int]) -> dict[int, int]:
    """The id of each unit's newest AM panel (the panel an imported rating is about)."""
    statement = (
        select(AM_PANEL.c.unit_id, AM_PANEL.c.id)
        .where(AM_PANEL.c.unit_id.in_(list(unit_ids)))
        .ext(distinct_on(AM_PANEL.c.unit_id))
        .order_by(AM_PANEL.c.unit_id, AM_PANEL.c.id.desc())
    )
    return {r.unit_id: r.id for r in conn.execute(statement)}


def answered_units(engine: Engine, participant_id: int) -> set[int]:
    """The units a participant has rated."""
    statement = select(RATING.c.unit_id).where(RATING.c.participant_id == int(participant_id))
    with engine.connect() as conn:
        return set(conn.execute(statement).scalars())


# ------------------------------------------------------------------ for the analysis


def rating_answers(engine: Engine) -> list[Any]:
    """Every stored answer with its participant code and unit (model, layer, unit,
    unit_id), in layer, unit and answer order."""
    statement = (
        select(
            RATING.c.id,
            PARTICIPANT.c.code,
            MODEL.c.name.label("model"),
            LAYER.c.name.label("layer"),
            UNIT.c.unit_index.label("unit"),
            RATING.c.answer,
            RATING.c.estimate,
            RATING.c.names,
            UNIT.c.id.label("unit_id"),
        )
        .join(PARTICIPANT, PARTICIPANT.c.id == RATING.c.participant_id)
        .join(UNIT, UNIT.c.id == RATING.c.unit_id)
        .join(LAYER, LAYER.c.id == UNIT.c.layer_id)
        .join(MODEL, MODEL.c.id == LAYER.c.model_id)
        .order_by(LAYER.c.position, UNIT.c.unit_index, RATING.c.id)
    )
    with engine.connect() as conn:
        return list(conn.execute(statement).all())


def rated_unit_classes(engine: Engine) -> list[Any]:
    """Per rated unit, from its newest scoring run (`run_id`): the name of its CCMAS class
    (`ccmas_name`) and of its most active image's class (`top_name`), to compare with the
    names people gave."""
    um = UNIT_METRICS
    ccmas_class, top_class = IMAGE_CLASS.alias("cc"), IMAGE_CLASS.alias("tc")
    top = UNIT_TOP_IMAGE.alias("ti")
    statement = (
        select(
            um.c.unit_id,
            um.c.run_id,
            ccmas_class.c.name.label("ccmas_name"),
            top_class.c.name.label("top_name"),
        )
        .join(RUN, RUN.c.id == um.c.run_id)
        .outerjoin(
            ccmas_class,
            (ccmas_class.c.dataset_id == RUN.c.dataset_id)
            & (ccmas_class.c.class_index == um.c.ccmas_class),
        )
        .outerjoin(
            top,
            (top.c.run_id == um.c.run_id) & (top.c.unit_id == um.c.unit_id) & (top.c.rank == 1),
        )
        .outerjoin(
            top_class,
            (top_class.c.dataset_id == RUN.c.dataset_id)
            & (top_class.c.class_index == top.c.class_index),
        )
        .where(um.c.unit_id.in_(select(RATING.c.unit_id)))
        .ext(distinct_on(um.c.unit_id))
        .order_by(um.c.unit_id, um.c.run_id.desc())
    )
    with engine.connect() as conn:
        return list(conn.execute(statement).all())
