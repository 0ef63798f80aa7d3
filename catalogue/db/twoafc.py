"""Writes of the 2-AFC study: studies, trials, task assignments, responses.

Every function takes the `Connection` of the caller's transaction; the reads here are
the ones a write needs (the scoring run's units and exemplars a study is built from,
whether a study or a response exists, the task a participant was dealt).
`catalogue.twoafc` orchestrates; people's reads go through `catalogue.query.twoafc`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ARRAY,
    Connection,
    Integer,
    Row,
    Text,
    any_,
    cast,
    func,
    insert,
    literal,
    select,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert

from catalogue.db.schema import (
    Layer,
    Participant,
    Run,
    Unit,
    UnitBottomImage,
    UnitMetrics,
    UnitTopImage,
)
from catalogue.db.twoafc_schema import TwoAFCAssignment, TwoAFCResponse, TwoAFCStudy, TwoAFCTrial
from catalogue.twoafc.design import Exemplar, TrialPlan

_LOCK = "unitcat-2afc-study-"


@dataclass(frozen=True)
class ResponseRecord:
    """One `twoafc_response` row."""

    trial_id: int
    participant_id: int
    chose_max: bool
    confidence: int | None
    rt_ms: float | None
    source: str  # "ui" | "import"


# ---------------------------------------------------------------- building a study


def score_run(conn: Connection, run_id: int) -> Row[Any] | None:
    """(id, kind, status, model_id, dataset_id) of a run."""
    return conn.execute(
        select(Run.id, Run.kind, Run.status, Run.model_id, Run.dataset_id).where(Run.id == run_id)
    ).one_or_none()


def layer_units(conn: Connection, run_id: int, model_id: int) -> Sequence[Row[Any]]:
    """Every unit of the model with a score in the run: (unit_id, layer, unit, constant)."""
    return conn.execute(
        select(
            Unit.id.label("unit_id"),
            Layer.name.label("layer"),
            Unit.unit_index.label("unit"),
            UnitMetrics.constant,
        )
        .join(Layer, Layer.id == Unit.layer_id)
        .join(UnitMetrics, (UnitMetrics.unit_id == Unit.id) & (UnitMetrics.run_id == run_id))
        .where(Layer.model_id == model_id)
        .order_by(Layer.position, Unit.unit_index)
    ).all()


def exemplars(
    conn: Connection, run_id: int, unit_ids: Sequence[int], n: int
) -> dict[int, tuple[list[Exemplar], list[Exemplar]]]:
    """Per unit, its `n` most active images (most active first) and its `n` least active
    ones (least active first) in the scoring run."""
    out: dict[int, tuple[list[Exemplar], list[Exemplar]]] = {u: ([], []) for u in unit_ids}
    ids = cast(list(unit_ids), ARRAY(Integer))
    for end, table in ((0, UnitTopImage), (1, UnitBottomImage)):
        rows = conn.execute(
            select(table.unit_id, table.image_index, table.image_key, table.activation)
            .where(table.run_id == run_id, table.unit_id == any_(ids), table.rank <= n)
            .order_by(table.unit_id, table.rank)
        )
        for r in rows:
            out[r.unit_id][end].append(Exemplar(r.image_index, r.image_key, r.activation))
    return out


def find_study(conn: Connection, name: str) -> Row[Any] | None:
    """(id, name, score_run_id, params, n_tasks) of the study with this name."""
    return conn.execute(
        select(
            TwoAFCStudy.id,
            TwoAFCStudy.name,
            TwoAFCStudy.score_run_id,
            TwoAFCStudy.params,
            TwoAFCStudy.n_tasks,
        ).where(TwoAFCStudy.name == name)
    ).one_or_none()


def create_study(
    conn: Connection, name: str, score_run_id: int, params: Mapping[str, Any], n_tasks: int
) -> int:
    return conn.execute(
        insert(TwoAFCStudy)
        .values(name=name, score_run_id=score_run_id, params=dict(params), n_tasks=n_tasks)
        .returning(TwoAFCStudy.id)
    ).scalar_one()


def write_trials(conn: Connection, study_id: int, plans: Iterable[TrialPlan]) -> int:
    rows = []
    for p in plans:
        row: dict[str, Any] = {
            "study_id": study_id,
            "task": p.task,
            "position": p.position,
            "unit_id": p.unit_id,
            "catch": p.catch,
            "batch": p.batch,
            "max_query_first": p.max_query_first,
        }
        for end, query, refs in (
            ("max", p.max_query, p.max_references),
            ("min", p.min_query, p.min_references),
        ):
            row[f"{end}_query"] = query.image_index
            row[f"{end}_query_key"] = query.image_key
            row[f"{end}_query_activation"] = query.activation
            row[f"{end}_references"] = [e.image_index for e in refs]
            row[f"{end}_reference_keys"] = [e.image_key for e in refs]
            row[f"{end}_reference_activations"] = [e.activation for e in refs]
        rows.append(row)
    if rows:
        conn.execute(insert(TwoAFCTrial), rows)
    return len(rows)


# ---------------------------------------------------------------- participants and tasks


def lock_study(conn: Connection, study_id: int) -> None:
    """Hold the study's assignment lock until the transaction ends (tasks dealt in order)."""
    key = literal(f"{_LOCK}{int(study_id)}", Text)
    conn.execute(select(func.pg_advisory_xact_lock(func.hashtext(key))))


