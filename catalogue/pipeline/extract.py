"""Extraction into the catalogue: validate, register model and dataset, run, record.

Everything that can be wrong with the request (an unknown layer, an empty
folder, a model/dataset class mismatch, a bad option, an output path that is a
folder or holds another run, with ``strict`` an unreadable image) is checked
before the catalogue is touched: a bad request writes no dataset, model or run
row. The HDF5 file's name is derived from the run's parameters, so running the
same command again resumes the same file (see `catalogue.extraction`); the same
extraction started twice at once waits for the first and finds it done.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from catalogue.cluster import Cluster, resolve_device_for
from catalogue.config import get_settings
from catalogue.data import ImageDataset
from catalogue.db.identities import register_dataset, register_model_info
from catalogue.db.runs import run_key
from catalogue.extraction import (
    ExtractionPlan,
    ExtractionSummary,
    check_options,
    check_output,
    extract_activations,
    plan_extraction,
)
from catalogue.extraction.plan import check_images
from catalogue.models import ModelInfo
from catalogue.pipeline.defaults import EXTRACT_BATCH_SIZE
from catalogue.pipeline.lifecycle import RunSpec, Step, run_step

MAX_SKIPPED_LISTED = 1000


@dataclass(frozen=True)
class ExtractResult:
    run_id: int
    summary: ExtractionSummary
    #: another process extracted the same run while this one waited for it
    finished_elsewhere: bool = False


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")[:60] or "x"


def extract_into_catalogue(
    engine: Engine,
    model: ModelInfo,
    dataset: ImageDataset,
    layers: Sequence[str] | None = None,
    *,
    reduce: str = "max",
    keep_maps: bool | Sequence[str] = False,
    device: str = "auto",
    batch_size: int = EXTRACT_BATCH_SIZE,
    workers: int = 0,
    limit: int | None = None,
    strict: bool = False,
    autocast: bool = False,
    out_path: str | Path | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    cluster: Cluster | None = None,
    shard_images: int | None = None,
) -> ExtractResult:
    """Extract `model` over `dataset` into the run's HDF5 file and record the run.

    With `cluster`, the images are extracted in shards of `shard_images` by Ray
    actors (`catalogue.extraction.shards`); the file reads the same and the run
    has the same parameters, so either path reuses the other's finished file.
    """
    check_options(batch_size, workers, shard_images)
    resolve_device_for(cluster, device)
    plan = plan_extraction(
        model, dataset, layers, reduce=reduce, keep_maps=keep_maps, limit=limit, autocast=autocast
    )
    out = _output(model, dataset, plan, out_path)
    if strict:
        check_images(dataset, plan.n_images)

    def extract(step: Step | None = None) -> ExtractionSummary:
        return extract_activations(
            model, dataset, [i.name for i in plan.layers], out,
            reduce=reduce, keep_maps=plan.kept_maps, device=device, batch_size=batch_size,
            workers=workers, limit=limit, strict=strict, autocast=autocast,
            on_progress=step.progress if step is not None else on_progress,
            cluster=cluster, shard_images=shard_images,
        )  # fmt: skip

    step = run_step(
        engine,
        _run_spec(engine, model, dataset, plan, out),
        extract,
        stats=_stats,
        on_progress=on_progress,
    )
    if step.value is None:  # the file is complete: this reads its summary
        return ExtractResult(step.run_id, extract(), finished_elsewhere=True)
    return ExtractResult(step.run_id, step.value)


def _output(
    model: ModelInfo, dataset: ImageDataset, plan: ExtractionPlan, out_path: str | Path | None
) -> Path:
    """The run's file (by default named by its parameters), checked before anything is written."""
    if out_path is None:
        key = run_key("extract", plan.params)
        out_path = (
            get_settings().runs_dir / f"{_slug(model.name)}-{_slug(dataset.name)}-{key[:10]}.h5"
        )
    out = Path(out_path).resolve()
    check_output(out, plan.params)
    return out


def _run_spec(
    engine: Engine, model: ModelInfo, dataset: ImageDataset, plan: ExtractionPlan, out: Path
) -> RunSpec:
    """Register the model and the dataset (the run refers to them) and describe the run."""
    with engine.begin() as conn:
        model_record = register_model_info(conn, model, plan.layers)
        dataset_record = register_dataset(
            conn,
            name=dataset.name,
            kind=type(dataset).__name__,
            source=str(dataset.source) if dataset.source else None,
            class_keys=list(dataset.class_keys),
            class_names=list(dataset.class_names),
        )
    return RunSpec(
        "extract",
        plan.params,
        label=f"{model.name} on {dataset.name}",
        model_id=model_record.id,
        dataset_id=dataset_record.id,
        h5_path=str(out),
    )


def _stats(summary: ExtractionSummary) -> dict[str, Any]:
    return {
        "n_images": summary.n_images,
        "n_skipped": summary.n_skipped,
        "skipped": [{"key": k, "reason": r} for k, r in summary.skipped[:MAX_SKIPPED_LISTED]],
        "accuracy": summary.accuracy,
        "images_per_second": summary.images_per_second,
        "resumed_from": summary.resumed_from,
        "layers": {i.name: list(i.output_shape) for i in summary.layers},
        **summary.runtime,
    }
