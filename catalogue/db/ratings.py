"""Writers for people's ratings: participants, ratings, and the stored name analysis.

The pure parts (CSV validation, counterbalanced lists, WordNet matching) live in
`catalogue.ratings`; `catalogue.pipeline.ratings` orchestrates. Every function
takes the `Connection` of the caller's transaction; the reads here are the ones
a write needs (who rated what already, the newest panel of a unit, the ratings
and class names the analysis is computed from).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ARRAY,
    Connection,
    Integer,
    Row,
    Text,
    and_,
    any_,
    cast,
    delete,
    func,
    literal,
    select,
)
from sqlalchemy.dialects.postgresql import distinct_on, insert
from sqlalchemy.orm import aliased

from catalogue.db.bulk import copy_rows
from catalogue.db.schema import (
    AMPanel,
    ImageClass,
    Layer,
    Model,
    Participant,
    Rating,
    Run,
    Unit,
    UnitMetrics,
    UnitRatingAnalysis,
    UnitTopImage,
)

#: the advisory lock that serialises enrolment, so that lists are dealt in order of arrival
_ENROL_LOCK = "unitcat-enrol"


@dataclass(frozen=True)
class RatingRecord:
    """One `rating` row."""

    participant_id: int
    unit_id: int
    panel_id: int | None
    answer: bool
    estimate: str | None
    names: Sequence[str]
    source: str  # "ui" | "import"


@dataclass(frozen=True)
class AnalysisRecord:
    """One `unit_rating_analysis` row (see `catalogue.ratings.summarise_units`)."""

    unit_id: int
    score_run_id: int | None
    n_named: int
    top_name: str | None
    human_agreement: float | None
    match_most_active: float | None
    match_ccmas: float | None
    mean_estimate: float | None
    used_wordnet: bool


# ---------------------------------------------------------------- participants


def ensure_participants(conn: Connection, codes: Sequence[str]) -> dict[str, int]:
    """Participant ids by code, creating the participants not known yet (without a list)."""
    conn.execute(
        insert(Participant)
        .from_select([Participant.code], select(func.unnest(cast(list(codes), ARRAY(Text)))))
        .on_conflict_do_nothing(index_elements=[Participant.code])
    )
    rows = conn.execute(
        select(Participant.code, Participant.id).where(
            Participant.code == any_(cast(list(codes), ARRAY(Text)))
        )
    ).all()
    return {r.code: r.id for r in rows}


def lock_enrolment(conn: Connection) -> None:
    """Hold the enrolment lock until the transaction ends."""
    conn.execute(select(func.pg_advisory_xact_lock(func.hashtext(literal(_ENROL_LOCK, Text)))))


def find_participant(conn: Connection, code: str) -> Row[Any] | None:
    """(id, code, list_index) of the participant with this code, if any."""
    return conn.execute(
        select(Participant.id, Participant.code, Participant.list_index).where(
            Participant.code == code
        )
    ).one_or_none()


def count_enrolled(conn: Connection) -> int:
    """Participants who were given a list (the study's order of arrival)."""
    return conn.execute(
        select(func.count()).select_from(Participant).where(Participant.list_index.is_not(None))
    ).scalar_one()


def set_participant_list(conn: Connection, code: str, list_index: int) -> Row[Any]:
    """Create the participant with this list, or give a known one (e.g. from an import) it;
    (id, code, list_index)."""
    upsert = insert(Participant).values(code=code, list_index=list_index)
    return conn.execute(
        upsert.on_conflict_do_update(
            index_elements=[Participant.code], set_={"list_index": upsert.excluded.list_index}
        ).returning(Participant.id, Participant.code, Participant.list_index)
    ).one()


# ---------------------------------------------------------------- ratings


def rated_pairs(conn: Connection, codes: Sequence[str]) -> set[tuple[str, int]]:
    """(participant code, unit id) of every rating by these participants."""
    rows = conn.execute(
        select(Participant.code, Rating.unit_id)
        .select_from(Rating)
        .join(Participant, Participant.id == Rating.participant_id)
        .where(Participant.code == any_(cast(list(codes), ARRAY(Text))))
    )
    return {(r.code, r.unit_id) for r in rows}


def latest_panel_ids(conn: Connection, unit_ids: Sequence[int]) -> dict[int, int]:
    """The newest AM panel id of each of these units that has one."""
    rows = conn.execute(
        select(AMPanel.unit_id, AMPanel.id)
        .ext(distinct_on(AMPanel.unit_id))
        .where(AMPanel.unit_id == any_(cast(list(unit_ids), ARRAY(Integer))))
        .order_by(AMPanel.unit_id, AMPanel.id.desc())
    ).all()
    return {r.unit_id: r.id for r in rows}


def write_ratings(conn: Connection, ratings: Iterable[RatingRecord]) -> int:
    """COPY many ratings (an import); a rating already there fails the transaction."""
    return copy_rows(
        conn,
        Rating.__tablename__,
        ("participant_id", "unit_id", "panel_id", "answer", "estimate", "names", "source"),
        (
            (
                r.participant_id,
                r.unit_id,
                r.panel_id,
                r.answer,
                r.estimate,
                list(r.names),
                r.source,
            )
            for r in ratings
        ),
    )


def insert_rating(conn: Connection, rating: RatingRecord) -> int | None:
    """One rating; its id, or None when the participant has rated the unit already."""
    return conn.execute(
        insert(Rating)
        .values(
            participant_id=rating.participant_id,
            unit_id=rating.unit_id,
            panel_id=rating.panel_id,
            answer=rating.answer,
            estimate=rating.estimate,
            names=list(rating.names),
            source=rating.source,
        )
        .on_conflict_do_nothing(index_elements=[Rating.participant_id, Rating.unit_id])
        .returning(Rating.id)
    ).scalar_one_or_none()


# ---------------------------------------------------------------- analysis


def ratings_to_analyse(conn: Connection) -> Sequence[Row[Any]]:
    """Every rating with its participant's code and its unit's name, in layer and unit order:
    (id, code, model, layer, unit, answer, estimate, names, unit_id)."""
    return conn.execute(
        select(
            Rating.id,
            Participant.code,
            Model.name.label("model"),
            Layer.name.label("layer"),
            Unit.unit_index.label("unit"),
            Rating.answer,
            Rating.estimate,
            Rating.names,
            Unit.id.label("unit_id"),
        )
        .select_from(Rating)
        .join(Participant, Participant.id == Rating.participant_id)
        .join(Unit, Unit.id == Rating.unit_id)
        .join(Layer, Layer.id == Unit.layer_id)
        .join(Model, Model.id == Layer.model_id)
        .order_by(Layer.position, Unit.unit_index, Rating.id)
    ).all()


def rated_unit_classes(conn: Connection) -> Sequence[Row[Any]]:
    """For every rated unit that was scored, from its newest scoring run: (unit_id, run_id,
    ccmas_name, top_name), the names of its CCMAS class and of its most active image's class."""
    ccmas_class = aliased(ImageClass)
    top_class = aliased(ImageClass)
    return conn.execute(
        select(
            UnitMetrics.unit_id,
            UnitMetrics.run_id,
            ccmas_class.name.label("ccmas_name"),
            top_class.name.label("top_name"),
        )
        .ext(distinct_on(UnitMetrics.unit_id))
        .select_from(UnitMetrics)
        .join(Run, Run.id == UnitMetrics.run_id)
        .outerjoin(
            ccmas_class,
            and_(
                ccmas_class.dataset_id == Run.dataset_id,
                ccmas_class.class_index == UnitMetrics.ccmas_class,
            ),
        )
        .outerjoin(
            UnitTopImage,
            and_(
                UnitTopImage.run_id == UnitMetrics.run_id,
                UnitTopImage.unit_id == UnitMetrics.unit_id,
                UnitTopImage.rank == 1,
            ),
        )
        .outerjoin(
            top_class,
            and_(
                top_class.dataset_id == Run.dataset_id,
                top_class.class_index == UnitTopImage.class_index,
            ),
        )
        .where(UnitMetrics.unit_id.in_(select(Rating.unit_id)))
        .order_by(UnitMetrics.unit_id, UnitMetrics.run_id.desc())
    ).all()


def replace_rating_analysis(conn: Connection, records: Iterable[AnalysisRecord]) -> int:
    """Replace all of `unit_rating_analysis` with these rows."""
    conn.execute(delete(UnitRatingAnalysis))
    return copy_rows(
        conn,
        UnitRatingAnalysis.__tablename__,
        (
            "unit_id",
            "score_run_id",
            "n_named",
            "top_name",
            "human_agreement",
            "match_most_active",
            "match_ccmas",
            "mean_estimate",
            "used_wordnet",
        ),
        (
            (
                r.unit_id,
                r.score_run_id,
                r.n_named,
                r.top_name,
                r.human_agreement,
                r.match_most_active,
                r.match_ccmas,
                r.mean_estimate,
                r.used_wordnet,
            )
            for r in records
        ),
    )
