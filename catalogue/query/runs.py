"""The runs: what has been computed (for the Runs page and `unitcat runs`), and how a
scoring run is named in pickers.

Runs are read from the `run_status` view, so `status` is what a run *reads as*: a run
recorded as running whose owner is gone is `interrupted` (`catalogue.db.runs` explains
how that is known). On this host the owner's pid and start time are checked too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, Select, func, select

from catalogue.db.owner import owner_alive
from catalogue.query.views import DATASET_NAME, MODEL_NAME, RUN_KIND, RUN_STATUS

if TYPE_CHECKING:  # pandas only for the frames of the UI: `unitcat runs` needs none
    import pandas as pd

#: The statuses a run reads as (the stored ones; `interrupted` also for a dead owner).
RUN_STATES = ("running", "done", "failed", "interrupted")


def _runs_statement(kinds: Sequence[str]) -> Select[Any]:
    rs = RUN_STATUS
    parent = RUN_KIND.alias("parent")
    statement = (
        select(
            rs.c.run_id.label("id"),
            rs.c.kind,
            rs.c.status,
            rs.c.label,
            MODEL_NAME.c.name.label("model"),
            DATASET_NAME.c.name.label("dataset"),
            rs.c.parent_id,
            parent.c.kind.label("parent_kind"),
            rs.c.started_at,
            rs.c.finished_at,
            rs.c.duration_s,
            rs.c.error,
            rs.c.params,
            rs.c.stats,
            rs.c.h5_path,
            rs.c.code_version,
            rs.c.owner_host,
            rs.c.owner_pid,
            rs.c.owner_started_at,
            rs.c.recorded_status,
        )
        .select_from(rs)
        .outerjoin(MODEL_NAME, MODEL_NAME.c.id == rs.c.model_id)
        .outerjoin(DATASET_NAME, DATASET_NAME.c.id == rs.c.dataset_id)
        .outerjoin(parent, parent.c.id == rs.c.parent_id)
        .order_by(rs.c.started_at.desc(), rs.c.run_id.desc())
    )
    if kinds:
        statement = statement.where(rs.c.kind.in_(list(kinds)))
    return statement


def _read_as(record: Mapping[str, Any]) -> str:
    """The view's status, unless the owner is on this host and its process is gone."""
    if record["status"] == "running":
        alive = owner_alive(record["owner_host"], record["owner_pid"], record["owner_started_at"])
        if alive is False:
            recorded = record["recorded_status"]
            return "interrupted" if recorded == "running" else str(recorded)
    return str(record["status"])


def run_records(
    engine: Engine, kinds: Sequence[str] = (), statuses: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """Every run (of these kinds and statuses, as they read), newest first, with its model and
    dataset names, as plain values (None, not NaN, where a value is missing)."""
    with engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(_runs_statement(kinds)).mappings()]
    for row in rows:
        row["status"] = _read_as(row)
    return [r for r in rows if not statuses or r["status"] in statuses]


def list_runs(
    engine: Engine, kinds: Sequence[str] = (), statuses: Sequence[str] = ()
) -> pd.DataFrame:
    """`run_records` as a frame (the Runs page)."""
    from catalogue.query.frame import read_frame

    frame = read_frame(engine, _runs_statement(kinds))
    if not frame.empty:
        frame["status"] = [_read_as(r) for r in frame.to_dict("records")]
    if statuses:
        frame = frame[frame["status"].isin(list(statuses))].reset_index(drop=True)
    return frame


def score_runs(engine: Engine) -> pd.DataFrame:
    """Scoring runs that have results: id, a readable name, model, dataset, units scored."""
    from catalogue.query.frame import read_frame
    from catalogue.query.views import DATASET, MODEL, RUN, UNIT_METRICS

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
    if baseline_of is not None and not _missing(baseline_of):
        label = f"{label}, baseline of #{int(baseline_of)}"
    return f"#{run['id']} {label}".strip()


def _missing(value: object) -> bool:
    """NaN or NA, as a frame holds a missing id (pandas is loaded by then: a frame's caller)."""
    import pandas as pd

    return bool(pd.isna(value))
