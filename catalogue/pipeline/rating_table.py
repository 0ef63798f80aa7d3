"""The paper's Table 1 read from the catalogue, for the CLI and reports.

Table 1 of Gale et al. (sec. 3.2) gives, per layer: (a) the share of 'yes'
answers, (b) the share of units with at least 80% 'yes', and among those
consensus units the overlap of people's names (c) with each other, (d) with
the class of the unit's most active image and (e) with its CCMAS class, each
with a standard error. The view `rating_layer_summary` computes it; this
module only reads it in layer order and formats shares the way the paper does.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, text


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


@dataclass(frozen=True)
class RatingCounts:
    """What the catalogue holds: answers, people who gave them, units rated."""

    n_ratings: int
    n_participants: int
    n_units: int


def table1(engine: Engine) -> list[Table1Row]:
    """Every rated layer's Table 1 row, by model and layer position."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT model, layer, n_units, n_ratings, share_yes, share_yes_se, share_consensus, "
                "share_consensus_se, human_agreement, human_agreement_se, match_most_active, "
                "match_most_active_se, match_ccmas, match_ccmas_se "
                "FROM rating_layer_summary ORDER BY model, layer_position, layer"
            )
        ).all()
    out = []
    for row in rows:
        values = dict(row._mapping)
        if values["n_units"] < 2:  # an SE needs two units (as `catalogue.ratings.summarise_layers`)
            values["share_consensus_se"] = None
        out.append(Table1Row(**values))
    return out


def rating_counts(engine: Engine) -> RatingCounts:
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT count(*) AS n, count(DISTINCT participant_id) AS p, "
                "count(DISTINCT unit_id) AS u FROM rating"
            )
        ).one()
    return RatingCounts(n_ratings=row.n, n_participants=row.p, n_units=row.u)


def share_text(value: float | None, se: float | None = None) -> str:
    """``21.7% (±1.1%)`` as in the paper; ``21.7%`` without an SE; ``–`` for no value."""
    if value is None:
        return "–"
    if se is None:
        return f"{value:.1%}"
    return f"{value:.1%} (±{se:.1%})"
