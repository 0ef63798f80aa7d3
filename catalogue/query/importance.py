"""Reads about unit importance and baselines: ablation per unit and class, class-ablation
curves, selectivity against importance, and trained/random/chance detector counts.

The per-class accuracy change of one unit comes from the ablation run's HDF5 file
(`catalogue.ablation.h5`); everything else from the views `unit_importance`,
`selectivity_vs_importance` and `layer_baselines` and the `class_ablation_curve` table.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import Engine, and_, select

from catalogue.errors import NotFound
from catalogue.measures import CRITERIA
from catalogue.query.frame import read_frame
from catalogue.query.views import (
    CLASS_ABLATION_CURVE,
    IMAGE_CLASS,
    LAYER,
    LAYER_BASELINES,
    RUN,
    SELECTIVITY_VS_IMPORTANCE,
    UNIT,
    UNIT_IMPORTANCE,
)

#: criteria in registry order (the order the Layers page and the CLI list them)
_CRITERION_ORDER = {c.key: i for i, c in enumerate(CRITERIA)}


def layer_baselines(engine: Engine, score_run_id: int | None = None) -> pd.DataFrame:
    """`layer_baselines` rows (of one trained scoring run), by layer then criterion."""
    b = LAYER_BASELINES
    statement = select(b)
    if score_run_id is not None:
        statement = statement.where(b.c.score_run_id == int(score_run_id))
    frame = read_frame(engine, statement.order_by(b.c.score_run_id, b.c.layer_position, b.c.layer))
    if frame.empty:
        return frame
    frame["_order"] = frame["criterion"].map(_CRITERION_ORDER).fillna(len(_CRITERION_ORDER))
    frame = frame.sort_values(
        ["score_run_id", "layer_position", "layer", "_order"], kind="stable"
    ).drop(columns="_order")
    return frame.reset_index(drop=True)


def ablation_runs(engine: Engine, score_run_id: int) -> pd.DataFrame:
    """Finished ablation runs of the scoring run's extraction, newest first."""
    score = RUN.alias("score")
    statement = (
        select(RUN.c.id, RUN.c.label, RUN.c.params, RUN.c.stats, RUN.c.finished_at)
        .join(score, score.c.parent_id == RUN.c.parent_id)
        .where(
            score.c.id == int(score_run_id),
            RUN.c.kind == "ablate",
            RUN.c.status == "done",
        )
        .order_by(RUN.c.finished_at.desc(), RUN.c.id.desc())
    )
    return read_frame(engine, statement)


def unit_importance(engine: Engine, unit_id: int) -> pd.DataFrame:
    """The unit's `unit_importance` rows, one per ablation run, newest run first."""
    t = UNIT_IMPORTANCE
    return read_frame(
        engine, select(t).where(t.c.unit_id == int(unit_id)).order_by(t.c.run_id.desc())
    )


def unit_class_changes(engine: Engine, ablate_run_id: int, unit_id: int) -> pd.DataFrame:
    """Every class's accuracy change when the unit is removed (from the run's HDF5 file),
    most hurt first: class_index, class_name, change, baseline_accuracy, n_images."""
    from catalogue.ablation.h5 import read_unit_profile

    statement = (
        select(RUN.c.h5_path, LAYER.c.name.label("layer"), UNIT.c.unit_index)
        .select_from(RUN)
        .join(UNIT, UNIT.c.id == int(unit_id))
        .join(LAYER, LAYER.c.id == UNIT.c.layer_id)
        .where(RUN.c.id == int(ablate_run_id), RUN.c.kind == "ablate")
    )
    with engine.connect() as conn:
        row = conn.execute(statement).one_or_none()
    if row is None or not row.h5_path:
        raise NotFound(f"no ablation run {ablate_run_id} with a file for unit {unit_id}.")
    profile = read_unit_profile(Path(row.h5_path), row.layer, int(row.unit_index))
    frame = pd.DataFrame(
        {
            "class_index": np.arange(profile.change.size),
            "class_name": profile.class_names,
            "change": profile.change,
            "baseline_accuracy": profile.baseline,
            "n_images": profile.class_sizes,
        }
    )
    frame = frame[frame["n_images"] > 0]
    return frame.sort_values(["change", "class_index"], kind="stable").reset_index(drop=True)


def curve_layers(engine: Engine, ablate_run_id: int) -> list[str]:
    """Layers of an ablation run that have class-ablation curves, in network order."""
    c = CLASS_ABLATION_CURVE
    statement = (
        select(LAYER.c.name, LAYER.c.position)
        .join(c, c.c.layer_id == LAYER.c.id)
        .where(c.c.run_id == int(ablate_run_id))
        .distinct()
        .order_by(LAYER.c.position, LAYER.c.name)
    )
    with engine.connect() as conn:
        return [r.name for r in conn.execute(statement)]


def class_curves(
    engine: Engine, ablate_run_id: int, layer: str, class_index: int | None = None
) -> pd.DataFrame:
    """Class-ablation curves of a layer: class_index, class_name, ranking, k, class_accuracy,
    other_accuracy, units (one row per point)."""
    c = CLASS_ABLATION_CURVE
    statement = (
        select(
            c.c.class_index,
            IMAGE_CLASS.c.name.label("class_name"),
            c.c.ranking,
            c.c.k,
            c.c.class_accuracy,
            c.c.other_accuracy,
            c.c.units,
        )
        .join(LAYER, LAYER.c.id == c.c.layer_id)
        .join(RUN, RUN.c.id == c.c.run_id)
        .outerjoin(
            IMAGE_CLASS,
            and_(
                IMAGE_CLASS.c.dataset_id == RUN.c.dataset_id,
                IMAGE_CLASS.c.class_index == c.c.class_index,
            ),
        )
        .where(c.c.run_id == int(ablate_run_id), LAYER.c.name == layer)
        .order_by(c.c.class_index, c.c.ranking, c.c.k)
    )
    if class_index is not None:
        statement = statement.where(c.c.class_index == int(class_index))
    return read_frame(engine, statement)


def importance_correlations(
    engine: Engine, ablate_run_id: int, layer: str | None = None
) -> pd.DataFrame:
    """`selectivity_vs_importance` rows of an ablation run (one layer, or all)."""
    s = SELECTIVITY_VS_IMPORTANCE
    statement = select(s).where(s.c.run_id == int(ablate_run_id))
    if layer is not None:
        statement = statement.where(s.c.layer == layer)
    return read_frame(engine, statement.order_by(s.c.layer_position, s.c.layer, s.c.measure))
