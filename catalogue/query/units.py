"""One unit: its catalogue record, what each detector criterion says about it, and the
details the Unit page lists (per-class statistics, class groups, top images, dissection,
AM panels, ratings). Where the activations can be read, the per-class table covers every
class and the false-alarm counts are counted, so a reader can check the stored measures."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import ColumnElement, Engine, and_, select

from catalogue.errors import NotFound
from catalogue.measures import (
    CONDITION_SUBJECT,
    CRITERIA,
    FLOAT_MEASURES,
    REASONS_BY_MEASURE,
    TOP_K_PRECISION,
    TOP_N_CLASSES,
    Criterion,
)
from catalogue.query.files import UnitActivations, artifact_path, attach_images
from catalogue.query.frame import read_frame
from catalogue.query.runs import run_name
from catalogue.query.views import (
    AM_PANEL,
    CLASS_GROUP,
    CONCEPT,
    DATASET,
    DISSECTION,
    IMAGE_CLASS,
    LAYER,
    MODEL,
    PARTICIPANT,
    RATING,
    RATING_SUMMARY,
    RUN,
    UNIT,
    UNIT_CATALOGUE,
    UNIT_CLASS_STATS,
    UNIT_GROUP_METRICS,
    UNIT_METRICS,
    UNIT_TOP_IMAGE,
)

# ---------------------------------------------------------------------------- identity


#: Ids and indices are PostgreSQL integers: a larger number (from a URL) names nothing.
MAX_ID = 2**31 - 1


def _is_id(value: int) -> bool:
    return 0 < int(value) <= MAX_ID


def find_unit(engine: Engine, model: str, layer: str, unit: int) -> int:
    """The id of unit `unit` of `model`.`layer`; NotFound otherwise."""
    if not 0 <= int(unit) <= MAX_ID:
        raise NotFound(f"no unit {model}.{layer}.{unit} in the catalogue.")
    statement = (
        select(UNIT.c.id, LAYER.c.n_units)
        .join(LAYER, LAYER.c.id == UNIT.c.layer_id)
        .join(MODEL, MODEL.c.id == LAYER.c.model_id)
        .where(MODEL.c.name == model, LAYER.c.name == layer, UNIT.c.unit_index == int(unit))
    )
    with engine.connect() as conn:
        row = conn.execute(statement).one_or_none()
    if row is None:
        raise NotFound(f"no unit {model}.{layer}.{unit} in the catalogue.")
    return int(row.id)


def layer_units(engine: Engine, model: str, layer: str) -> int:
    """Number of units of a registered layer (0 when unknown)."""
    statement = (
        select(LAYER.c.n_units)
        .join(MODEL, MODEL.c.id == LAYER.c.model_id)
        .where(MODEL.c.name == model, LAYER.c.name == layer)
    )
    with engine.connect() as conn:
        return int(conn.execute(statement).scalar_one_or_none() or 0)


def unit_runs(engine: Engine, unit_id: int) -> pd.DataFrame:
    """The scoring runs that scored a unit (newest first), named for a picker."""
    statement = (
        select(
            RUN.c.id,
            RUN.c.label,
            MODEL.c.name.label("model"),
            DATASET.c.name.label("dataset"),
            RUN.c.params,
        )
        .select_from(UNIT_METRICS)
        .join(RUN, RUN.c.id == UNIT_METRICS.c.run_id)
        .outerjoin(MODEL, MODEL.c.id == RUN.c.model_id)
        .outerjoin(DATASET, DATASET.c.id == RUN.c.dataset_id)
        .where(UNIT_METRICS.c.unit_id == int(unit_id))
        .order_by(RUN.c.started_at.desc(), RUN.c.id.desc())
    )
    frame = read_frame(engine, statement)
    frame["name"] = [run_name(r) for r in frame.to_dict("records")]
    return frame


# ---------------------------------------------------------------------- record, verdicts


def unit_record(engine: Engine, unit_id: int, run_id: int | None = None) -> dict[str, Any]:
    """The unit's `unit_catalogue` row for a scoring run (None: its newest, or its unscored row).

    Adds `run_label`, `run_params`, `parent_id` and `dataset_id` of the scoring run.
    """
    if not _is_id(unit_id) or (run_id is not None and not _is_id(run_id)):
        what = f"unit id {unit_id}" + (f" in scoring run {run_id}" if run_id is not None else "")
        raise NotFound(f"no {what} in the catalogue; pick a unit on the Search page.")
    t = UNIT_CATALOGUE
    statement = (
        select(
            t,
            RUN.c.label.label("run_label"),
            RUN.c.params.label("run_params"),
            RUN.c.parent_id,
            RUN.c.dataset_id,
        )
        .select_from(t.outerjoin(RUN, RUN.c.id == t.c.run_id))
        .where(t.c.unit_id == int(unit_id))
    )
    if run_id is not None:
        statement = statement.where(t.c.run_id == int(run_id))
    statement = statement.order_by(RUN.c.started_at.desc().nulls_last(), t.c.run_id.desc()).limit(1)
    with engine.connect() as conn:
        row = conn.execute(statement).mappings().one_or_none()
    if row is None:
        what = f"unit id {unit_id}" + (f" in scoring run {run_id}" if run_id is not None else "")
        raise NotFound(f"no {what} in the catalogue; pick a unit on the Search page.")
    record = dict(row)
    for name in FLOAT_MEASURES:
        if record.get(name) is not None:
            record[name] = float(record[name])
    return record


@dataclass(frozen=True)
class Verdict:
    """What one detector criterion says about a unit.

    `holds` is None when a value the criterion needs was not measured (not scored,
    not dissected, not rated) or is undefined for the unit; `undefined` says why, for
    each such value whose reason is stored (e.g. ccmas: "activations can be negative");
    `subject` is what the unit detects by the criterion (its class, concept or the name
    people gave); `values` are the tested values and `subjects` what each of them is
    about (`CONDITION_SUBJECT`: the misleading criterion tests the precision class's
    precision and the false-alarm rate of the max-informedness class, which can be two
    classes).
    """

    criterion: Criterion
    holds: bool | None
    subject: str | None
    values: dict[str, Any]
    undefined: dict[str, str] = field(default_factory=dict)
    subjects: dict[str, Any] = field(default_factory=dict)


def detector_verdicts(
    record: Mapping[str, Any], criteria: Sequence[Criterion] = CRITERIA
) -> list[Verdict]:
    """Each criterion of the literature applied to one unit's `unit_catalogue` record."""
    return [
        Verdict(
            criterion=c,
            holds=c.test(record),
            subject=record.get(c.class_column) if c.class_column else None,
            values={name: record.get(name) for name in c.columns},
            undefined=undefined_reasons(record, c.columns),
            subjects={
                name: record.get(CONDITION_SUBJECT[name])
                for name in c.columns
                if name in CONDITION_SUBJECT
            },
        )
        for c in criteria
    ]


