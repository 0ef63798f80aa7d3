"""A layer's units as a grid (OpenAI Microscope's layer view): one page of a layer's units
sorted by any measure, with each unit's first top images and its newest AM panel.

A page is `limit` units from `offset` in the order asked for (a missing value last, then
by unit index, so every order is total and pages never overlap); the top images and panels
are read for that page's units only, so a layer of 4,096 units costs what 48 cost.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from sqlalchemy import Engine, func, select
from sqlalchemy.dialects.postgresql import distinct_on

from catalogue.errors import InputError
from catalogue.measures import FLOAT_MEASURES
from catalogue.query.files import artifact_path, attach_images
from catalogue.query.frame import read_frame
from catalogue.query.runs import run_name
from catalogue.query.views import (
    AM_PANEL,
    DATASET,
    IMAGE_CLASS,
    LAYER,
    MODEL,
    RUN,
    UNIT,
    UNIT_CATALOGUE,
    UNIT_METRICS,
    UNIT_TOP_IMAGE,
)

#: What a grid can be sorted by: the unit's index, every numeric measure, and the
#: dissection IoU and share of "yes" ratings.
GRID_SORTABLE: tuple[str, ...] = ("unit", *FLOAT_MEASURES, "best_iou", "share_yes")
#: Units on one page of a grid (eight rows of six tiles).
PAGE_SIZE = 48
#: Columns of a grid page's `units` frame besides the sort column.
GRID_COLUMNS: tuple[str, ...] = (
    "unit",
    "unit_id",
    "run_id",
    "constant",
    "precision",
    "precision_class",
    "max_informedness",
    "mi_class",
    "false_alarm_rate",
    "best_concept",
    "best_iou",
)


@dataclass(frozen=True)
class GridPage:
    """One page of a layer's grid.

    `units`: the page's units in order; `top_images`: their first top images (unit_id,
    rank, image_index, image_key, class_name, activation, path, image); `panels`: their
    newest AM panel (unit_id, method, path, file). `total`: units in the layer's grid.
    """

    units: pd.DataFrame
    top_images: pd.DataFrame
    panels: pd.DataFrame
    total: int
    offset: int
    limit: int


def layer_runs(engine: Engine, model: str, layer: str) -> pd.DataFrame:
    """The scoring runs that scored the layer (id, name), trained runs before baselines,
    newest first."""
    scored = (
        select(UNIT_METRICS.c.run_id)
        .join(UNIT, UNIT.c.id == UNIT_METRICS.c.unit_id)
        .join(LAYER, LAYER.c.id == UNIT.c.layer_id)
        .join(MODEL, MODEL.c.id == LAYER.c.model_id)
        .where(MODEL.c.name == model, LAYER.c.name == layer)
        .distinct()
        .subquery()
    )
    statement = (
        select(
            RUN.c.id,
            RUN.c.label,
            RUN.c.params,
            RUN.c.baseline_of,
            MODEL.c.name.label("model"),
            DATASET.c.name.label("dataset"),
        )
        .join(scored, scored.c.run_id == RUN.c.id)
        .outerjoin(MODEL, MODEL.c.id == RUN.c.model_id)
        .outerjoin(DATASET, DATASET.c.id == RUN.c.dataset_id)
        .order_by(RUN.c.baseline_of.is_not(None), RUN.c.started_at.desc(), RUN.c.id.desc())
    )
    frame = read_frame(engine, statement)
    frame["name"] = [run_name(r) for r in frame.to_dict("records")]
    return frame[["id", "name"]]


def _check_sort(order_by: str) -> None:
    if order_by not in GRID_SORTABLE:
        raise InputError(
            f"cannot sort a layer's units by {order_by!r}; use one of {', '.join(GRID_SORTABLE)}."
        )


def layer_grid(
    engine: Engine,
    model: str,
    layer: str,
    run_id: int | None,
    *,
    order_by: str = "unit",
    descending: bool = False,
    offset: int = 0,
    limit: int = PAGE_SIZE,
    images: int = 4,
) -> GridPage:
    """A page of the layer's units in a scoring run (None: the units never scored), sorted
    by `order_by` (missing values last, ties by unit index), with their first `images` top
    images and their newest AM panel."""
    _check_sort(order_by)
    if limit < 1 or offset < 0 or images < 0:
        raise InputError("a grid page needs limit >= 1, offset >= 0 and images >= 0.")
    t = UNIT_CATALOGUE
    where = [t.c.model == model, t.c.layer == layer]
    where.append(t.c.run_id.is_(None) if run_id is None else t.c.run_id == int(run_id))
    sort = t.c[order_by]
    key = (sort.desc() if descending else sort.asc()).nulls_last()
    columns = list(dict.fromkeys((*GRID_COLUMNS, order_by)))
    statement = (
        select(*(t.c[c] for c in columns))
        .where(*where)
        .order_by(key, t.c.unit)
        .offset(int(offset))
        .limit(int(limit))
    )
    with engine.connect() as conn:
        total = int(conn.execute(select(func.count()).select_from(t).where(*where)).scalar_one())
    units = read_frame(engine, statement)
    ids = [int(u) for u in units["unit_id"]]
    top = _top_images(engine, ids, run_id, images)
    return GridPage(units, top, _panels(engine, ids), total, int(offset), int(limit))


def _top_images(engine: Engine, unit_ids: list[int], run_id: int | None, k: int) -> pd.DataFrame:
    ti = UNIT_TOP_IMAGE
    columns = ["unit_id", "rank", "image_index", "image_key", "class_name", "activation"]
    if run_id is None or not unit_ids or k == 0:
        return pd.DataFrame(columns=[*columns, "path", "image"])
    dataset = select(RUN.c.dataset_id).where(RUN.c.id == int(run_id)).scalar_subquery()
    statement = (
        select(
            ti.c.unit_id,
            ti.c.rank,
            ti.c.image_index,
            ti.c.image_key,
            IMAGE_CLASS.c.name.label("class_name"),
            ti.c.activation,
        )
        .select_from(ti)
        .outerjoin(
            IMAGE_CLASS,
            (IMAGE_CLASS.c.class_index == ti.c.class_index) & (IMAGE_CLASS.c.dataset_id == dataset),
        )
        .where(ti.c.run_id == int(run_id), ti.c.unit_id.in_(unit_ids), ti.c.rank <= int(k))
        .order_by(ti.c.unit_id, ti.c.rank)
    )
    return attach_images(engine, int(run_id), read_frame(engine, statement))


def _panels(engine: Engine, unit_ids: list[int]) -> pd.DataFrame:
    """The newest AM panel of each unit (as the Unit page shows first)."""
    p = AM_PANEL
    if not unit_ids:
        return pd.DataFrame(columns=["unit_id", "method", "run_id", "path", "file"])
    statement = (
        select(p.c.unit_id, p.c.method, p.c.run_id, p.c.path)
        .ext(distinct_on(p.c.unit_id))
        .where(p.c.unit_id.in_(unit_ids))
        .order_by(p.c.unit_id, p.c.created_at.desc(), p.c.id.desc())
    )
    frame = read_frame(engine, statement)
    frame["file"] = [artifact_path(path) for path in frame["path"]]
    return frame
