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

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
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
from catalogue.ablation.blocks import AblateContext, ablate_in_blocks
from catalogue.ablation.feeds import layer_feed
from catalogue.ablation.h5 import write_ablation_file
from catalogue.ablation.rankings import check_rankings
from catalogue.cluster import Cluster, resolve_device_for
from catalogue.cluster.handles import ModelHandle
from catalogue.config import get_settings
from catalogue.data import ImageDataset
from catalogue.db.ablation import (
    latest_done_run,
    selective_classes,
    write_curves,
    write_hurt_classes,
    write_unit_ablation,
)
from catalogue.db.runs import run_key
from catalogue.errors import InputError
from catalogue.measures import SELECTIVE_CLASSES
from catalogue.models import ModelInfo, prepared
from catalogue.pipeline.defaults import EXTRACT_BATCH_SIZE
from catalogue.pipeline.lifecycle import Step, finished_run, run_step
from catalogue.pipeline.reload import check_same_weights, dataset_for_run, recorded_model
from catalogue.pipeline.source import ExtractionSource, check_layers, extraction_source
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


@dataclass(frozen=True)
class AblationPlan:
    """A checked ablation: the extraction, its layers, the images, the run's identity and file."""

    source: ExtractionSource
    layers: list[str]
    kinds: dict[str, str]
    n_units: dict[str, int]
    rows: np.ndarray  # the store rows ablated over
    labels: np.ndarray  # their classes
    n_classes: int
    score_run: Any | None  # the newest scoring of the extraction: the units' classes
    params: dict[str, Any]
    out_path: Path

    def needs_images(self, use_store: bool) -> list[str]:
        """The layers fed from the images (conv layers; fc layers too without the store)."""
        return [n for n in self.layers if self.kinds[n] != "fc" or not use_store]

    def reused(self, run_id: int) -> AblateResult:
        return AblateResult(run_id, self.out_path, int(self.rows.size), reused=True)


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
    batch_size: int = EXTRACT_BATCH_SIZE,
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
    (`catalogue.ablation.blocks`; default: the layer split evenly over the workers); the
    rows and the HDF5 matrix are the same. Every option, the model and the images are
    checked before the run is recorded.
    """
    _check_options(value, layers, batch_size, workers, block_units, curves)
    device = resolve_device_for(cluster, device)
    plan = plan_ablation(engine, extract_run, layers, value=value, images=images, curves=curves)
    spec = plan.source.run_spec(
        "ablate",
        plan.params,
        f"ablate {', '.join(plan.layers)} ({value})",
        h5_path=plan.out_path,
        provenance={
            "device": device,
            "dataset": dataset_fingerprint(plan.source.dataset.class_keys, int(plan.rows.size)),
        },
    )
    existing = finished_run(engine, spec) if reuse else None
    if existing is not None:
        return plan.reused(existing)
    model = _run_model(engine, plan.source, model)
    spec = replace(spec, label=f"{model.name}: ablate {', '.join(plan.layers)} ({value})")
    feed = _Feed(plan, model, _run_images(plan, model, dataset, use_store), use_store)
    work = _Work(feed, value, curves, device, batch_size, workers, max_rows, cluster, block_units)

    def compute(step: Step) -> _Ablated:
        ablated = _ablate_layers(work, step.progress)
        _write_file(plan, step.run_id, ablated)
        return ablated

    step = run_step(
        engine, spec, compute, write=lambda conn, run_id, done: _write(conn, run_id, plan, done),
        stats=lambda done: _stats(plan, done, use_store), on_progress=on_progress,
        cluster=cluster,
    )  # fmt: skip
    if step.value is None:
        return plan.reused(step.run_id)
    return AblateResult(
        step.run_id, plan.out_path, int(plan.rows.size), step.value.layers, step.value.curves
    )


def _check_options(
    value: str,
    layers: Sequence[str],
    batch_size: int,
    workers: int,
    block_units: int | None,
    curves: CurveOptions | None,
) -> None:
    if value not in VALUES:
        raise InputError(
            f"value must be one of {', '.join(VALUES)}, got {value!r}.", argument="value"
        )
    if not layers:
        raise InputError("name the layers to ablate in layers.", argument="layers")
    checks = [
        (batch_size >= 1, "batch_size", f"must be at least 1, got {batch_size}."),
        (workers >= 0, "workers", f"must be 0 or more, got {workers}."),
        (
            block_units is None or block_units >= 1,
            "block_units",
            f"must be at least 1, got {block_units}.",
        ),
    ]
    if curves is not None:
        check_rankings(curves.rankings)
        max_k = curves.max_k
        checks.append(
            (max_k is None or max_k >= 1, "curves.max_k", f"must be at least 1, got {max_k}.")
        )
    for ok, argument, rule in checks:
        if not ok:
            raise InputError(f"{argument} {rule}", argument=argument)


def plan_ablation(
    engine: Engine,
    extract_run: str | int,
    layers: Sequence[str],
    *,
    value: str,
    images: str | int,
    curves: CurveOptions | None,
) -> AblationPlan:
    """Check an ablation against the extraction run and its file; nothing is written."""
    source = extraction_source(engine, extract_run, then="ablate its units")
    with engine.connect() as conn:
        score_run = latest_done_run(conn, "score", parent_id=source.run.id)
    with source.store() as store:
        names = check_layers(store, layers, source.run.id)
        rows = choose_rows(store.labels.astype(np.int64), store.correct, images)
        if rows.size == 0:
            raise InputError(
                f"run {source.run.id} has no images to ablate over ({images}).", argument="images"
            )
        _check_curve_classes(curves, store.n_classes, source.run.id)
        params = {
            "extract_run": source.run.id,
            "checksum": source.params.get("checksum"),
            "layers": names,
            "value": value,
            "images": str(images).strip().lower(),
            "curves": None if curves is None else curves.params(),
        }
        return AblationPlan(
            source, names, {n: store.layer_info(n)["kind"] for n in names},
            {n: store.layer_shape(n)[1] for n in names}, rows,
            store.labels.astype(np.int64)[rows], store.n_classes, score_run, params,
            _out_path(source.run.id, run_key("ablate", params)),
        )  # fmt: skip


def _check_curve_classes(curves: CurveOptions | None, n_classes: int, run_id: int) -> None:
    if curves is None or curves.classes is None:
        return
    bad = [int(c) for c in curves.classes if not 0 <= int(c) < n_classes]
    if bad:
        more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
        raise InputError(
            f"curves.classes {', '.join(map(str, bad[:3]))}{more} are not class indices of "
            f"run {run_id}: it has classes 0..{n_classes - 1}.",
            argument="curves.classes",
        )


def _run_model(engine: Engine, source: ExtractionSource, model: ModelInfo | None) -> ModelInfo:
    """The extraction's network: the caller's, or loaded again from the catalogue's record;
    either way with the run's weights."""
    if model is None:
        with source.store() as store:
            n_classes = store.n_classes
        model = recorded_model(engine, source.run.model_id, source.params, n_classes)
    check_same_weights(model, source.params, source.run.id)
    return model


