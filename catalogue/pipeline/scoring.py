"""Scoring an extraction run into the catalogue.

Reads the run's HDF5 file layer by layer in column blocks (so a 721,536 × 4,096
layer never has to fit in memory), scores each block with
`catalogue.selectivity.score_layer`, and writes `unit_metrics`,
`unit_class_stats`, `unit_top_image` and `unit_group_metrics` for all layers in
one transaction at the end. By default only the correctly classified images are
scored, as in the paper.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Connection, Engine

from catalogue.cluster import Cluster
from catalogue.config import resolve_device
from catalogue.db.registry import (
    DatasetRecord,
    ModelRecord,
    load_dataset_record_by_id,
    load_model_record_by_id,
    register_class_groups,
)
from catalogue.db.results import (
    write_class_stats,
    write_group_metrics,
    write_top_images,
    write_unit_metrics,
)
from catalogue.db.runs import current_state, describe_owner, done_run_id, find_run, recorded_run
from catalogue.errors import InputError, NotFound
from catalogue.groups import group_class_indices
from catalogue.measures import GROUP_MEASURES
from catalogue.provenance import dataset_fingerprint
from catalogue.selectivity import LayerScores, score_layer
from catalogue.store import ActivationStore

DEFAULT_BLOCK_UNITS = 256
#: Top images stored per unit: the 100 that `classes_in_top100` and Rafegas's index read
#: (and the 60 of top-60 precision among them), so a reader can check both on the Unit page.
TOP_IMAGES = 100

#: on_progress(layer, units_done, units_total)
ScoreProgress = Callable[[str, int, int], None]


@dataclass
class ScoreResult:
    run_id: int
    n_images: int
    layers: dict[str, int] = field(default_factory=dict)  # layer → units scored
    reused: bool = False


def _extract_context(
    engine: Engine, extract_run: str | int
) -> tuple[object, ModelRecord, DatasetRecord]:
    with engine.connect() as conn:
        run = find_run(conn, extract_run, kind="extract")
        if run.status != "done":  # a finished run being re-run still has its finished file
            raise InputError(_not_done(run, current_state(conn, run)))
        model = load_model_record_by_id(conn, run.model_id)
        dataset = load_dataset_record_by_id(conn, run.dataset_id)
    return run, model, dataset


def _not_done(run: Any, state: str) -> str:
    """Why an extraction run cannot be scored yet, and what to do; never a reason to wait."""
    resume = "re-run the same `unitcat ingest extract` command to resume it, then score"
    who = describe_owner(run)
    if state == "running":
        return (
            f"extraction run {run.id} is still running ({who}); score it when it is done "
            "(`unitcat runs` shows its status)."
        )
    if state == "interrupted":
        gone = f" ({who}, now gone)" if run.owner_pid is not None else ""
        return f"extraction run {run.id} was interrupted{gone}; {resume}."
    return f"extraction run {run.id} failed ({run.error or 'no message'}); {resume}."


def score_extraction(
    engine: Engine,
    extract_run: str | int,
    *,
    layers: Sequence[str] | None = None,
    all_images: bool = False,
    groups: Mapping[str, Sequence[str]] | None = None,
    device: str | None = None,
    block_units: int = DEFAULT_BLOCK_UNITS,
    n_top_classes: int = 5,
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
    With `cluster`, the blocks of units are Ray tasks (`catalogue.cluster.score`);
    the rows are the same.
    Every option is checked before the run is recorded: a bad one writes nothing.
    """
    if block_units < 1:
        raise InputError(f"--block-units must be at least 1, got {block_units}.")
    device = resolve_device(device, here=cluster is None)
    run, model, dataset = _extract_context(engine, extract_run)
    path = Path(run.h5_path)
    if not path.is_file():
        raise NotFound(f"the activation file of run {run.id} is missing: {path}.")
    with ActivationStore.open(path) as store:
        if not store.is_complete:
            raise InputError(f"{path} is incomplete; resume the extraction first.")
        names = list(layers) if layers else store.layer_names
        unknown = [n for n in names if n not in store.layer_names]
        if unknown:
            raise NotFound(
                f"run {run.id} has no layer {', '.join(unknown)}; it has {', '.join(store.layer_names)}."
            )
        labels = store.labels
        chosen = rows
        if chosen is not None:
            rows = np.asarray(chosen, dtype=bool)
            if rows.shape != labels.shape:
                raise InputError(f"a row mask of {rows.shape} for a store of {labels.shape} rows.")
        else:
            rows = np.ones(len(labels), dtype=bool) if all_images else store.correct.astype(bool)
        if not rows.any():
            raise InputError(
                f"run {run.id} has no correctly classified images to score; use --all-images."
            )
        image_index = np.flatnonzero(rows)
        scored_labels = labels[rows]
        keys = store.image_keys
        class_keys = store.class_keys
        group_indices = group_class_indices(
            groups or {}, class_keys, store.class_names, dataset=dataset.name
        )
        params = {
            "extract_run": run.id,
            "layers": names,
            "all_images": all_images,
            "groups": {g: list(k) for g, k in (groups or {}).items()},
            "n_top_classes": n_top_classes,
            "n_top_images": n_top_images,
        }
        if chosen is not None:
            params["rows_from"] = rows_from
        existing = None
        if reuse:
            with engine.connect() as conn:
                existing = done_run_id(conn, "score", params)
        if existing is not None:
            return ScoreResult(
                run_id=existing,
                n_images=int(rows.sum()),
                layers={n: store.layer_shape(n)[1] for n in names},
                reused=True,
            )
        with recorded_run(
            engine,
            "score",
            params,
            label=f"{model.name} on {dataset.name}" + (" (all images)" if all_images else ""),
            model_id=model.id,
            dataset_id=dataset.id,
            parent_id=run.id,
            h5_path=str(path),
            provenance={
                "device": device,
                "dataset": dataset_fingerprint(class_keys, image_index.size),
            },
        ) as score_run:
            if score_run.finished_elsewhere:
                return ScoreResult(
                    run_id=score_run.id,
                    n_images=int(rows.sum()),
                    layers={n: store.layer_shape(n)[1] for n in names},
                    reused=True,
                )
            watched = score_run.watch(on_progress)
            results: dict[str, LayerScores] = {}
            scored_here = names if cluster is None else []
            if cluster is not None:
                results = _score_on_cluster(
                    cluster, store, names, rows, scored_labels, len(class_keys), group_indices,
                    device=device, block_units=block_units, n_top_classes=n_top_classes,
                    n_top_images=n_top_images, on_progress=watched,
                )  # fmt: skip
            for name in scored_here:
                results[name] = _score_layer(
                    store,
                    name,
                    rows,
                    scored_labels,
                    len(class_keys),
                    group_indices,
                    device=device,
                    block_units=block_units,
                    n_top_classes=n_top_classes,
                    n_top_images=n_top_images,
                    on_progress=watched,
                )

            def write(conn: Connection, run_id: int) -> None:
                group_ids = register_class_groups(conn, dataset, groups or {}) if groups else {}
                for name, scores in results.items():
                    _write_layer(
                        conn,
                        run_id,
                        model.layer(name).unit_ids,
                        scores,
                        image_index,
                        labels,
                        keys,
                        group_ids,
                    )

            stats = {"n_images": int(rows.sum()), "layers": names}
            score_run.complete(write, stats=stats | (cluster.describe() if cluster else {}))
    return ScoreResult(
        run_id=score_run.id,
        n_images=int(rows.sum()),
        layers={n: r.n_units for n, r in results.items()},
    )