def undefined_reasons(record: Mapping[str, Any], columns: Sequence[str]) -> dict[str, str]:
    """Why each of `columns` has no value in a `unit_catalogue` record, where a reason is
    stored (`catalogue.measures.UNDEFINED_REASONS`)."""
    out = {}
    for name in columns:
        reason = REASONS_BY_MEASURE.get(name)
        why = record.get(reason.column) if reason is not None else None
        if why is not None and not (isinstance(why, float) and np.isnan(why)):
            out[name] = str(why)
    return out


# ------------------------------------------------------------------------------ details


def _class_of_run(class_col: Any, run_id: int) -> ColumnElement[bool]:
    """Join condition: the `image_class` row of `class_col` in the scoring run's dataset."""
    dataset = select(RUN.c.dataset_id).where(RUN.c.id == int(run_id)).scalar_subquery()
    return and_(IMAGE_CLASS.c.class_index == class_col, IMAGE_CLASS.c.dataset_id == dataset)


def unit_class_stats(engine: Engine, unit_id: int, run_id: int) -> pd.DataFrame:
    """Per class: mean activation, share non-zero, informedness and its threshold, ranks."""
    s = UNIT_CLASS_STATS
    statement = (
        select(
            s.c.class_index,
            IMAGE_CLASS.c.name.label("class_name"),
            s.c.mean_activation,
            s.c.frac_nonzero,
            s.c.informedness,
            s.c.informedness_threshold,
            s.c.rank_by_informedness,
            s.c.rank_by_mean,
        )
        .select_from(s)
        .outerjoin(IMAGE_CLASS, _class_of_run(s.c.class_index, run_id))
        .where(s.c.unit_id == int(unit_id), s.c.run_id == int(run_id))
        .order_by(s.c.rank_by_informedness.asc().nulls_last(), s.c.class_index)
    )
    return read_frame(engine, statement)


