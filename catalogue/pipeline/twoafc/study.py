"""A 2-AFC study in the catalogue: built from a scoring run, run on the Rate page.

`build_study` reads the chosen units' exemplars (`unit_top_image`, `unit_bottom_image`)
of one scoring run, designs the trials (`catalogue.twoafc.design`) and writes the study
and its trials in one transaction. Building the same study again (same name, same
parameters) changes nothing; the same name with other parameters is refused.

`enrol` deals tasks to participants in order of arrival (round robin, under the study's
lock), as IMI deals its HITs; `next_trial` is the first trial of their task they have
not answered (so a reload, or the same code another day, resumes there), and
`record_response` stores one answer as it is given.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from catalogue.db import twoafc as db
from catalogue.errors import InputError, NotFound
from catalogue.query.twoafc import Study, Trial, answered, find_study, study_trials
from catalogue.twoafc.design import DesignOptions, UnitExemplars, design_trials, n_tasks

#: (layer, unit indices) — None: every scored unit of the layer that is not constant.
UnitChoice = tuple[str, Sequence[int] | None]


def parse_unit_choice(text: str) -> UnitChoice:
    """``fc6`` (every unit of the layer that is not constant) or ``fc6:0-9,12``."""
    from catalogue.pipeline.am import parse_units

    layer, sep, units = text.strip().rpartition(":") if ":" in text else (text.strip(), "", "")
    if not layer or (sep and not units.strip()):
        raise InputError(
            f"--units {text!r}: write a layer (fc6) or a layer and units (fc6:0-9,12)."
        )
    return layer, parse_units(units) if sep else None


@dataclass(frozen=True)
class BuiltStudy:
    study: Study
    n_trials: int
    n_catch: int
    n_units: int
    reused: bool
    left_out_constant: int = 0


def _run(engine: Engine, run_id: int) -> Any:
    with engine.connect() as conn:
        run = db.score_run(conn, run_id)
    if run is None:
        raise NotFound(f"no run {run_id}; `unitcat runs` lists the scoring runs.")
    if run.kind != "score":
        raise InputError(
            f"run {run_id} is a {run.kind} run; a 2-AFC study is built from a scoring run "
            "(`unitcat ingest score`), whose exemplars it shows."
        )
    if run.status != "done":
        raise InputError(f"scoring run {run_id} is {run.status}; build the study once it is done.")
    return run


def _chosen_units(engine: Engine, run: Any, choices: Sequence[UnitChoice]) -> tuple[list[Any], int]:
    """The run's units the choices name (in their order) and how many constant ones a
    whole-layer choice left out."""
    with engine.connect() as conn:
        scored = db.layer_units(conn, run.id, run.model_id)
    by_layer: dict[str, dict[int, Any]] = {}
    for row in scored:
        by_layer.setdefault(row.layer, {})[row.unit] = row
    chosen: list[Any] = []
    left_out = 0
    for layer, units in choices:
        if layer not in by_layer:
            raise NotFound(
                f"scoring run {run.id} scored no layer {layer!r}; it scored "
                f"{', '.join(by_layer) or 'nothing'}."
            )
        rows = by_layer[layer]
        if units is None:
            left_out += sum(bool(r.constant) for r in rows.values())
            chosen += [r for r in rows.values() if not r.constant]
            continue
        missing = [u for u in units if u not in rows]
        if missing:
            raise NotFound(
                f"scoring run {run.id} has no unit {', '.join(map(str, missing[:8]))} of layer "
                f"{layer} (it scored units 0–{max(rows)})."
            )
        chosen += [rows[u] for u in units]
    if not chosen:
        raise InputError("the chosen layers have no unit that is not constant; choose others.")
    return chosen, left_out


def _params(run_id: int, choices: Sequence[UnitChoice], options: DesignOptions) -> dict[str, Any]:
    return {
        "score_run": run_id,
        "units": [[layer, None if units is None else list(units)] for layer, units in choices],
        "references": options.n_references,
        "batches": options.batches,
        "task_size": options.task_size,
        "catch_trials": options.catch_trials,
        "seed": options.seed,
    }


def build_study(
    engine: Engine,
    score_run_id: int,
    choices: Sequence[UnitChoice],
    *,
    name: str,
    options: DesignOptions = DesignOptions(),
) -> BuiltStudy:
    """Build (or find, when built already with the same parameters) a study's trials."""
    name = name.strip()
    if not name:
        raise InputError("give the study a name (--name).")
    options.check()
    run = _run(engine, score_run_id)
    params = _params(run.id, choices, options)
    with engine.connect() as conn:
        existing = db.find_study(conn, name)
    if existing is not None:
        if existing.params != params:
            raise InputError(
                f"a 2-AFC study named {name!r} exists with other parameters "
                f"({existing.params}); give another --name."
            )
        return _built(engine, find_study(engine, name), reused=True)
    chosen, left_out = _chosen_units(engine, run, choices)
    ids = [r.unit_id for r in chosen]
    if len(set(ids)) != len(ids):
        raise InputError("--units names a unit twice; give each unit once.")
    with engine.connect() as conn:
        found = db.exemplars(conn, run.id, ids, options.per_end())
    units = [UnitExemplars(r.unit_id, f"{r.layer}:{r.unit}", *found[r.unit_id]) for r in chosen]
    plans = design_trials(units, options)
    with engine.begin() as conn:
        study_id = db.create_study(conn, name, run.id, params, n_tasks(plans))
        db.write_trials(conn, study_id, plans)
    return _built(engine, find_study(engine, name), reused=False, left_out=left_out)


