"""Writers for result tables: arrays in, COPY out, inside a run's final transaction."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from sqlalchemy import Connection

from catalogue.db.bulk import copy_columns
from catalogue.errors import InputError
from catalogue.measures import UNIT_MEASURES


def _class_column(values: np.ndarray) -> list[int | None]:
    """Class indexes with -1 (no class, e.g. not localist) stored as NULL."""
    return [None if v < 0 else int(v) for v in np.asarray(values).tolist()]


def write_unit_metrics(
    conn: Connection,
    run_id: int,
    unit_ids: np.ndarray,
    metrics: Mapping[str, np.ndarray],
    n_images: int,
) -> int:
    """One `unit_metrics` row per unit: every measure of DESIGN.md, named as there."""
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
    return copy_columns(conn, "unit_metrics", columns)


def write_top_images(
    conn: Connection,
    run_id: int,
    unit_ids: np.ndarray,
    image_indices: np.ndarray,
    activations: np.ndarray,
    labels: np.ndarray,
    image_keys: Sequence[str] | None = None,
) -> int:
    """`unit_top_image` rows from U × k arrays of image indices (into the scored images'
    original indices) and activations, rank 1 = most active."""
    u, k = image_indices.shape
    flat_idx = image_indices.reshape(-1)
    keys = None if image_keys is None else [image_keys[i] for i in flat_idx.tolist()]
    return copy_columns(
        conn,
        "unit_top_image",
        {
            "run_id": run_id,
            "unit_id": np.repeat(np.asarray(unit_ids), k),
            "rank": np.tile(np.arange(1, k + 1), u),
            "image_index": flat_idx,
            "image_key": keys if keys is not None else [None] * (u * k),
            "class_index": np.asarray(labels)[flat_idx],
            "activation": activations.reshape(-1).astype(np.float64),
        },
    )
