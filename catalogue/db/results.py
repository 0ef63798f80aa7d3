"""Writers for result tables: arrays in, COPY out, inside a run's final transaction.

Each writer takes the `Connection` that `RunHandle.complete` passes to the run's
write callback, so a run's rows appear together or not at all. Beside them are
the lookups on result tables that a pipeline needs before it writes (the
scoring run an AM panel is compared with, whether panels exist already).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from psycopg.types.json import Jsonb
from sqlalchemy import ARRAY, Connection, Integer, any_, cast, func, select
from sqlalchemy.orm import aliased

from catalogue.db.bulk import copy_columns, copy_rows
from catalogue.db.schema import (
    AMPanel,
    Dissection,
    Layer,
    Model,
    Run,
    Unit,
    UnitBottomImage,
    UnitClassStats,
    UnitGroupMetrics,
    UnitMetrics,
    UnitTopImage,
)
from catalogue.errors import InputError
from catalogue.measures import UNIT_MEASURES


def _class_column(values: np.ndarray) -> np.ma.MaskedArray:
    """Class indexes (or ranks) with -1 (none, e.g. not localist) stored as NULL."""
    array = np.asarray(values)
    return np.ma.masked_array(array, mask=array < 0)


def write_unit_metrics(
    conn: Connection,
    run_id: int,
    unit_ids: np.ndarray,
    metrics: Mapping[str, np.ndarray],
    n_images: int,
) -> int:
    """One `unit_metrics` row per unit: every measure of docs/DESIGN.md, named as there."""
    missing = [m.name for m in UNIT_MEASURES if m.name not in metrics]
    if missing:
        raise InputError(f"scores are missing measures: {', '.join(missing)}")
    n = len(unit_ids)
    columns: dict[str, object] = {
        "run_id": run_id,
        "unit_id": np.asarray(unit_ids),
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
    return copy_columns(conn, UnitMetrics.__tablename__, columns)


def write_class_stats(
    conn: Connection, run_id: int, unit_ids: np.ndarray, stats: Mapping[str, np.ndarray]
) -> int:
    """`unit_class_stats` rows from `LayerScores.class_stats`: columns of equal length, where
    ``unit`` indexes `unit_ids` and a rank of -1 (not among the top classes) is NULL."""
    return copy_columns(
        conn,
        UnitClassStats.__tablename__,
        {
            "run_id": run_id,
            "unit_id": np.asarray(unit_ids)[stats["unit"]],
            "class_index": stats["class_index"],
            "mean_activation": stats["mean_activation"],
            "frac_nonzero": stats["frac_nonzero"],
            "informedness": stats["informedness"],
            "informedness_threshold": stats["informedness_threshold"],
            "rank_by_informedness": _class_column(stats["rank_by_informedness"]),
            "rank_by_mean": _class_column(stats["rank_by_mean"]),
        },
    )


def write_top_images(
    conn: Connection,
    run_id: int,
    unit_ids: np.ndarray,
    image_indices: np.ndarray,
    activations: np.ndarray,
    labels: np.ndarray,
    image_keys: Sequence[str] | None = None,
) -> int:
    """`unit_top_image` rows from U × k arrays of image indices (into the run's images, as
    `labels` and `image_keys` are) and activations, rank 1 = most active; an index of -1
    (a unit with fewer than k images) writes no row."""
    return _write_exemplars(
        conn,
        UnitTopImage.__tablename__,
        run_id,
        unit_ids,
        image_indices,
        activations,
        labels,
        image_keys,
    )


def write_bottom_images(
    conn: Connection,
    run_id: int,
    unit_ids: np.ndarray,
    image_indices: np.ndarray,
    activations: np.ndarray,
    labels: np.ndarray,
    image_keys: Sequence[str] | None = None,
) -> int:
    """`unit_bottom_image` rows, as `write_top_images` but rank 1 = least active."""
    return _write_exemplars(
        conn,
        UnitBottomImage.__tablename__,
        run_id,
        unit_ids,
        image_indices,
        activations,
        labels,
        image_keys,
    )


def _write_exemplars(
    conn: Connection,
    table: str,
    run_id: int,
    unit_ids: np.ndarray,
    image_indices: np.ndarray,
    activations: np.ndarray,
    labels: np.ndarray,
    image_keys: Sequence[str] | None,
) -> int:
    image_indices = np.asarray(image_indices)
    units, columns = np.nonzero(image_indices >= 0)
    if not len(units):
        return 0
    flat_idx = image_indices[units, columns]
    keys = (
        [None] * len(flat_idx) if image_keys is None else [image_keys[i] for i in flat_idx.tolist()]
    )
    return copy_columns(
        conn,
        table,
        {
            "run_id": run_id,
            "unit_id": np.asarray(unit_ids)[units],
            "rank": columns + 1,
            "image_index": flat_idx,
            "image_key": keys,
            "class_index": np.asarray(labels)[flat_idx],
            "activation": np.asarray(activations)[units, columns].astype(np.float64),
        },
    )


def write_group_metrics(
    conn: Connection,
    run_id: int,
    unit_ids: np.ndarray,
    group_id: int,
    metrics: Mapping[str, np.ndarray],
) -> int:
    """`unit_group_metrics` rows of one class group: one value per unit for each column of
    `catalogue.measures.GROUP_MEASURES`."""
    return copy_columns(
        conn,
        UnitGroupMetrics.__tablename__,
        {"run_id": run_id, "unit_id": unit_ids, "group_id": group_id, **metrics},
    )


def write_dissection(
    conn: Connection,
    run_id: int,
    unit_ids: np.ndarray,
    rows: Sequence[Mapping[str, Any]],
    concept_ids: Mapping[int, int],
) -> int:
    """`dissection` rows from `LayerDissection.rows()` (unit index, concept number, rank,
    IoU, threshold, detector flag), with concepts as registered by `register_concepts`."""
    if not rows:
        return 0
    return copy_columns(
        conn,
        Dissection.__tablename__,
        {
            "run_id": run_id,
            "unit_id": [int(unit_ids[r["unit"]]) for r in rows],
            "concept_id": [concept_ids[r["concept_number"]] for r in rows],
            "rank": [r["rank"] for r in rows],
            "iou": [r["iou"] for r in rows],
            "threshold": [r["threshold"] for r in rows],
            "is_detector": [r["detector"] for r in rows],
        },
    )


@dataclass(frozen=True)
class PanelRow:
    """One `am_panel` row: where a unit's panel file is (relative to the artifacts folder)
    and the unit's activation on each of its images."""

    unit_id: int
    method: str
    params: Mapping[str, Any]
    path: str
    activations: Sequence[float]
    dataset_max: float | None


