"""Writers for ablation and baseline results, and the lookups their pipelines need.

Every writer takes the `Connection` of a run's final transaction
(`RunHandle.complete`), so a run's rows appear together or not at all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sqlalchemy import ARRAY, Connection, Integer, Row, any_, cast, select, update

from catalogue.db.bulk import copy_columns, copy_rows
from catalogue.db.results import _class_column, reason_columns
from catalogue.db.schema import (
    ChanceMetrics,
    ClassAblationCurve,
    Run,
    UnitAblation,
    UnitAblationClass,
    UnitMetrics,
)
from catalogue.errors import InputError
from catalogue.measures import SELECTIVE_CLASSES, UNIT_MEASURES


def write_unit_ablation(
    conn: Connection,
    run_id: int,
    unit_ids: np.ndarray,
    *,
    replacement: np.ndarray,
    n_images: int,
    accuracy: np.ndarray,
    accuracy_change: np.ndarray,
    selective: Mapping[str, np.ndarray],
    selective_change: Mapping[str, np.ndarray],
    score_run_id: int | None,
) -> int:
    """One `unit_ablation` row per unit. ``selective`` holds each unit's class by each of
    `SELECTIVE_CLASSES` (-1: none) and ``selective_change`` the accuracy change of that class."""
    columns: dict[str, Any] = {
        "run_id": run_id,
        "unit_id": np.asarray(unit_ids),
        "score_run_id": score_run_id,
        "replacement": np.asarray(replacement, dtype=np.float64),
        "n_images": n_images,
        "accuracy": np.asarray(accuracy, dtype=np.float64),
        "accuracy_change": np.asarray(accuracy_change, dtype=np.float64),
    }
    for name in SELECTIVE_CLASSES:
        columns[name] = _class_column(selective[name])
        columns[f"{name}_change"] = np.asarray(selective_change[name], dtype=np.float64)
    return copy_columns(conn, UnitAblation.__tablename__, columns)


def write_hurt_classes(
    conn: Connection,
    run_id: int,
    unit_ids: np.ndarray,
    classes: np.ndarray,
    changes: np.ndarray,
) -> int:
    """`unit_ablation_class` rows from (U, n) class indices and changes, rank 1 = most hurt."""
    n_units, n = classes.shape
    if n == 0:
        return 0
    return copy_columns(
        conn,
        UnitAblationClass.__tablename__,
        {
            "run_id": run_id,
            "unit_id": np.repeat(np.asarray(unit_ids), n),
            "rank": np.tile(np.arange(1, n + 1), n_units),
            "class_index": classes.reshape(-1),
            "accuracy_change": changes.reshape(-1).astype(np.float64),
        },
    )


def write_curves(conn: Connection, run_id: int, layer_id: int, points: Sequence[Any]) -> int:
    """`class_ablation_curve` rows from `catalogue.ablation.CurvePoint`s of one layer."""
    columns = (
        "run_id",
        "layer_id",
        "class_index",
        "ranking",
        "k",
        "units",
        "class_accuracy",
        "other_accuracy",
    )
    rows = (
        (
            run_id,
            layer_id,
            p.class_index,
            p.ranking,
            p.k,
            [int(u) for u in p.units],
            p.class_accuracy,
            p.other_accuracy,
        )
        for p in points
    )
    return copy_rows(conn, ClassAblationCurve.__tablename__, columns, rows)


def write_chance_metrics(
    conn: Connection,
    run_id: int,
    unit_ids: np.ndarray,
    repeat: int,
    metrics: Mapping[str, np.ndarray],
    n_images: int,
) -> int:
    """`chance_metrics` rows of one repeat: every measure, as `write_unit_metrics` writes them."""
    n = len(unit_ids)
    columns: dict[str, object] = {
        "run_id": run_id,
        "unit_id": np.asarray(unit_ids),
        "repeat": repeat,
        "n_images": n_images,
    }
    for m in UNIT_MEASURES:
        values = np.asarray(metrics[m.name])
        if values.shape != (n,):
            raise InputError(f"measure {m.name} has shape {values.shape}, expected ({n},)")
        if m.kind == "class":
            columns[m.name] = _class_column(values)
        elif m.kind == "bool":
            columns[m.name] = values.astype(bool)
        else:
            columns[m.name] = values.astype(np.float64)
    columns.update(reason_columns(metrics, n))
    return copy_columns(conn, ChanceMetrics.__tablename__, columns)


def link_baseline(conn: Connection, run_id: int, baseline_of: int) -> None:
    """Mark run ``run_id`` as a baseline (random weights, chance) of run ``baseline_of``."""
    conn.execute(update(Run).where(Run.id == run_id).values(baseline_of=baseline_of))


def latest_done_run(
    conn: Connection,
    kind: str,
    *,
    parent_id: int | None = None,
    model_id: int | None = None,
    trained_only: bool = True,
) -> Row[Any] | None:
    """The newest finished run of a kind (of a parent, of a model); baselines left out."""
    query = select(Run.__table__).where(Run.kind == kind, Run.status == "done")
    if parent_id is not None:
        query = query.where(Run.parent_id == parent_id)
    if model_id is not None:
        query = query.where(Run.model_id == model_id)
    if trained_only:
        query = query.where(Run.baseline_of.is_(None))
    query = query.order_by(Run.finished_at.desc().nulls_last(), Run.id.desc()).limit(1)
    return conn.execute(query).one_or_none()


def selective_classes(
    conn: Connection, score_run_id: int, unit_ids: np.ndarray
) -> dict[str, np.ndarray]:
    """Each unit's class by each of `SELECTIVE_CLASSES` in a scoring run (-1 where none)."""
    ids = [int(u) for u in unit_ids]
    rows = conn.execute(
        select(UnitMetrics.unit_id, *(getattr(UnitMetrics, c) for c in SELECTIVE_CLASSES)).where(
            UnitMetrics.run_id == score_run_id,
            UnitMetrics.unit_id == any_(cast(ids, ARRAY(Integer))),
        )
    ).all()
    position = {u: i for i, u in enumerate(ids)}
    out = {c: np.full(len(ids), -1, dtype=np.int64) for c in SELECTIVE_CLASSES}
    for row in rows:
        for c in SELECTIVE_CLASSES:
            value = getattr(row, c)
            if value is not None:
                out[c][position[row.unit_id]] = int(value)
    return out
