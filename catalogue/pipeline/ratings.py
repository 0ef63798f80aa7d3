"""Human ratings of AM panels in the catalogue: import, the rating study, analysis.

The pure parts (CSV validation, counterbalanced lists, per-unit summaries,
WordNet name matching) live in `catalogue.ratings` and `catalogue.wordnet`, the
reads (panels, answers, Table 1) in `catalogue.query.ratings`; this module writes
the `participant`, `rating` and `unit_rating_analysis` tables around them.

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

from sqlalchemy import Connection, Engine, text

from catalogue.db.bulk import copy_rows
from catalogue.errors import InputError, NotFound
from catalogue.query.ratings import (
    StudyPanel,
    answered_units,
    newest_panel_ids,
    rated_unit_classes,
    rating_answers,
    unit_ids_of,
)
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
        unit_ids = unit_ids_of(conn, keys)
        problems = [
            f"line {r.line}: no unit {r.model} {r.layer} {r.unit} in the catalogue"
            for r in rows
            if r.unit_key not in unit_ids
        ]
        if problems:
            _fail(problems, label)
        existing = {
            (row.code, row.unit_id)
            for row in conn.execute(
                text(
                    "SELECT p.code, r.unit_id FROM rating r JOIN participant p ON p.id = r.participant_id "
                    "WHERE p.code = ANY(:codes)"
                ),
                {"codes": sorted({r.participant for r in rows})},
            )
        }
        problems = [
            f"line {r.line}: participant {r.participant!r} already rated {r.model} {r.layer} unit {r.unit}"
            for r in rows
            if (r.participant, unit_ids[r.unit_key]) in existing
        ]
        if problems:
            _fail(problems, label)
        participant_ids = _ensure_participants(conn, sorted({r.participant for r in rows}))
        panels = newest_panel_ids(conn, sorted(set(unit_ids.values())))
        copy_rows(
            conn,
            "rating",
            ("participant_id", "unit_id", "panel_id", "answer", "estimate", "names", "source"),
            (
                (
                    participant_ids[r.participant],
                    unit_ids[r.unit_key],
                    panels.get(unit_ids[r.unit_key]),
                    r.answer,
                    r.estimate,
                    list(r.names),
                    "import",
                )
                for r in rows
            ),
        )
    return ImportSummary(
        n_ratings=len(rows), n_participants=len(participant_ids), n_units=len(keys)
    )


def _ensure_participants(conn: Connection, codes: Sequence[str]) -> dict[str, int]:
    conn.execute(
        text(
            "INSERT INTO participant (code) SELECT unnest(CAST(:codes AS text[])) "
            "ON CONFLICT (code) DO NOTHING"
        ),
        {"codes": list(codes)},
    )
    rows = conn.execute(
        text("SELECT code, id FROM participant WHERE code = ANY(:codes)"), {"codes": list(codes)}
    ).all()
    return {r.code: r.id for r in rows}


# ---------------------------------------------------------------- analysis


def analyse_ratings(engine: Engine, *, matcher: NameMatcher | None = None) -> int:
    """Recompute `unit_rating_analysis` for every rated unit; return the number of units.

    Class names to compare with people's names come from each unit's newest
    scoring run: the class of its most active image and its CCMAS class.
    """
    ratings = rating_answers(engine)
    classes = rated_unit_classes(engine)
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
        conn.execute(text("DELETE FROM unit_rating_analysis"))
        copy_rows(
            conn,
            "unit_rating_analysis",
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
                    unit_id_of[(s.model, s.layer, s.unit)],
                    by_unit[unit_id_of[(s.model, s.layer, s.unit)]].run_id
                    if unit_id_of[(s.model, s.layer, s.unit)] in by_unit
                    else None,
                    s.n_named,
                    s.most_common_name,
                    s.human_agreement,
                    s.match_most_active,
                    s.match_ccmas,
                    s.mean_estimate,
                    matcher.uses_wordnet,
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
        raise NotFound("there are no AM panels to rate yet; run `unitcat ingest am` first.")
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
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('unitcat-enrol'))"))
        row = conn.execute(
            text("SELECT id, code, list_index FROM participant WHERE code = :c"), {"c": code}
        ).one_or_none()
        if row is None or row.list_index is None:  # new, or known only from an import
            arrival = conn.execute(
                text("SELECT count(*) FROM participant WHERE list_index IS NOT NULL")
            ).scalar_one()
            row = conn.execute(
                text(
                    "INSERT INTO participant (code, list_index) VALUES (:c, :l) "
                    "ON CONFLICT (code) DO UPDATE SET list_index = EXCLUDED.list_index "
                    "RETURNING id, code, list_index"
                ),
                {"c": code, "l": list_for_participant(arrival, n_lists)},
            ).one()
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
        inserted = conn.execute(
            text(
                "INSERT INTO rating (participant_id, unit_id, panel_id, answer, estimate, names, source) "
                "VALUES (:p, :u, :panel, :a, :e, :n, 'ui') "
                "ON CONFLICT (participant_id, unit_id) DO NOTHING RETURNING id"
            ),
            {
                "p": participant.id,
                "u": panel.unit_id,
                "panel": panel.panel_id,
                "a": answer,
                "e": estimate,
                "n": clean,
            },
        ).scalar_one_or_none()
    if inserted is None:
        raise InputError(f"participant {participant.code!r} has already rated this panel.")