def write_am_panels(conn: Connection, run_id: int, panels: Iterable[PanelRow]) -> int:
    return copy_rows(
        conn,
        AMPanel.__tablename__,
        ("run_id", "unit_id", "method", "params", "path", "activations", "dataset_max"),
        (
            (
                run_id,
                p.unit_id,
                p.method,
                Jsonb(dict(p.params)),
                p.path,
                list(p.activations),
                p.dataset_max,
            )
            for p in panels
        ),
    )


@dataclass(frozen=True)
class ScoreReference:
    """The newest finished scoring run that scored some of the units, the reduction its
    extraction used, and each unit's `max_activation` there."""

    run_id: int
    reduce: str | None
    max_activation: dict[int, float | None]  # by unit id


def score_reference(conn: Connection, unit_ids: Sequence[int]) -> ScoreReference | None:
    """The scoring run AM panels of these units are compared with; None if none scored them."""
    extraction = aliased(Run)
    scored = (
        select(UnitMetrics.run_id)
        .where(
            UnitMetrics.run_id == Run.id,
            UnitMetrics.unit_id == any_(cast(list(unit_ids), ARRAY(Integer))),
        )
        .exists()
    )
    row = conn.execute(
        select(Run.id, extraction.params["reduce"].astext.label("reduce"))
        .outerjoin(extraction, extraction.id == Run.parent_id)
        .where(Run.kind == "score", Run.status == "done", scored)
        .order_by(Run.finished_at.desc().nulls_last(), Run.id.desc())
        .limit(1)
    ).one_or_none()
    if row is None:
        return None
    maxima = conn.execute(
        select(UnitMetrics.unit_id, UnitMetrics.max_activation).where(
            UnitMetrics.run_id == row.id,
            UnitMetrics.unit_id == any_(cast(list(unit_ids), ARRAY(Integer))),
        )
    ).all()
    return ScoreReference(row.id, row.reduce, {m.unit_id: m.max_activation for m in maxima})


def have_panels(conn: Connection, model: str, layer: str, units: Sequence[int]) -> bool:
    """Whether every one of `units` of the model's `layer` already has an AM panel."""
    n = conn.execute(
        select(func.count(Unit.unit_index.distinct()))
        .select_from(AMPanel)
        .join(Unit, Unit.id == AMPanel.unit_id)
        .join(Layer, Layer.id == Unit.layer_id)
        .join(Model, Model.id == Layer.model_id)
        .where(
            Model.name == model,
            Layer.name == layer,
            Unit.unit_index == any_(cast(list(units), ARRAY(Integer))),
        )
    ).scalar_one()
    return n == len(units)