def _score_layer(
    store: ActivationStore,
    layer: str,
    rows: np.ndarray,
    labels: np.ndarray,
    n_classes: int,
    groups: Mapping[str, Sequence[int]],
    *,
    device: str | None,
    block_units: int,
    n_top_classes: int,
    n_top_images: int,
    on_progress: ScoreProgress | None,
) -> LayerScores:
    n_units = store.layer_shape(layer)[1]
    parts: list[LayerScores] = []
    done = 0
    if on_progress:
        on_progress(layer, 0, n_units)
    for _start, _stop, values in store.iter_unit_blocks(layer, block_units, rows=rows):
        parts.append(
            score_layer(
                values,
                labels,
                n_classes,
                groups=groups,
                n_top_classes=n_top_classes,
                n_top_images=n_top_images,
                device=device,
            )
        )
        done += values.shape[1]
        if on_progress:
            on_progress(layer, done, n_units)
    return _concatenate(parts)


def _score_on_cluster(
    cluster: Cluster,
    store: ActivationStore,
    names: Sequence[str],
    rows: np.ndarray,
    labels: np.ndarray,
    n_classes: int,
    groups: Mapping[str, Sequence[int]],
    *,
    device: str | None,
    block_units: int,
    n_top_classes: int,
    n_top_images: int,
    on_progress: ScoreProgress | None,
) -> dict[str, LayerScores]:
    """The same blocks as `_score_layer`, scored by Ray tasks and joined in the same order."""
    from catalogue.cluster.score import ScoreContext, score_on_cluster

    context = ScoreContext(
        str(store.path.resolve()),
        rows,
        labels,
        n_classes,
        groups,
        n_top_classes,
        n_top_images,
        device,
    )
    parts = score_on_cluster(
        cluster,
        context,
        {name: store.layer_shape(name)[1] for name in names},
        block_units=block_units,
        on_progress=on_progress,
    )
    return {name: _concatenate(parts[name]) for name in names}


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
    )


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
    for group, metrics in scores.group_metrics.items():
        write_group_metrics(conn, run_id, unit_ids, group_ids[group], metrics)
