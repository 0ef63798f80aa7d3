"""The runs: what has been computed (for the Runs page and `unitcat runs`), and how a
scoring run is named in pickers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
from sqlalchemy import Engine, Select, func, select

from catalogue.query.frame import read_frame
from catalogue.query.views import DATASET, MODEL, RUN, UNIT_METRICS


def _runs_statement(kinds: Sequence[str], statuses: Sequence[str]) -> Select[Any]:
    parent = RUN.alias("parent")
    statement = (
        select(
            RUN.c.id,
            RUN.c.kind,
            RUN.c.status,
            RUN.c.label,
            MODEL.c.name.label("model"),
            DATASET.c.name.label("dataset"),
            RUN.c.parent_id,
            parent.c.kind.label("parent_kind"),
            RUN.c.started_at,
            RUN.c.finished_at,
            RUN.c.duration_s,
            RUN.c.error,
            RUN.c.params,
            RUN.c.stats,
            RUN.c.h5_path,
            RUN.c.code_version,
        )
        .select_from(RUN)
        .outerjoin(MODEL, MODEL.c.id == RUN.c.model_id)
        .outerjoin(DATASET, DATASET.c.id == RUN.c.dataset_id)
        .outerjoin(parent, parent.c.id == RUN.c.parent_id)
        .order_by(RUN.c.started_at.desc(), RUN.c.id.desc())
    )
    if kinds:
        statement = statement.where(RUN.c.kind.in_(list(kinds)))
    if statuses:
        statement = statement.where(RUN.c.status.in_(list(statuses)))
    return statement


def list_runs(
    engine: Engine, kinds: Sequence[str] = (), statuses: Sequence[str] = ()
) -> pd.DataFrame:
    """Every run (of these kinds and statuses), newest first, with its model and dataset names."""
    return read_frame(engine, _runs_statement(kinds, statuses))


def run_records(
    engine: Engine, kinds: Sequence[str] = (), statuses: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """The rows of `list_runs` as plain values (None, not NaN, where a value is missing)."""
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(_runs_statement(kinds, statuses)).mappings()]


def score_runs(engine: Engine) -> pd.DataFrame:
    """Scoring runs that have results: id, a readable name, model, dataset, units scored."""
    n_units = (
        select(UNIT_METRICS.c.run_id, func.count().label("n_units"))
        .group_by(UNIT_METRICS.c.run_id)
        .subquery()
    )
    frame = read_frame(
        engine,
        select(
            RUN.c.id,
            RUN.c.label,
            MODEL.c.name.label("model"),
            DATASET.c.name.label("dataset"),
            RUN.c.params,
            RUN.c.started_at,
            n_units.c.n_units,
            RUN.c.baseline_of,
        )
        .select_from(RUN)
        .join(n_units, n_units.c.run_id == RUN.c.id)
        .outerjoin(MODEL, MODEL.c.id == RUN.c.model_id)
        .outerjoin(DATASET, DATASET.c.id == RUN.c.dataset_id)
        .where(RUN.c.kind == "score")
        # baselines (random weights) after the trained runs: never a page's default
        .order_by(RUN.c.baseline_of.is_not(None), RUN.c.started_at.desc(), RUN.c.id.desc()),
    )
    frame["name"] = [run_name(r) for r in frame.to_dict("records")]
    return frame


def run_name(run: Mapping[str, Any]) -> str:
    """'#12 alexnet on imagenet-val (correct images)': how the UI names a scoring run."""
    label = str(run.get("label") or "")
    if not label:
        model, dataset = run.get("model"), run.get("dataset")
        label = f"{model} on {dataset}" if model and dataset else str(model or "")
    params = run.get("params") or {}
    if isinstance(params, Mapping) and "all_images" in params:
        which = "(all images)" if params["all_images"] else "(correct images)"
        if params.get("rows_from") is not None:  # a baseline scored on a trained run's images
            which = f"(the images of #{params['rows_from']})"
        if which not in label:
            label = f"{label} {which}".strip()
    baseline_of = run.get("baseline_of")
    if baseline_of is not None and not pd.isna(baseline_of):
        label = f"{label}, baseline of #{int(baseline_of)}"
    return f"#{run['id']} {label}".strip()
