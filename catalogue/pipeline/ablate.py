"""Single-unit ablation and class-ablation curves of an extraction run, into the catalogue.

`ablate_into_catalogue` loads the run's model again (`catalogue.pipeline.reload`,
checked against the run's checksum), and for every chosen layer replaces each
unit's whole activation by 0 (or its mean) and counts every class's correct
images over the run's images (`catalogue.ablation`); then, per class, the curves
of Bau et al. (2020). The full units × classes matrix goes to a new HDF5 file of
the ablation run (the extraction's file is only read); Postgres gets, in the
run's one transaction, per unit the overall change, the ten most-hurt classes
and the change for the unit's precision, max-informedness, CCMAS and detector-bar classes as
the newest scoring run of the extraction names them (`unit_ablation`,
`unit_ablation_class`), and the curves (`class_ablation_curve`).

An fc layer's output is read from the extraction store (no image is loaded, no
earlier layer runs); a conv layer's is computed from the images once per batch
(the store holds only a reduced value per unit).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sqlalchemy import Connection, Engine

from catalogue.ablation import (
    RANKINGS,
    VALUES,
    ClassScores,
    CurvePlan,
    CurvePoint,
    LayerAblation,
    ablate_layer,
    choose_rows,
    class_scores,
    concatenate_scores,
    dataset_indices,
)
from catalogue.ablation.feeds import layer_feed
from catalogue.ablation.h5 import write_ablation_file
from catalogue.ablation.rankings import check_rankings
from catalogue.cluster import Cluster
from catalogue.config import get_settings, resolve_device
from catalogue.data import ImageDataset
from catalogue.db.ablation import (
    latest_done_run,
    selective_classes,
    write_curves,
    write_hurt_classes,
    write_unit_ablation,
)
from catalogue.db.registry import load_model_record_by_id
from catalogue.db.runs import done_run_id, find_run, recorded_run, run_key
from catalogue.errors import InputError, NotFound
from catalogue.measures import SELECTIVE_CLASSES
from catalogue.models import ModelInfo, prepared
from catalogue.pipeline.reload import check_same_weights, dataset_for_run, model_for_run
from catalogue.provenance import dataset_fingerprint
from catalogue.store import ActivationStore

N_HURT = 10

#: on_progress(layer, done, total): configuration × image evaluations of the layer
AblateProgress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class CurveOptions:
    """Which class-ablation curves to compute (Bau et al. 2020)."""

    rankings: Sequence[str] = RANKINGS
    classes: Sequence[int] | None = None  # None: every class
    max_k: int | None = None  # None: up to every unit of the layer
    seed: int = 0

    def params(self) -> dict[str, Any]:
        return {
            "rankings": list(self.rankings),
            "classes": None if self.classes is None else [int(c) for c in self.classes],
            "max_k": self.max_k,
            "seed": self.seed,
        }


DEFAULT_CURVES = CurveOptions()


@dataclass
class AblateResult:
    run_id: int
    path: Path
    n_images: int
    layers: dict[str, LayerAblation] = field(default_factory=dict)
    curves: dict[str, list[CurvePoint]] = field(default_factory=dict)
    reused: bool = False


def ablate_into_catalogue(
    engine: Engine,
    extract_run: str | int,
    layers: Sequence[str],
    *,
    value: str = "zero",
    images: str | int = "all",
    curves: CurveOptions | None = DEFAULT_CURVES,
    model: ModelInfo | None = None,
    dataset: ImageDataset | str | None = None,
    device: str = "auto",
    batch_size: int = 64,
    workers: int = 0,
    max_rows: int | None = None,
    use_store: bool = True,
    on_progress: AblateProgress | None = None,
    reuse: bool = False,
    cluster: Cluster | None = None,
    block_units: int | None = None,
) -> AblateResult:
    """Ablate every unit of ``layers`` of an extraction run; record the run.

    ``images``: all, correct or a number (a class-balanced subset; `choose_rows`).
    ``model``: the run's model (default: loaded again from the catalogue's record).
    ``dataset``: its images (an `ImageDataset`, or a dataset spec), needed for conv layers.
    ``use_store``: read fc layers from the extraction store (False: from the images,
    as conv layers; the benchmark and the tests compare both).
    With ``reuse``, a finished ablation with the same parameters is returned as it is.
    With ``cluster``, blocks of ``block_units`` configurations of each layer are Ray tasks
    (`catalogue.cluster.ablate`; default: the layer split evenly over the workers); the
    rows and the HDF5 matrix are the same.
    """
    if value not in VALUES:
        raise InputError(f"--value must be one of {', '.join(VALUES)}, got {value!r}.")
    if not layers:
        raise InputError("name the layers to ablate with --layers.")
    if batch_size < 1:
        raise InputError(f"--batch-size must be at least 1, got {batch_size}.")
    if block_units is not None and block_units < 1:
        raise InputError(f"--block-units must be at least 1, got {block_units}.")
    if curves is not None:
        check_rankings(curves.rankings)
        if curves.max_k is not None and curves.max_k < 1:
            raise InputError(f"--curve-max-k must be at least 1, got {curves.max_k}.")
    with engine.connect() as conn:
        run = find_run(conn, extract_run, kind="extract")
        if run.status != "done":
            raise InputError(
                f"extraction run {run.id} is {run.status}; finish it before ablating its units."
            )
        model_record = load_model_record_by_id(conn, run.model_id)
        score_run = latest_done_run(conn, "score", parent_id=run.id)
    path = Path(run.h5_path or "")
    if not path.is_file():
        raise NotFound(f"the activation file of run {run.id} is missing: {path}.")
    params_run = dict(run.params or {})

    with ActivationStore.open(path) as store:
        if not store.is_complete:
            raise InputError(f"{path} is incomplete; resume the extraction first.")
        unknown = [n for n in layers if n not in store.layer_names]
        if unknown:
            raise NotFound(
                f"run {run.id} has no layer {', '.join(unknown)}; it has "
                f"{', '.join(store.layer_names)}."
            )
        labels_all = store.labels.astype(np.int64)
        rows = choose_rows(labels_all, store.correct, images)
        if rows.size == 0:
            raise InputError(f"run {run.id} has no images to ablate over ({images}).")
        labels = labels_all[rows]
        n_classes = store.n_classes
        class_keys, class_names = store.class_keys, store.class_names
        params = {
            "extract_run": run.id,
            "checksum": params_run.get("checksum"),
            "layers": list(layers),
            "value": value,
            "images": str(images).strip().lower(),
            "curves": None if curves is None else curves.params(),
        }
        key = run_key("ablate", params)
        if reuse:
            with engine.connect() as conn:
                existing = done_run_id(conn, "ablate", params)
            if existing is not None:
                return AblateResult(existing, _out_path(run.id, key), int(rows.size), reused=True)
        if model is None:
            model = model_for_run(
                name=model_record.name,
                architecture=_architecture(engine, run.model_id),
                weights=params_run.get("weights"),
                params=params_run,
                n_classes=n_classes,
            )
        check_same_weights(model, params_run, run.id)
        kinds = {name: store.layer_info(name)["kind"] for name in layers}
        selectivity_rows = _selectivity_rows(store, score_run)
        out_path = _out_path(run.id, key)
        with recorded_run(
            engine,
            "ablate",
            params,
            label=f"{model.name}: ablate {', '.join(layers)} ({value})",
            model_id=run.model_id,
            dataset_id=run.dataset_id,
            parent_id=run.id,
            h5_path=str(out_path),
            provenance={"device": device, "dataset": dataset_fingerprint(class_keys, rows.size)},
        ) as ablate_run:
            if ablate_run.finished_elsewhere:  # another process ran it while this one waited
                return AblateResult(ablate_run.id, out_path, int(rows.size), reused=True)
            data: ImageDataset | None = None
            needs_images = [n for n in layers if kinds[n] != "fc" or not use_store]
            if needs_images:
                data = (
                    dataset
                    if isinstance(dataset, ImageDataset)
                    else dataset_for_run(
                        params_run,
                        model,
                        class_keys=class_keys,
                        class_names=class_names,
                        spec=dataset,
                    )
                )
            results: dict[str, LayerAblation] = {}
            points: dict[str, list[CurvePoint]] = {}
            image_keys = store.image_keys
            indices = (
                dataset_indices(data, [image_keys[i] for i in rows]) if data is not None else None
            )

            def curve_plan(name: str) -> CurvePlan | None:
                if curves is None:
                    return None
                return CurvePlan(
                    rankings=curves.rankings,
                    classes=curves.classes,
                    max_k=curves.max_k,
                    seed=curves.seed,
                    scores=_layer_scores(store, name, selectivity_rows, n_classes),
                )

            def layer_progress(name: str) -> Callable[[int, int], None] | None:
                return (lambda d, t: on_progress(name, d, t)) if on_progress else None

            if cluster is not None:
                from catalogue.cluster.ablate import AblateContext, ablate_in_blocks
                from catalogue.cluster.handles import ModelHandle

                cluster.uses_gpus(device)  # refuses cuda on a cluster without GPUs
                context = AblateContext(
                    ModelHandle.of(model), str(path.resolve()), rows, labels, n_classes, kinds,
                    data, indices, use_store, batch_size, workers, device, max_rows,
                )  # fmt: skip
                for name in layers:
                    results[name], points[name] = ablate_in_blocks(
                        cluster,
                        context,
                        name,
                        n_units=store.layer_shape(name)[1],
                        value=value,
                        curves=curve_plan(name),
                        block_units=block_units,
                        on_progress=layer_progress(name),
                    )
            else:
                target = torch.device(resolve_device(device))
                with (
                    prepared(model, device=target, channels_last=True) as ready,
                    torch.inference_mode(),
                ):
                    for name in layers:
                        split = ready.split(name)
                        feed = layer_feed(
                            ready,
                            split,
                            store,
                            kind=kinds[name],
                            rows=rows,
                            labels=labels,
                            dataset=data,
                            indices=indices,
                            use_store=use_store,
                            batch_size=batch_size,
                            workers=workers,
                            device=target,
                        )
                        results[name], points[name] = ablate_layer(
                            split.tail,
                            feed,
                            layer=name,
                            kind=kinds[name],
                            n_units=store.layer_shape(name)[1],
                            n_classes=n_classes,
                            value=value,
                            curves=curve_plan(name),
                            max_rows=max_rows,
                            device=target,
                            on_progress=layer_progress(name),
                        )
            write_ablation_file(
                out_path,
                params=params,
                run_id=ablate_run.id,
                extract_run=run.id,
                class_keys=class_keys,
                class_names=class_names,
                rows=rows,
                labels=labels,
                layers=list(results.values()),
            )

            def write(conn: Connection, run_id: int) -> None:
                score_id = score_run.id if score_run is not None else None
                for name, result in results.items():
                    record = model_record.layer(name)
                    _write_layer(conn, run_id, record.unit_ids, result, score_id)
                    write_curves(conn, run_id, record.id, points[name])

            ablate_run.complete(
                write,
                stats={
                    "n_images": int(rows.size),
                    "score_run": score_run.id if score_run is not None else None,
                    "layers": {
                        n: {
                            "kind": r.kind,
                            "n_units": r.n_units,
                            "baseline_accuracy": r.baseline_accuracy,
                            "mean_change": float(np.nanmean(r.overall_change)),
                            "min_change": float(np.nanmin(r.overall_change)),
                            "from_store": kinds[n] == "fc" and use_store,
                            "curve_points": len(points[n]),
                        }
                        for n, r in results.items()
                    },
                }
                | (cluster.describe() if cluster else {}),
            )
    return AblateResult(ablate_run.id, out_path, int(rows.size), results, points)


def _out_path(run_id: int, key: str) -> Path:
    return get_settings().runs_dir / f"ablate-run{run_id}-{key[:10]}.h5"


def _architecture(engine: Engine, model_id: int) -> str:
    from sqlalchemy import select

    from catalogue.db.schema import Model

    with engine.connect() as conn:
        return str(conn.execute(select(Model.architecture).where(Model.id == model_id)).scalar())


def _selectivity_rows(store: ActivationStore, score_run: Any) -> np.ndarray:
    """The rows the extraction's scoring scores (correct images unless it scored all)."""
    all_images = bool((score_run.params or {}).get("all_images")) if score_run else False
    n = store.n_complete
    return np.arange(n) if all_images else np.flatnonzero(store.correct)


