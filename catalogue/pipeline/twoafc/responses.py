"""Responses collected elsewhere (IMI's format, `catalogue.twoafc.imi`) into a study:
all lines or none.

A file is refused, naming its first bad lines, when a line is malformed (no
participant, an answer that is neither choice a/b nor correct true/false, a confidence
outside 1–3, a negative response time), names a trial the study does not have, a unit
the catalogue does not have or not the unit the trial shows, marks a trial as a catch
trial (or not) against the study, answers a trial twice, or answers one the participant
answered before; and when a participant answered a trial but not a catch trial shown
before it in their task, since their answers could not be screened (IMI's exclusion
needs the catch trials: export them with the other rows). A participant who stopped
early is imported (until they pass a catch trial their answers do not count), and so
are participants who fail their catch trials: the views leave them out of the accuracy.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

from catalogue.db import twoafc as db
from catalogue.db.identities import unit_ids_by_key
from catalogue.errors import InputError
from catalogue.query.twoafc import Study, participant_checks, study_trials
from catalogue.twoafc.imi import ImiResponse, parse_responses

MAX_SHOWN = 5


@dataclass(frozen=True)
class ResponseImport:
    n_responses: int
    n_participants: int
    n_units: int
    failed_catch: list[str]  # participants who do not pass the catch trials


def _refuse(path: Path, problems: Sequence[str]) -> None:
    shown = "; ".join(problems[:MAX_SHOWN])
    more = f"; and {len(problems) - MAX_SHOWN} more" if len(problems) > MAX_SHOWN else ""
    raise InputError(f"{path}: {len(problems)} bad line(s), nothing imported: {shown}{more}.")


def _trial_problems(engine: Engine, study: Study, rows: Sequence[ImiResponse]) -> list[str]:
    trials = {(t.task, t.position): t for t in study_trials(engine, study.id)}
    named = sorted({r.unit for r in rows if r.unit is not None})
    with engine.connect() as conn:
        known = unit_ids_by_key(conn, named)
    problems = []
    seen: set[tuple[str, int, int]] = set()
    for r in rows:
        trial = trials.get((r.task, r.position))
        key = (r.participant, r.task, r.position)
        if r.unit is not None and r.unit not in known:
            problems.append(
                f"line {r.line}: no unit {r.unit[0]} {r.unit[1]} {r.unit[2]} in the catalogue"
            )
        elif trial is None:
            problems.append(
                f"line {r.line}: study {study.name!r} has no trial {r.position} in task {r.task}"
            )
        elif r.unit is not None and known[r.unit] != trial.unit_id:
            problems.append(
                f"line {r.line}: task {r.task} trial {r.position} shows {trial.model} "
                f"{trial.layer} unit {trial.unit}, not {' '.join(map(str, r.unit))}"
            )
        elif r.catch_trial is not None and r.catch_trial != trial.catch:
            what = "is" if trial.catch else "is not"
            problems.append(
                f"line {r.line}: catch_trial is {r.catch_trial} but task {r.task} trial "
                f"{r.position} {what} a catch trial"
            )
        elif key in seen:
            problems.append(
                f"line {r.line}: {r.participant!r} answers task {r.task} trial {r.position} twice"
            )
        seen.add(key)
    return problems


def _catch_problems(engine: Engine, study: Study, rows: Sequence[ImiResponse]) -> list[str]:
    """A participant who answered a trial but not a catch trial shown before it in the same
    task: their catch-trial rows were left out of the file, so they cannot be screened."""
    trials = study_trials(engine, study.id)
    catch_at: dict[int, list[int]] = defaultdict(list)
    for t in trials:
        if t.catch:
            catch_at[t.task].append(t.position)
    answered: dict[tuple[str, int], set[int]] = defaultdict(set)
    last: dict[tuple[str, int], ImiResponse] = {}
    for r in rows:
        key = (r.participant, r.task)
        answered[key].add(r.position)
        if key not in last or r.position > last[key].position:
            last[key] = r
    problems = []
    for key, row in last.items():
        skipped = [q for q in catch_at[row.task] if q < row.position and q not in answered[key]]
        if skipped:
            problems.append(
                f"line {row.line}: {row.participant!r} answered trial {row.position} of task "
                f"{row.task} but not its catch trial {skipped[0]} shown before it, so their "
                "answers cannot be screened (include the catch trials' rows)"
            )
    return problems


def import_responses(engine: Engine, study: Study, path: Path) -> ResponseImport:
    """Import an IMI response CSV into `study` in one transaction (all lines or none)."""
    rows, problems = parse_responses(path)
    if problems:
        _refuse(path, problems)
    if not rows:
        raise InputError(f"{path} has no response rows (demo rows aside); nothing imported.")
    problems = _trial_problems(engine, study, rows)
    if problems:
        _refuse(path, problems)
    problems = _catch_problems(engine, study, rows)
    if problems:
        _refuse(path, problems)
    places = {(t.task, t.position): t for t in study_trials(engine, study.id)}
    codes = sorted({r.participant for r in rows})
    with engine.begin() as conn:
        db.lock_study(conn, study.id)
        before = db.answered_pairs(conn, study.id, codes)
        again = [
            f"line {r.line}: {r.participant!r} answered task {r.task} trial {r.position} before"
            for r in rows
            if (r.participant, places[(r.task, r.position)].id) in before
        ]
        if again:
            _refuse(path, again)
        ids = {code: db.ensure_participant(conn, code) for code in codes}
        for code in codes:
            if db.assigned_task(conn, study.id, ids[code]) is None:
                db.assign(
                    conn, study.id, ids[code], min(r.task for r in rows if r.participant == code)
                )
        db.write_responses(
            conn,
            [
                db.ResponseRecord(
                    places[(r.task, r.position)].id,
                    ids[r.participant],
                    r.chose_max,
                    r.confidence,
                    r.rt_ms,
                    "import",
                )
                for r in rows
            ],
        )
    checks = participant_checks(engine, study.id)
    failed = sorted(set(checks.loc[~checks["passed"].astype(bool), "participant"]) & set(codes))
    units = {places[(r.task, r.position)].unit_id for r in rows}
    return ResponseImport(len(rows), len(codes), len(units), failed)
