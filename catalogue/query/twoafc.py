"""Reads of the 2-AFC study: studies, their trials, a participant's answers, a unit's
trials and answers, and the per-unit accuracy with its Wilson interval (the views of
`catalogue.db.twoafc_views`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import Boolean, Double, Engine, Integer, Text, column, func, select, table
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.sql import TableClause

from catalogue.db.twoafc_schema import TwoAFCResponse, TwoAFCStudy, TwoAFCTrial
from catalogue.errors import NotFound
from catalogue.measures import NOT_CONSTANT, TWOAFC_PREDICTORS
from catalogue.query.frame import read_frame
from catalogue.query.layers import measure_correlations, pooled_correlations
from catalogue.query.views import LAYER, MODEL, PARTICIPANT, UNIT, UNIT_CATALOGUE, UNIT_IMPORTANCE
from catalogue.twoafc.design import Exemplar

STUDY = TwoAFCStudy.__table__
TRIAL = TwoAFCTrial.__table__
RESPONSE = TwoAFCResponse.__table__


def _columns(*spec: tuple[str, Any]) -> list[Any]:
    return [column(name, type_) for name, type_ in spec]


NO_STUDY = (
    "there is no 2-AFC study yet: build one with `unitcat ingest study 2afc SCORE_RUN --units "
    "LAYER:UNITS` (`unitcat runs` lists the scoring runs)."
)

#: `twoafc_participant_check`: per study and participant, catch-trial answers and whether they pass.
PARTICIPANT_CHECK: TableClause = table(
    "twoafc_participant_check",
    *_columns(
        ("study_id", Integer),
        ("study", Text),
        ("participant_id", Integer),
        ("participant", Text),
        ("task", Integer),
        ("n_main", Integer),
        ("n_main_correct", Integer),
        ("n_catch", Integer),
        ("n_catch_correct", Integer),
        ("catch_share", Double),
        ("passed", Boolean),
    ),
)

_ACCURACY_COLUMNS = (
    ("unit_id", Integer),
    ("n_responses", Integer),
    ("n_correct", Integer),
    ("accuracy", Double),
    ("ci_low", Double),
    ("ci_high", Double),
    ("n_participants", Integer),
    ("n_excluded", Integer),
)
#: `twoafc_unit_accuracy`: per unit, the counted answers, the share correct and its interval.
UNIT_ACCURACY: TableClause = table("twoafc_unit_accuracy", *_columns(*_ACCURACY_COLUMNS))
#: `twoafc_unit_summary`: the same with the unit's model, layer and index.
UNIT_SUMMARY: TableClause = table(
    "twoafc_unit_summary",
    *_columns(
        ("model", Text),
        ("layer", Text),
        ("layer_position", Integer),
        ("unit", Integer),
        *_ACCURACY_COLUMNS[1:],
        ("unit_id", Integer),
    ),
)
VIEWS: tuple[TableClause, ...] = (PARTICIPANT_CHECK, UNIT_ACCURACY, UNIT_SUMMARY)


@dataclass(frozen=True)
class Study:
    id: int
    name: str
    score_run_id: int | None
    n_tasks: int
    params: dict[str, Any]
    created_at: datetime | None = None


@dataclass(frozen=True)
class Trial:
    """A trial as participants see it: references in the order shown, queries by role."""

    id: int
    study_id: int
    task: int
    position: int
    unit_id: int
    model: str
    layer: str
    unit: int
    catch: bool
    batch: int
    max_query_first: bool
    max_query: Exemplar
    min_query: Exemplar
    max_references: tuple[Exemplar, ...]
    min_references: tuple[Exemplar, ...]
    study: str = ""
    score_run_id: int | None = None  # whose images (`catalogue.query.files.attach_images`)


def _study(row: Any) -> Study:
    return Study(
        row.id, row.name, row.score_run_id, row.n_tasks, dict(row.params or {}), row.created_at
    )


def find_study(engine: Engine, name: str | None = None) -> Study:
    """The study with this name, or the newest one; NotFound names the fix."""
    s = STUDY
    statement = select(s.c.id, s.c.name, s.c.score_run_id, s.c.n_tasks, s.c.params, s.c.created_at)
    if name is not None:
        statement = statement.where(s.c.name == name)
    with engine.connect() as conn:
        row = conn.execute(statement.order_by(s.c.id.desc()).limit(1)).one_or_none()
        if row is None and name is not None:
            known = conn.execute(select(s.c.name).order_by(s.c.id)).scalars().all()
            hint = f"the studies are {', '.join(known)}" if known else NO_STUDY
            raise NotFound(f"no 2-AFC study named {name!r}; {hint}")
    if row is None:
        raise NotFound(NO_STUDY)
    return _study(row)


def studies(engine: Engine) -> pd.DataFrame:
    """One row per study: its run, tasks, trials (catch trials), units, participants, answers."""
    t, r = TRIAL, RESPONSE
    trials = (
        select(
            t.c.study_id,
            func.count().label("n_trials"),
            func.count().filter(t.c.catch).label("n_catch"),
            func.count(t.c.unit_id.distinct()).label("n_units"),
        )
        .group_by(t.c.study_id)
        .subquery()
    )
    answers = (
        select(
            t.c.study_id,
            func.count().label("n_responses"),
            func.count(r.c.participant_id.distinct()).label("n_participants"),
        )
        .join(t, t.c.id == r.c.trial_id)
        .group_by(t.c.study_id)
        .subquery()
    )
    s = STUDY
    statement = (
        select(
            s.c.name.label("study"),
            s.c.score_run_id,
            s.c.n_tasks,
            trials.c.n_trials,
            trials.c.n_catch,
            trials.c.n_units,
            func.coalesce(answers.c.n_participants, 0).label("n_participants"),
            func.coalesce(answers.c.n_responses, 0).label("n_responses"),
            s.c.created_at,
        )
        .outerjoin(trials, trials.c.study_id == s.c.id)
        .outerjoin(answers, answers.c.study_id == s.c.id)
        .order_by(s.c.id)
    )
    return read_frame(engine, statement)


def _exemplars(
    indices: Sequence[int], keys: Sequence[str | None], acts: Sequence[float]
) -> tuple[Exemplar, ...]:
    return tuple(Exemplar(int(i), k, float(a)) for i, k, a in zip(indices, keys, acts, strict=True))


def _trials(engine: Engine, *where: Any) -> list[Trial]:
    t = TRIAL
    statement = (
        select(
            t,
            MODEL.c.name.label("model"),
            LAYER.c.name.label("layer"),
            UNIT.c.unit_index,
            STUDY.c.name.label("study"),
            STUDY.c.score_run_id,
        )
        .join(STUDY, STUDY.c.id == t.c.study_id)
        .join(UNIT, UNIT.c.id == t.c.unit_id)
        .join(LAYER, LAYER.c.id == UNIT.c.layer_id)
        .join(MODEL, MODEL.c.id == LAYER.c.model_id)
        .where(*where)
        .order_by(t.c.study_id, t.c.task, t.c.position)
    )
    with engine.connect() as conn:
        rows = conn.execute(statement).all()
    return [
        Trial(
            id=r.id,
            study_id=r.study_id,
            task=r.task,
            position=r.position,
            unit_id=r.unit_id,
            model=r.model,
            layer=r.layer,
            unit=r.unit_index,
            catch=r.catch,
            batch=r.batch,
            max_query_first=r.max_query_first,
            max_query=Exemplar(r.max_query, r.max_query_key, r.max_query_activation),
            min_query=Exemplar(r.min_query, r.min_query_key, r.min_query_activation),
            max_references=_exemplars(
                r.max_references, r.max_reference_keys, r.max_reference_activations
            ),
            min_references=_exemplars(
                r.min_references, r.min_reference_keys, r.min_reference_activations
            ),
            study=r.study,
            score_run_id=r.score_run_id,
        )
        for r in rows
    ]


def study_trials(engine: Engine, study_id: int, task: int | None = None) -> list[Trial]:
    """The study's trials (of one task) in task and position order."""
    where = [TRIAL.c.study_id == study_id]
    if task is not None:
        where.append(TRIAL.c.task == task)
    return _trials(engine, *where)