def _layer_scores(
    store: ActivationStore, layer: str, rows: np.ndarray, n_classes: int
) -> ClassScores:
    labels = store.labels[rows]
    parts = [
        class_scores(block, labels, n_classes)
        for _start, _stop, block in store.iter_unit_blocks(layer, 256, rows=rows)
    ]
    return concatenate_scores(parts)


def _write_layer(
    conn: Connection,
    run_id: int,
    unit_ids: np.ndarray,
    result: LayerAblation,
    score_run_id: int | None,
) -> None:
    change = result.accuracy_change
    selective = (
        selective_classes(conn, score_run_id, unit_ids)
        if score_run_id is not None
        else {c: np.full(result.n_units, -1) for c in SELECTIVE_CLASSES}
    )
    selective_change = {}
    for c, classes in selective.items():
        valid = classes >= 0
        values = np.full(result.n_units, np.nan)
        values[valid] = change[np.flatnonzero(valid), classes[valid]]
        selective_change[c] = values
    write_unit_ablation(
        conn,
        run_id,
        unit_ids,
        replacement=result.replacement,
        n_images=result.n_images,
        accuracy=result.accuracy,
        accuracy_change=result.overall_change,
        selective=selective,
        selective_change=selective_change,
        score_run_id=score_run_id,
    )
    classes, changes = result.most_hurt(N_HURT)
    write_hurt_classes(conn, run_id, unit_ids, classes, changes)