def ensure_participant(conn: Connection, code: str) -> int:
    upsert = pg_insert(Participant).values(code=code)
    conn.execute(upsert.on_conflict_do_nothing(index_elements=[Participant.code]))
    return conn.execute(select(Participant.id).where(Participant.code == code)).scalar_one()


def assigned_task(conn: Connection, study_id: int, participant_id: int) -> int | None:
    return conn.execute(
        select(TwoAFCAssignment.task).where(
            TwoAFCAssignment.study_id == study_id,
            TwoAFCAssignment.participant_id == participant_id,
        )
    ).scalar_one_or_none()


def count_assigned(conn: Connection, study_id: int) -> int:
    return conn.execute(
        select(func.count())
        .select_from(TwoAFCAssignment)
        .where(TwoAFCAssignment.study_id == study_id)
    ).scalar_one()


def assign(conn: Connection, study_id: int, participant_id: int, task: int) -> None:
    conn.execute(
        pg_insert(TwoAFCAssignment)
        .values(study_id=study_id, participant_id=participant_id, task=task)
        .on_conflict_do_nothing()
    )


# ---------------------------------------------------------------- responses


def insert_response(conn: Connection, record: ResponseRecord) -> int | None:
    """One response; its id, or None when the participant has answered the trial already."""
    return conn.execute(
        pg_insert(TwoAFCResponse)
        .values(
            trial_id=record.trial_id,
            participant_id=record.participant_id,
            chose_max=record.chose_max,
            confidence=record.confidence,
            rt_ms=record.rt_ms,
            source=record.source,
        )
        .on_conflict_do_nothing(
            index_elements=[TwoAFCResponse.trial_id, TwoAFCResponse.participant_id]
        )
        .returning(TwoAFCResponse.id)
    ).scalar_one_or_none()


def write_responses(conn: Connection, records: Sequence[ResponseRecord]) -> int:
    """Many responses (an import); one already there fails the transaction."""
    if records:
        conn.execute(
            insert(TwoAFCResponse),
            [
                {
                    "trial_id": r.trial_id,
                    "participant_id": r.participant_id,
                    "chose_max": r.chose_max,
                    "confidence": r.confidence,
                    "rt_ms": r.rt_ms,
                    "source": r.source,
                }
                for r in records
            ],
        )
    return len(records)


def answered_pairs(conn: Connection, study_id: int, codes: Sequence[str]) -> set[tuple[str, int]]:
    """(participant code, trial id) of every response in the study by these participants."""
    rows = conn.execute(
        select(Participant.code, TwoAFCResponse.trial_id)
        .join(Participant, Participant.id == TwoAFCResponse.participant_id)
        .join(TwoAFCTrial, TwoAFCTrial.id == TwoAFCResponse.trial_id)
        .where(
            TwoAFCTrial.study_id == study_id,
            Participant.code == any_(cast(list(codes), ARRAY(Text))),
        )
    )
    return {(r.code, r.trial_id) for r in rows}


def study_trial_places(conn: Connection, study_id: int) -> dict[tuple[int, int], Row[Any]]:
    """(task, position) → (id, unit_id, catch) of every trial of the study."""
    rows = conn.execute(
        select(
            TwoAFCTrial.task,
            TwoAFCTrial.position,
            TwoAFCTrial.id,
            TwoAFCTrial.unit_id,
            TwoAFCTrial.catch,
        ).where(TwoAFCTrial.study_id == study_id)
    )
    return {(r.task, r.position): r for r in rows}