def _built(engine: Engine, study: Study, *, reused: bool, left_out: int = 0) -> BuiltStudy:
    trials = study_trials(engine, study.id)
    return BuiltStudy(
        study=study,
        n_trials=len(trials),
        n_catch=sum(t.catch for t in trials),
        n_units=len({t.unit_id for t in trials if not t.catch}),
        reused=reused,
        left_out_constant=left_out,
    )


# ---------------------------------------------------------------- running it


@dataclass(frozen=True)
class Assignment:
    study: Study
    participant_id: int
    code: str
    task: int


def enrol(engine: Engine, study: Study, code: str) -> Assignment:
    """The participant with this code and their task, dealt on first visit."""
    code = code.strip()
    if not code:
        raise InputError("enter a participant code.")
    with engine.begin() as conn:
        db.lock_study(conn, study.id)
        participant_id = db.ensure_participant(conn, code)
        task = db.assigned_task(conn, study.id, participant_id)
        if task is None:
            task = db.count_assigned(conn, study.id) % study.n_tasks + 1
            db.assign(conn, study.id, participant_id, task)
    return Assignment(study, participant_id, code, task)


@dataclass(frozen=True)
class Progress:
    trials: list[Trial]  # the task's trials in order
    answered: dict[int, bool]  # trial id → chose the strongly activating query

    @property
    def next(self) -> Trial | None:
        return next((t for t in self.trials if t.id not in self.answered), None)

    @property
    def n_done(self) -> int:
        return sum(t.id in self.answered for t in self.trials)


def progress(engine: Engine, assignment: Assignment) -> Progress:
    trials = study_trials(engine, assignment.study.id, assignment.task)
    return Progress(trials, answered(engine, assignment.study.id, assignment.participant_id))


def record_response(
    engine: Engine,
    assignment: Assignment,
    trial: Trial,
    *,
    chose_max: bool,
    confidence: int | None = None,
    rt_ms: float | None = None,
) -> None:
    """Store one answer; a second answer to the same trial is refused."""
    if trial.study_id != assignment.study.id or trial.task != assignment.task:
        raise InputError("this trial is not in the participant's task.")
    if confidence is not None and confidence not in (1, 2, 3):
        raise InputError(f"confidence must be 1, 2 or 3; got {confidence!r}.")
    if rt_ms is not None and rt_ms < 0:
        raise InputError(f"a response time cannot be negative; got {rt_ms}.")
    with engine.begin() as conn:
        inserted = db.insert_response(
            conn,
            db.ResponseRecord(
                trial.id, assignment.participant_id, bool(chose_max), confidence, rt_ms, "ui"
            ),
        )
    if inserted is None:
        raise InputError(f"participant {assignment.code!r} has answered this trial already.")