def unit_group_metrics(engine: Engine, unit_id: int, run_id: int) -> pd.DataFrame:
    """The paper's Tables 4–6 for each class group (e.g. *bus*) scored for the unit, with the
    version of the group the run used (a redefined group is a new version)."""
    g = UNIT_GROUP_METRICS
    statement = (
        select(
            CLASS_GROUP.c.name.label("group_name"),
            CLASS_GROUP.c.version.label("group_version"),
            g.c.n_nonzero_in,
            g.c.n_nonzero_out,
            g.c.mu_in,
            g.c.mu_out,
            g.c.precision,
            g.c.ccmas,
            g.c.max_informedness,
            g.c.mi_threshold,
        )
        .join(CLASS_GROUP, CLASS_GROUP.c.id == g.c.group_id)
        .where(g.c.unit_id == int(unit_id), g.c.run_id == int(run_id))
        .order_by(CLASS_GROUP.c.name)
    )
    return read_frame(engine, statement)


def unit_top_images(engine: Engine, unit_id: int, run_id: int) -> pd.DataFrame:
    """The unit's most active images (rank 1 first) with class names and, where the image
    can be read, its file (`path`) or bundled image (`image`; see `files.attach_images`)."""
    ti = UNIT_TOP_IMAGE
    statement = (
        select(
            ti.c.rank,
            ti.c.image_index,
            ti.c.image_key,
            ti.c.class_index,
            IMAGE_CLASS.c.name.label("class_name"),
            ti.c.activation,
        )
        .select_from(ti)
        .outerjoin(IMAGE_CLASS, _class_of_run(ti.c.class_index, run_id))
        .where(ti.c.unit_id == int(unit_id), ti.c.run_id == int(run_id))
        .order_by(ti.c.rank)
    )
    return attach_images(engine, run_id, read_frame(engine, statement))


def unit_dissection(engine: Engine, unit_id: int) -> pd.DataFrame:
    """The unit's top concepts by IoU over every dissection run (best first)."""
    statement = (
        select(
            DISSECTION.c.run_id,
            CONCEPT.c.probe,
            CONCEPT.c.category,
            CONCEPT.c.name.label("concept"),
            DISSECTION.c.rank,
            DISSECTION.c.iou,
            DISSECTION.c.threshold,
            DISSECTION.c.is_detector,
        )
        .join(CONCEPT, CONCEPT.c.id == DISSECTION.c.concept_id)
        .where(DISSECTION.c.unit_id == int(unit_id))
        .order_by(DISSECTION.c.iou.desc(), DISSECTION.c.run_id.desc(), CONCEPT.c.name)
    )
    return read_frame(engine, statement)


def unit_am_panels(engine: Engine, unit_id: int) -> pd.DataFrame:
    """The unit's activation-maximisation panels (newest first); `file` is None when unreadable."""
    statement = (
        select(
            AM_PANEL.c.id,
            AM_PANEL.c.run_id,
            AM_PANEL.c.method,
            AM_PANEL.c.params,
            AM_PANEL.c.path,
            AM_PANEL.c.activations,
            AM_PANEL.c.dataset_max,
            AM_PANEL.c.created_at,
        )
        .where(AM_PANEL.c.unit_id == int(unit_id))
        .order_by(AM_PANEL.c.created_at.desc(), AM_PANEL.c.id.desc())
    )
    frame = read_frame(engine, statement)
    frame["file"] = [artifact_path(p) for p in frame["path"]]
    return frame


def unit_ratings(engine: Engine, unit_id: int) -> pd.DataFrame:
    """Every participant's answer about the unit's AM panel (the paper's Q1–Q3)."""
    statement = (
        select(
            PARTICIPANT.c.code.label("participant"),
            RATING.c.answer,
            RATING.c.estimate,
            RATING.c.names,
            RATING.c.source,
            RATING.c.created_at,
        )
        .join(PARTICIPANT, PARTICIPANT.c.id == RATING.c.participant_id)
        .where(RATING.c.unit_id == int(unit_id))
        .order_by(RATING.c.created_at, PARTICIPANT.c.code)
    )
    return read_frame(engine, statement)


