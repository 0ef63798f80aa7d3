"""A unit's stored top images as the computations on them need them: which extraction run
and layer they come from, and each image's store row, key and stored activation — without
looking for their files (`catalogue.query.units.unit_top_images` does that for display).

The heat maps of a conv unit's top images (`catalogue.pipeline.unit_maps`) and the layer
grid's tiles read them here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy import Engine, select

from catalogue.errors import NotFound
from catalogue.query.frame import read_frame
from catalogue.query.views import LAYER, RUN, UNIT, UNIT_TOP_IMAGE


@dataclass(frozen=True)
class TopImages:
    """One unit's stored top images in a scoring run, rank 1 first."""

    unit_id: int
    score_run_id: int
    extract_run_id: int | None
    layer: str
    layer_kind: str
    unit_index: int
    ranks: np.ndarray  # int64
    image_index: np.ndarray  # int64: rows of the extraction's store
    image_keys: list[str]
    activations: np.ndarray  # float64: the stored (spatially reduced) activation


def top_images(
    engine: Engine, unit_id: int, score_run_id: int, *, limit: int | None = None
) -> TopImages:
    """The unit's top images in the scoring run (the first `limit` ranks; None: all stored)."""
    identity = (
        select(LAYER.c.name, LAYER.c.kind, UNIT.c.unit_index, RUN.c.parent_id)
        .select_from(UNIT)
        .join(LAYER, LAYER.c.id == UNIT.c.layer_id)
        .join(RUN, RUN.c.id == int(score_run_id))
        .where(UNIT.c.id == int(unit_id))
    )
    with engine.connect() as conn:
        row = conn.execute(identity).one_or_none()
    if row is None:
        raise NotFound(f"no unit id {unit_id} or scoring run {score_run_id} in the catalogue.")
    t = UNIT_TOP_IMAGE
    statement = (
        select(t.c.rank, t.c.image_index, t.c.image_key, t.c.activation)
        .where(t.c.unit_id == int(unit_id), t.c.run_id == int(score_run_id))
        .order_by(t.c.rank)
    )
    if limit is not None:
        statement = statement.where(t.c.rank <= int(limit))
    frame = read_frame(engine, statement)
    return TopImages(
        unit_id=int(unit_id),
        score_run_id=int(score_run_id),
        extract_run_id=None if row.parent_id is None else int(row.parent_id),
        layer=str(row.name),
        layer_kind=str(row.kind),
        unit_index=int(row.unit_index),
        ranks=frame["rank"].to_numpy(dtype=np.int64),
        image_index=frame["image_index"].to_numpy(dtype=np.int64),
        image_keys=[str(k) for k in frame["image_key"]],
        activations=frame["activation"].to_numpy(dtype=np.float64),
    )