def _run_images(
    plan: AblationPlan, model: ModelInfo, dataset: ImageDataset | str | None, use_store: bool
) -> tuple[ImageDataset, np.ndarray] | None:
    """The run's images and the dataset index of each ablated row, for the layers fed from
    the images (None: every layer is read from the store)."""
    if not plan.needs_images(use_store):
        return None
    with plan.source.store() as store:
        keys, names, image_keys = store.class_keys, store.class_names, store.image_keys
    data = (
        dataset
        if isinstance(dataset, ImageDataset)
        else dataset_for_run(
            plan.source.params, model, class_keys=keys, class_names=names, spec=dataset
        )
    )
    return data, dataset_indices(data, [image_keys[i] for i in plan.rows])


@dataclass(frozen=True)
class _Feed:
    """What the layers' outputs are computed from: the model, the store, the images."""

    plan: AblationPlan
    model: ModelInfo
    images: tuple[ImageDataset, np.ndarray] | None
    use_store: bool


@dataclass(frozen=True)
class _Work:
    """How the layers are ablated: the replacement, the curves, where and in what batches."""

    feed: _Feed
    value: str
    curves: CurveOptions | None
    device: str
    batch_size: int
    workers: int
    max_rows: int | None
    cluster: Cluster | None
    block_units: int | None


@dataclass
class _Ablated:
    layers: dict[str, LayerAblation] = field(default_factory=dict)
    curves: dict[str, list[CurvePoint]] = field(default_factory=dict)


def _ablate_layers(work: _Work, progress: AblateProgress) -> _Ablated:
    """Every layer's single-unit ablation and curves: here, or in blocks on the cluster."""
    plan = work.feed.plan
    with ActivationStore.open(plan.source.path) as store:
        scores_rows = _selectivity_rows(store, plan.score_run)
        plans = {
            name: _curve_plan(work.curves, store, name, scores_rows, plan.n_classes)
            for name in plan.layers
        }
    ablated = _Ablated()
    run = _ablate_on_cluster if work.cluster is not None else _ablate_here
    for name, (result, points) in run(work, plans, progress).items():
        ablated.layers[name], ablated.curves[name] = result, points
    return ablated