def unit_rating_summary(engine: Engine, unit_id: int) -> dict[str, Any] | None:
    """The unit's `rating_summary` row, or None when nobody rated it."""
    statement = select(RATING_SUMMARY).where(RATING_SUMMARY.c.unit_id == int(unit_id))
    with engine.connect() as conn:
        row = conn.execute(statement).mappings().one_or_none()
    return None if row is None else dict(row)


# ------------------------------------------------------------ from the activations


#: Columns of `unit_class_table`.
CLASS_TABLE_COLUMNS: tuple[str, ...] = (
    "class_index",
    "class_name",
    "n_images",
    "mean_activation",
    "frac_nonzero",
    "informedness",
    "informedness_threshold",
    "rank_by_informedness",
    "rank_by_mean",
    "in_top60",
    "in_top100",
)


#: the scorer's per-class statistics that `unit_class_table` shows, and its ranks
_CLASS_STATS = ("mean_activation", "frac_nonzero", "informedness", "informedness_threshold")
_RANKS = ("rank_by_informedness", "rank_by_mean")


def unit_class_table(acts: UnitActivations, top_images: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every class for one unit, computed from its scored activations by the scorer itself
    (`catalogue.selectivity.score_layer`, so the numbers are the stored measures' own):
    images, mean activation, share above 0, best informedness and its (highest) threshold,
    ranks, and how many of the stored top 60 and top 100 images are of the class (ties at
    a cut-off broken by lower image index, as `unit_top_image` stores them).

    Classes without scored images are listed with 0 images and no statistics. Sorted by
    rank by informedness, then class index. Built from numpy columns into one frame (the
    Unit page draws it on every view; a frame per step cost ten times the scoring).
    """
    from catalogue.selectivity import score_layer

    n_classes = len(acts.class_names)
    columns: dict[str, Any] = {
        "class_index": np.arange(n_classes, dtype=np.int64),
        "class_name": np.asarray(list(acts.class_names), dtype=object),
        "n_images": np.bincount(acts.labels, minlength=n_classes)[:n_classes].astype(np.int64),
    }
    ranks = {name: np.zeros(n_classes, dtype=np.int64) for name in _RANKS}  # 0: no rank
    for name in _CLASS_STATS:
        columns[name] = np.full(n_classes, np.nan)
    if acts.values.size:
        stats = score_layer(
            acts.values[:, None], acts.labels, n_classes, n_top_classes=n_classes, n_top_images=1
        ).class_stats
        at = stats["class_index"]
        for name in _CLASS_STATS:
            columns[name][at] = stats[name]
        for name in _RANKS:
            ranks[name][at] = stats[name]
    for name, values in ranks.items():
        columns[name] = pd.arrays.IntegerArray(values, values <= 0)
    top = top_images if top_images is not None else pd.DataFrame(columns=["rank", "class_index"])
    rank = pd.to_numeric(top["rank"]).to_numpy(dtype=np.float64)
    of_class = pd.to_numeric(top["class_index"]).to_numpy(dtype=np.float64)
    for name, k in (("in_top60", TOP_K_PRECISION), ("in_top100", TOP_N_CLASSES)):
        kept = of_class[(rank <= k) & (of_class >= 0) & (of_class < n_classes)].astype(np.int64)
        columns[name] = np.bincount(kept, minlength=n_classes).astype(np.int64)
    informedness_rank = ranks["rank_by_informedness"]
    order = np.lexsort(
        (
            columns["class_index"],
            np.where(informedness_rank > 0, informedness_rank, np.iinfo(np.int64).max),
        )
    )
    return pd.DataFrame({name: columns[name][order] for name in CLASS_TABLE_COLUMNS})


def threshold_counts(acts: UnitActivations, class_index: int, threshold: float) -> dict[str, int]:
    """At a class and threshold: hits (TP), false alarms (FP), the class's images and all
    images, counted from the scored activations (a threshold selects a >= t)."""
    selected = acts.values >= np.float32(threshold)
    in_class = acts.labels == int(class_index)
    return {
        "tp": int(np.count_nonzero(selected & in_class)),
        "fp": int(np.count_nonzero(selected & ~in_class)),
        "n_class": int(np.count_nonzero(in_class)),
        "n": int(acts.values.size),
    }
