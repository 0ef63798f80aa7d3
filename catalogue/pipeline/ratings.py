"""Human ratings of AM panels in the catalogue: import, the rating study, analysis.

The pure parts (CSV validation, counterbalanced lists, per-unit summaries,
WordNet name matching) live in `catalogue.ratings` and `catalogue.wordnet`, the
study's reads (panels, answers, Table 1) in `catalogue.query.ratings`; this module
orchestrates the `participant`, `rating` and `unit_rating_analysis` writes of
`catalogue.db.ratings` around them.

Study design (the paper's appendix 5, adapted to a live study): the panels are
the newest AM panel of every unit; `n_practice` of them, chosen with the seed,
are practice trials (shown first, answers not stored, not rated later); the
rest are split into counterbalanced lists of about `list_size` panels that mix
layers in proportion. Participants get lists round-robin in order of arrival, so
every panel has at least 5 raters once 5 × (number of lists) people took part.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Engine

from catalogue.db.identities import unit_ids_by_key
from catalogue.db.ratings import (
    AnalysisRecord,
    RatingRecord,
    count_enrolled,
    ensure_participants,
    find_participant,
    insert_rating,
    latest_panel_ids,
    lock_enrolment,
    rated_pairs,
    rated_unit_classes,
    ratings_to_analyse,
    replace_rating_analysis,
    set_participant_list,
    write_ratings,
)
from catalogue.errors import InputError, NotFound
from catalogue.query.ratings import StudyPanel, answered_units
from catalogue.ratings import (
    ESTIMATE_BINS,
    MAX_NAMES,
    PanelRef,
    RatingRow,
    UnitClasses,
    UnitKey,
    assign_lists,
    list_for_participant,
    summarise_units,
)
from catalogue.wordnet import NameMatcher

MAX_ERRORS_SHOWN = 10


@dataclass(frozen=True)
class ImportSummary:
    n_ratings: int
    n_participants: int
    n_units: int


def _fail(problems: list[str], what: str) -> None:
    shown = "; ".join(problems[:MAX_ERRORS_SHOWN])
    more = (
        f"; and {len(problems) - MAX_ERRORS_SHOWN} more" if len(problems) > MAX_ERRORS_SHOWN else ""
    )
    raise InputError(f"{what}: {len(problems)} bad line(s), nothing imported: {shown}{more}.")


def import_ratings(
    engine: Engine, rows: Sequence[RatingRow], *, label: str = "ratings"
) -> ImportSummary:
    """Write validated rating rows in one transaction; any unknown unit or a rating
    already in the catalogue refuses the whole file, naming the lines."""
    keys = sorted({r.unit_key for r in rows})
    with engine.begin() as conn:
        unit_ids = unit_ids_by_key(conn, keys)
        problems = [
            f"line {r.line}: no unit {r.model} {r.layer} {r.unit} in the catalogue"
            for r in rows
            if r.unit_key not in unit_ids
        ]
        if problems:
            _fail(problems, label)
        existing = rated_pairs(conn, sorted({r.participant for r in rows}))
        problems = [
            f"line {r.line}: participant {r.participant!r} already rated {r.model} {r.layer} unit {r.unit}"
            for r in rows
            if (r.participant, unit_ids[r.unit_key]) in existing
        ]
        if problems:
            _fail(problems, label)
        participant_ids = ensure_participants(conn, sorted({r.participant for r in rows}))
        panels = latest_panel_ids(conn, sorted(set(unit_ids.values())))
        write_ratings(
            conn,
            (
                RatingRecord(
                    participant_id=participant_ids[r.participant],
                    unit_id=unit_ids[r.unit_key],
                    panel_id=panels.get(unit_ids[r.unit_key]),
                    answer=r.answer,
                    estimate=r.estimate,
                    names=list(r.names),
                    source="import",
                )
                for r in rows
            ),
        )
    return ImportSummary(
        n_ratings=len(rows), n_participants=len(participant_ids), n_units=len(keys)
    )


# ---------------------------------------------------------------- analysis


def analyse_ratings(engine: Engine, *, matcher: NameMatcher | None = None) -> int:
    """Recompute `unit_rating_analysis` for every rated unit; return the number of units.

    Class names to compare with people's names come from each unit's newest
    scoring run: the class of its most active image and its CCMAS class.
    """
    with engine.connect() as conn:
        ratings = ratings_to_analyse(conn)
        classes = rated_unit_classes(conn)
    unit_id_of: dict[UnitKey, int] = {}
    rows: list[RatingRow] = []
    for r in ratings:
        key = (r.model, r.layer, r.unit)
        unit_id_of[key] = r.unit_id
        rows.append(
            RatingRow(
                line=0,
                participant=r.code,
                model=r.model,
                layer=r.layer,
                unit=r.unit,
                answer=r.answer,
                estimate=r.estimate,
                names=tuple(r.names),
            )
        )
    by_unit = {c.unit_id: c for c in classes}
    class_names = {
        key: UnitClasses(most_active=by_unit[uid].top_name, ccmas=by_unit[uid].ccmas_name)
        for key, uid in unit_id_of.items()
        if uid in by_unit
    }
    matcher = matcher or NameMatcher()
    summaries = summarise_units(rows, class_names, matcher=matcher)
    with engine.begin() as conn:
        replace_rating_analysis(
            conn,
            (
                AnalysisRecord(
                    unit_id=unit_id_of[(s.model, s.layer, s.unit)],
                    score_run_id=by_unit[unit_id_of[(s.model, s.layer, s.unit)]].run_id
                    if unit_id_of[(s.model, s.layer, s.unit)] in by_unit
                    else None,
                    n_named=s.n_named,
                    top_name=s.most_common_name,
                    human_agreement=s.human_agreement,
                    match_most_active=s.match_most_active,
                    match_ccmas=s.match_ccmas,
                    mean_estimate=s.mean_estimate,
                    used_wordnet=matcher.uses_wordnet,
                )
                for s in summaries
            ),
        )
    return len(summaries)


# ---------------------------------------------------------------- the rating study


@dataclass(frozen=True)
class StudyDesign:
    panels: dict[int, StudyPanel]
    practice: list[int]
    lists: list[list[int]]


@dataclass(frozen=True)
class Participant:
    id: int
    code: str
    list_index: int


def design_study(
    panels: Sequence[StudyPanel], *, list_size: int = 52, n_practice: int = 3, seed: int = 0
) -> StudyDesign:
    if not panels:
        raise NotFound(
            "there are no AM panels to rate yet; make some first.",
            fix="make some",
            command="make some with `unitcat ingest am`",
        )
    ids = sorted(p.panel_id for p in panels)
    n_practice = min(n_practice, max(0, len(ids) - 1))
    practice = sorted(ids[i] for i in _seeded_choice(len(ids), n_practice, seed))
    rated = [p for p in panels if p.panel_id not in set(practice)]
    n_lists = max(1, math.ceil(len(rated) / list_size))
    lists = assign_lists(
        [PanelRef(p.panel_id, f"{p.model}/{p.layer}") for p in rated], n_lists, seed
    )
    return StudyDesign(panels={p.panel_id: p for p in panels}, practice=practice, lists=lists)


def _seeded_choice(n: int, k: int, seed: int) -> list[int]:
    import numpy as np

    return np.random.default_rng([seed, 7]).choice(n, size=k, replace=False).tolist()


def enrol(engine: Engine, code: str, n_lists: int) -> Participant:
    """The participant with this code, created on first visit with the next list in turn."""
    code = code.strip()
    if not code:
        raise InputError("enter a participant code.")
    with engine.begin() as conn:
        lock_enrolment(conn)
        row = find_participant(conn, code)
        if row is None or row.list_index is None:  # new, or known only from an import
            arrival = count_enrolled(conn)
            row = set_participant_list(conn, code, list_for_participant(arrival, n_lists))
    return Participant(row.id, row.code, row.list_index % n_lists)


def next_panel(engine: Engine, design: StudyDesign, participant: Participant) -> StudyPanel | None:
    """The first panel of the participant's list they have not answered (None: done)."""
    done = answered_units(engine, participant.id)
    for panel_id in design.lists[participant.list_index]:
        panel = design.panels[panel_id]
        if panel.unit_id not in done:
            return panel
    return None


def record_rating(
    engine: Engine,
    participant: Participant,
    panel: StudyPanel,
    *,
    answer: bool,
    estimate: str | None = None,
    names: Sequence[str] = (),
) -> None:
    """Store one answer; a second answer for the same panel is refused."""
    clean = [n.strip().lower() for n in names if n.strip()]
    if len(clean) > MAX_NAMES:
        raise InputError(f"give at most {MAX_NAMES} names.")
    if not answer and (estimate or clean):
        raise InputError("estimate and names are only asked after 'yes'.")
    if estimate is not None and estimate not in ESTIMATE_BINS:
        raise InputError(f"estimate must be one of {', '.join(ESTIMATE_BINS)}.")
    with engine.begin() as conn:
        inserted = insert_rating(
            conn,
            RatingRecord(
                participant_id=participant.id,
                unit_id=panel.unit_id,
                panel_id=panel.panel_id,
                answer=answer,
                estimate=estimate,
                names=clean,
                source="ui",
            ),
        )
    if inserted is None:
        raise InputError(f"participant {participant.code!r} has already rated this panel.")