def unit_trials(engine: Engine, unit_id: int) -> list[Trial]:
    """Every trial of a unit, in every study."""
    return _trials(engine, TRIAL.c.unit_id == unit_id)


def answered(engine: Engine, study_id: int, participant_id: int) -> dict[int, bool]:
    """trial id → whether the participant chose the strongly activating query."""
    t, r = TRIAL, RESPONSE
    statement = (
        select(r.c.trial_id, r.c.chose_max)
        .join(t, t.c.id == r.c.trial_id)
        .where(t.c.study_id == study_id, r.c.participant_id == participant_id)
    )
    with engine.connect() as conn:
        return {row.trial_id: row.chose_max for row in conn.execute(statement)}


def participant_checks(engine: Engine, study_id: int | None = None) -> pd.DataFrame:
    c = PARTICIPANT_CHECK
    statement = select(c)
    if study_id is not None:
        statement = statement.where(c.c.study_id == study_id)
    return read_frame(engine, statement.order_by(c.c.study_id, c.c.participant))


def unit_answers(engine: Engine, unit_id: int) -> pd.DataFrame:
    """Every answer to a unit's trials: study, task, position, catch trial, participant,
    correct (chose the strongly activating query), confidence, response time, source, and
    whether it counts (a main trial by a participant who passes the catch trials)."""
    t, r, c = TRIAL, RESPONSE, PARTICIPANT_CHECK
    statement = (
        select(
            STUDY.c.name.label("study"),
            t.c.id.label("trial_id"),
            t.c.task,
            t.c.position,
            t.c.catch,
            PARTICIPANT.c.code.label("participant"),
            r.c.chose_max.label("correct"),
            r.c.confidence,
            r.c.rt_ms,
            r.c.source,
            func.coalesce(c.c.passed, False).label("passed_catch_trials"),
            (~t.c.catch & func.coalesce(c.c.passed, False)).label("counted"),
        )
        .select_from(r)
        .join(t, t.c.id == r.c.trial_id)
        .join(STUDY, STUDY.c.id == t.c.study_id)
        .join(PARTICIPANT, PARTICIPANT.c.id == r.c.participant_id)
        .outerjoin(c, (c.c.study_id == t.c.study_id) & (c.c.participant_id == r.c.participant_id))
        .where(t.c.unit_id == unit_id)
        .order_by(STUDY.c.id, t.c.task, t.c.position, PARTICIPANT.c.code)
    )
    return read_frame(engine, statement)