def _curve_plan(
    curves: CurveOptions | None,
    store: ActivationStore,
    layer: str,
    rows: np.ndarray,
    n_classes: int,
) -> CurvePlan | None:
    if curves is None:
        return None
    return CurvePlan(
        rankings=curves.rankings,
        classes=curves.classes,
        max_k=curves.max_k,
        seed=curves.seed,
        scores=_layer_scores(store, layer, rows, n_classes),
    )


def _layer_progress(progress: AblateProgress, name: str) -> Callable[[int, int], None]:
    return lambda done, total: progress(name, done, total)


def _ablate_here(
    work: _Work, curves: Mapping[str, CurvePlan | None], progress: AblateProgress
) -> dict[str, tuple[LayerAblation, list[CurvePoint]]]:
    """Each layer in this process: the rest of the network over the layer's feed."""
    feed, plan = work.feed, work.feed.plan
    data, indices = feed.images if feed.images is not None else (None, None)
    target = torch.device(work.device)
    out = {}
    with (
        ActivationStore.open(plan.source.path) as store,
        prepared(feed.model, device=target, channels_last=True) as ready,
        torch.inference_mode(),
    ):
        for name in plan.layers:
            split = ready.split(name)
            layer_input = layer_feed(
                ready, split, store, kind=plan.kinds[name], rows=plan.rows, labels=plan.labels,
                dataset=data, indices=indices, use_store=feed.use_store,
                batch_size=work.batch_size, workers=work.workers, device=target,
            )  # fmt: skip
            out[name] = ablate_layer(
                split.tail, layer_input, layer=name, kind=plan.kinds[name],
                n_units=plan.n_units[name], n_classes=plan.n_classes, value=work.value,
                curves=curves[name], max_rows=work.max_rows, device=target,
                on_progress=_layer_progress(progress, name),
            )  # fmt: skip
    return out


def _ablate_on_cluster(
    work: _Work, curves: Mapping[str, CurvePlan | None], progress: AblateProgress
) -> dict[str, tuple[LayerAblation, list[CurvePoint]]]:
    """Each layer in blocks of configurations, as Ray tasks (`catalogue.ablation.blocks`)."""

    feed, plan = work.feed, work.feed.plan
    data, indices = feed.images if feed.images is not None else (None, None)
    context = AblateContext(
        model=ModelHandle.of(feed.model),
        path=str(plan.source.path.resolve()),
        rows=plan.rows,
        labels=plan.labels,
        n_classes=plan.n_classes,
        kinds=plan.kinds,
        dataset=data,
        indices=indices,
        use_store=feed.use_store,
        batch_size=work.batch_size,
        workers=work.workers,
        device=work.device,
        max_rows=work.max_rows,
    )
    out = {}
    for name in plan.layers:
        out[name] = ablate_in_blocks(
            work.cluster, context, name, n_units=plan.n_units[name], value=work.value,
            curves=curves[name], block_units=work.block_units,
            on_progress=_layer_progress(progress, name),
        )  # fmt: skip
    return out


def _write_file(plan: AblationPlan, run_id: int, ablated: _Ablated) -> None:
    """The units × classes matrices into the ablation run's own HDF5 file."""
    with ActivationStore.open(plan.source.path) as store:
        class_keys, class_names = store.class_keys, store.class_names
    write_ablation_file(
        plan.out_path,
        params=plan.params,
        run_id=run_id,
        extract_run=plan.source.run.id,
        class_keys=class_keys,
        class_names=class_names,
        rows=plan.rows,
        labels=plan.labels,
        layers=list(ablated.layers.values()),
    )


def _write(conn: Connection, run_id: int, plan: AblationPlan, ablated: _Ablated) -> None:
    score_id = plan.score_run.id if plan.score_run is not None else None
    for name, result in ablated.layers.items():
        record = plan.source.model.layer(name)
        _write_layer(conn, run_id, record.unit_ids, result, score_id)
        write_curves(conn, run_id, record.id, ablated.curves[name])


def _stats(plan: AblationPlan, ablated: _Ablated, use_store: bool) -> dict[str, Any]:
    return {
        "n_images": int(plan.rows.size),
        "score_run": plan.score_run.id if plan.score_run is not None else None,
        "layers": {
            n: {
                "kind": r.kind,
                "n_units": r.n_units,
                "baseline_accuracy": r.baseline_accuracy,
                "mean_change": float(np.nanmean(r.overall_change)),
                "min_change": float(np.nanmin(r.overall_change)),
                "from_store": plan.kinds[n] == "fc" and use_store,
                "curve_points": len(ablated.curves[n]),
            }
            for n, r in ablated.layers.items()
        },
    }


def _out_path(run_id: int, key: str) -> Path:
    return get_settings().runs_dir / f"ablate-run{run_id}-{key[:10]}.h5"


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
