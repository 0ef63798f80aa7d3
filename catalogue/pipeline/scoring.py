"""Scoring an extraction run into the catalogue.

Reads the run's HDF5 file layer by layer in column blocks (so a 721,536 × 4,096
layer never has to fit in memory), scores each block with
`catalogue.selectivity.score_layer` — here, or as Ray tasks with a ``cluster``
(`catalogue.scoring`, the same blocks) — and writes `unit_metrics`,
`unit_class_stats`, `unit_top_image` and `unit_group_metrics` for all layers in
one transaction at the end. By default only the correctly classified images are
scored, as in the paper.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import Connection, Engine

from catalogue.cluster import Cluster, resolve_device_for
from catalogue.db.identities import register_class_groups
from catalogue.db.results import (
    write_bottom_images,
    write_class_stats,
    write_group_metrics,
    write_top_images,
    write_unit_metrics,
)
from catalogue.errors import InputError
from catalogue.groups import group_class_indices
from catalogue.measures import CSI_TOP_N, GROUP_MEASURES, TOP_N_CLASSES
from catalogue.pipeline.defaults import SCORE_BLOCK_UNITS
from catalogue.pipeline.lifecycle import RunSpec, Step, run_step
from catalogue.pipeline.source import ExtractionSource, check_layers, extraction_source
from catalogue.scoring import ScoreContext, score_in_blocks
from catalogue.selectivity import BOTTOM_IMAGES, LayerScores

DEFAULT_BLOCK_UNITS = SCORE_BLOCK_UNITS
#: Top images stored per unit: the ones `classes_in_top100` (`TOP_N_CLASSES`) and Rafegas's
#: index (`CSI_TOP_N`) read, and the top-60 of top-60 precision among them, so that a reader
#: can check each on the Unit page.
TOP_IMAGES = max(TOP_N_CLASSES, CSI_TOP_N)
#: classes listed per unit in `unit_class_stats`' ranking
DEFAULT_TOP_CLASSES = 5

#: on_progress(layer, units_done, units_total)
ScoreProgress = Callable[[str, int, int], None]


@dataclass
class ScoreResult:
    run_id: int
    n_images: int
    layers: dict[str, int] = field(default_factory=dict)  # layer → units scored
    reused: bool = False


@dataclass(frozen=True)
class ScoringPlan:
    """A checked scoring request: the extraction, the layers, the images scored, the groups."""

    source: ExtractionSource
    layers: dict[str, int]  # layer → units
    rows: np.ndarray  # boolean mask of the store's rows scored
    labels: np.ndarray  # every row's class
    image_keys: list[str]
    n_classes: int
    groups: Mapping[str, Sequence[str]]
    group_indices: Mapping[str, Sequence[int]]
    params: dict[str, Any]

    @property
    def n_images(self) -> int:
        return int(self.rows.sum())

    def result(self, run_id: int, reused: bool) -> ScoreResult:
        return ScoreResult(run_id, self.n_images, dict(self.layers), reused=reused)


def score_extraction(
    engine: Engine,
    extract_run: str | int,
    *,
    layers: Sequence[str] | None = None,
    all_images: bool = False,
    groups: Mapping[str, Sequence[str]] | None = None,
    device: str | None = None,
    block_units: int = DEFAULT_BLOCK_UNITS,
    n_top_classes: int = DEFAULT_TOP_CLASSES,
    n_top_images: int = TOP_IMAGES,
    on_progress: ScoreProgress | None = None,
    reuse: bool = False,
    rows: np.ndarray | None = None,
    rows_from: int | None = None,
    cluster: Cluster | None = None,
) -> ScoreResult:
    """Score every unit of `layers` (default: all) of an extraction run with every measure.

    With `reuse`, a finished scoring run with the same parameters is returned as it is.
    `rows` (a boolean mask over the store's rows) scores exactly those images instead,
    e.g. the ones a trained network's scoring run scored, for its random-weights
    baseline; `rows_from` names that run in the parameters.
    With `cluster`, the blocks of units are Ray tasks (`catalogue.scoring`);
    the rows are the same.
    Every option is checked before the run is recorded: a bad one writes nothing.
    """
    if block_units < 1:
        raise InputError(
            f"block_units must be at least 1, got {block_units}.", argument="block_units"
        )
    device = resolve_device_for(cluster, device)
    plan = plan_scoring(
        engine, extract_run, layers=layers, all_images=all_images, groups=groups or {},
        n_top_classes=n_top_classes, n_top_images=n_top_images, rows=rows, rows_from=rows_from,
    )  # fmt: skip
    context = ScoreContext(
        path=str(plan.source.path.resolve()),
        rows=plan.rows,
        labels=plan.labels[plan.rows],
        n_classes=plan.n_classes,
        groups=plan.group_indices,
        n_top_classes=n_top_classes,
        n_top_images=n_top_images,
        device=device,
    )

    def score(step: Step) -> dict[str, LayerScores]:
        parts = score_in_blocks(
            cluster, context, plan.layers, block_units=block_units, on_progress=step.progress
        )
        return {name: _concatenate(parts[name]) for name in plan.layers}

    step = run_step(
        engine,
        _run_spec(plan, all_images),
        score,
        write=lambda conn, run_id, results: _write(conn, run_id, plan, results),
        stats=lambda _results: {"n_images": plan.n_images, "layers": list(plan.layers)},
        on_progress=on_progress,
        reuse=reuse,
        cluster=cluster,
    )
    return plan.result(step.run_id, step.reused)


def plan_scoring(
    engine: Engine,
    extract_run: str | int,
    *,
    layers: Sequence[str] | None,
    all_images: bool,
    groups: Mapping[str, Sequence[str]],
    n_top_classes: int,
    n_top_images: int,
    rows: np.ndarray | None,
    rows_from: int | None,
) -> ScoringPlan:
    """Check a scoring request against the extraction run and its file; nothing is written."""
    source = extraction_source(engine, extract_run)
    run_id = source.run.id
    with source.store() as store:
        names = check_layers(store, list(layers) if layers else store.layer_names, run_id)
        labels = store.labels
        mask = _scored_rows(store, rows, all_images)
        if not mask.any():
            raise InputError(
                f"run {run_id} has no correctly classified images to score; set all_images to "
                "score every image.",
                argument="all_images",
            )
        group_indices = group_class_indices(
            groups, store.class_keys, store.class_names, dataset=source.dataset.name
        )
        params: dict[str, Any] = {
            "extract_run": run_id,
            "layers": names,
            "all_images": all_images,
            "groups": {g: list(k) for g, k in groups.items()},
            "n_top_classes": n_top_classes,
            "n_top_images": n_top_images,
            "n_bottom_images": BOTTOM_IMAGES,
        }
        if rows is not None:
            params["rows_from"] = rows_from
        return ScoringPlan(
            source, {n: store.layer_shape(n)[1] for n in names}, mask, labels, store.image_keys,
            len(store.class_keys), groups, group_indices, params,
        )  # fmt: skip


def _scored_rows(store: Any, rows: np.ndarray | None, all_images: bool) -> np.ndarray:
    labels = store.labels
    if rows is None:
        return np.ones(len(labels), dtype=bool) if all_images else store.correct.astype(bool)
    mask = np.asarray(rows, dtype=bool)
    if mask.shape != labels.shape:
        raise InputError(
            f"a row mask of {mask.shape} for a store of {labels.shape} rows.", argument="rows"
        )
    return mask


def _run_spec(plan: ScoringPlan, all_images: bool) -> RunSpec:
    model, dataset = plan.source.model, plan.source.dataset
    return RunSpec(
        "score",
        plan.params,
        label=f"{model.name} on {dataset.name}" + (" (all images)" if all_images else ""),
        model_id=model.id,
        dataset_id=dataset.id,
        parent_id=plan.source.run.id,
        h5_path=str(plan.source.path),
    )


def _write(
    conn: Connection, run_id: int, plan: ScoringPlan, results: Mapping[str, LayerScores]
) -> None:
    groups = plan.groups
    group_ids = register_class_groups(conn, plan.source.dataset, groups) if groups else {}
    image_index = np.flatnonzero(plan.rows)
    for name, scores in results.items():
        _write_layer(
            conn, run_id, plan.source.model.layer(name).unit_ids, scores, image_index,
            plan.labels, plan.image_keys, group_ids,
        )  # fmt: skip


def _concatenate(parts: list[LayerScores]) -> LayerScores:
    """Join the scores of consecutive unit blocks into one layer's scores."""
    if len(parts) == 1:
        return parts[0]
    offsets = np.cumsum([0] + [p.n_units for p in parts[:-1]])
    class_stats = {
        col: np.concatenate(
            [
                p.class_stats[col] + (off if col == "unit" else 0)
                for p, off in zip(parts, offsets, strict=True)
            ]
        )
        for col in parts[0].class_stats
    }
    return LayerScores(
        metrics={k: np.concatenate([p.metrics[k] for p in parts]) for k in parts[0].metrics},
        class_stats=class_stats,
        top_image_index=np.concatenate([p.top_image_index for p in parts]),
        top_image_activation=np.concatenate([p.top_image_activation for p in parts]),
        top_image_class=np.concatenate([p.top_image_class for p in parts]),
        group_metrics={
            g: {c: np.concatenate([p.group_metrics[g][c] for p in parts]) for c in GROUP_MEASURES}
            for g in parts[0].group_metrics
        },
        class_counts=parts[0].class_counts,
        **{f: np.concatenate([getattr(p, f) for p in parts]) for f in _BOTTOM_FIELDS},
    )


_BOTTOM_FIELDS = ("bottom_image_index", "bottom_image_activation", "bottom_image_class")


def _write_layer(
    conn: Connection,
    run_id: int,
    unit_ids: np.ndarray,
    scores: LayerScores,
    image_index: np.ndarray,
    labels: np.ndarray,
    image_keys: Sequence[str],
    group_ids: Mapping[str, int],
) -> None:
    """One layer's rows; `image_index` maps the scored images to the run's images, whose
    `labels` and `image_keys` are given."""
    write_unit_metrics(conn, run_id, unit_ids, scores.metrics, n_images=len(image_index))
    write_class_stats(conn, run_id, unit_ids, scores.class_stats)
    top = scores.top_image_index
    write_top_images(
        conn,
        run_id,
        unit_ids,
        np.where(top >= 0, image_index[np.maximum(top, 0)], -1),
        scores.top_image_activation,
        labels,
        image_keys,
    )
    bottom = scores.bottom_image_index
    write_bottom_images(
        conn,
        run_id,
        unit_ids,
        np.where(bottom >= 0, image_index[np.maximum(bottom, 0)], -1),
        scores.bottom_image_activation,
        labels,
        image_keys,
    )
    for group, metrics in scores.group_metrics.items():
        write_group_metrics(conn, run_id, unit_ids, group_ids[group], metrics)