def unit_accuracy(engine: Engine, unit_id: int) -> dict[str, Any] | None:
    """The unit's `twoafc_unit_accuracy` row (None: no counted or excluded answer yet)."""
    with engine.connect() as conn:
        row = conn.execute(
            select(UNIT_ACCURACY).where(UNIT_ACCURACY.c.unit_id == unit_id)
        ).one_or_none()
    return None if row is None else dict(row._mapping)


def unit_summaries(engine: Engine, study_id: int | None = None) -> pd.DataFrame:
    """`twoafc_unit_summary` rows (of the units of one study), in layer and unit order."""
    s = UNIT_SUMMARY
    statement = select(s)
    if study_id is not None:
        units = select(TRIAL.c.unit_id).where(TRIAL.c.study_id == study_id)
        statement = statement.where(s.c.unit_id.in_(units))
    return read_frame(engine, statement.order_by(s.c.model, s.c.layer_position, s.c.unit))


def answers_for_export(engine: Engine, study_id: int) -> list[dict[str, Any]]:
    """Every answer of the study as IMI's response rows (`catalogue.twoafc.imi`)."""
    t, r = TRIAL, RESPONSE
    statement = (
        select(
            PARTICIPANT.c.code,
            t.c.task,
            t.c.position,
            t.c.catch,
            r.c.chose_max,
            r.c.confidence,
            r.c.rt_ms,
            MODEL.c.name.label("model"),
            LAYER.c.name.label("layer"),
            UNIT.c.unit_index,
        )
        .select_from(r)
        .join(t, t.c.id == r.c.trial_id)
        .join(PARTICIPANT, PARTICIPANT.c.id == r.c.participant_id)
        .join(UNIT, UNIT.c.id == t.c.unit_id)
        .join(LAYER, LAYER.c.id == UNIT.c.layer_id)
        .join(MODEL, MODEL.c.id == LAYER.c.model_id)
        .where(t.c.study_id == study_id)
        .order_by(PARTICIPANT.c.code, t.c.task, t.c.position)
    )
    with engine.connect() as conn:
        rows = conn.execute(statement).all()
    return [
        {
            "participant_id": row.code,
            "task_number": row.task,
            "corrected_trial_index": row.position - 1,
            "choice": "b" if row.chose_max else "a",
            "correct": row.chose_max,
            "confidence": row.confidence,
            "rt": row.rt_ms,
            "catch_trial": row.catch,
            "is_demo": False,
            "model": row.model,
            "layer": row.layer,
            "channel": row.unit_index,
        }
        for row in rows
    ]


ACCURACY = "human_2afc_accuracy"


def predictor_values(
    engine: Engine, run_id: int, *, include_constant: bool = False
) -> pd.DataFrame:
    """Per unit of a scoring run with a 2-AFC accuracy: the accuracy, its number of answers
    and every `TWOAFC_PREDICTORS` value (the ablation drop from the newest ablation run
    that names the scoring run)."""
    uc, ui = UNIT_CATALOGUE, UNIT_IMPORTANCE
    drop = (
        select(ui.c.unit_id, (-ui.c.accuracy_change).label("ablation_drop"))
        .ext(distinct_on(ui.c.unit_id))
        .where(ui.c.score_run_id == int(run_id))
        .order_by(ui.c.unit_id, ui.c.run_id.desc())
        .subquery()
    )
    statement = (
        select(
            uc.c.unit_id, uc.c.layer, uc.c.layer_position, uc.c.unit, uc.c.human_2afc_accuracy,
            uc.c.human_2afc_n,
            *(uc.c[m] for m in TWOAFC_PREDICTORS if m != "ablation_drop"),
            drop.c.ablation_drop,
        )
        .outerjoin(drop, drop.c.unit_id == uc.c.unit_id)
        .where(uc.c.run_id == int(run_id), uc.c.human_2afc_n > 0)
        .order_by(uc.c.layer_position, uc.c.unit)
    )  # fmt: skip
    if not include_constant:
        statement = statement.where(NOT_CONSTANT.core(uc.c))
    return read_frame(engine, statement)


def predictor_correlations(
    engine: Engine, run_id: int, layer: str | None = None, *, include_constant: bool = False
) -> pd.DataFrame:
    """How each of `TWOAFC_PREDICTORS` correlates with human 2-AFC accuracy over units:
    predictor, n (units with both values), Spearman, Pearson. One layer from the
    `measure_correlations` view; all layers pooled (pairwise-complete) otherwise."""
    columns = ["predictor", "n", "spearman", "pearson"]
    if layer is None:
        values = predictor_values(engine, run_id, include_constant=include_constant)
        pairs = pooled_correlations(values, (ACCURACY, *TWOAFC_PREDICTORS))
    else:
        pairs = measure_correlations(engine, run_id, layer, include_constant=include_constant)
    rows = []
    for predictor in TWOAFC_PREDICTORS:
        a, b = sorted((ACCURACY, predictor))
        match = pairs[(pairs["measure_a"] == a) & (pairs["measure_b"] == b)]
        if not match.empty:
            r = match.iloc[0]
            rows.append([predictor, int(r["n"]), r["spearman"], r["pearson"]])
    return pd.DataFrame(rows, columns=columns)
