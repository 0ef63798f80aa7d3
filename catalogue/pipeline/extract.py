"""Extraction into the catalogue: validate, register model and dataset, run, record.

Everything that can be wrong with the request (an unknown layer, an empty
folder, a model/dataset class mismatch, a bad option, an output path that is a
folder or holds another run) is checked before the catalogue is touched: a bad
request writes no dataset, model or run row. The HDF5 file's name is derived from the run's parameters, so running
the same command again resumes the same file (see `catalogue.extraction`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from sqlalchemy import Engine

from catalogue.cluster import Cluster
from catalogue.config import get_settings, resolve_device
from catalogue.data import ImageDataset
from catalogue.db.registry import register_dataset, register_model_info
from catalogue.db.runs import recorded_run, run_key
from catalogue.extraction import (
    ExtractionSummary,
    check_output,
    check_runtime_options,
    extract_activations,
    plan_extraction,
)
from catalogue.models import ModelInfo
from catalogue.provenance import dataset_fingerprint

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
    batch_size: int = 64,
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
    actors (`catalogue.cluster.extract`); the file reads the same and the run
    has the same parameters, so either path reuses the other's finished file.
    """
    check_runtime_options(batch_size, workers)
    device = resolve_device(device, here=cluster is None)
    plan = plan_extraction(
        model, dataset, layers, reduce=reduce, keep_maps=keep_maps, limit=limit, autocast=autocast
    )
    infos, params = plan.layers, plan.params
    key = run_key("extract", params)
    if out_path is None:
        out_path = (
            get_settings().runs_dir / f"{_slug(model.name)}-{_slug(dataset.name)}-{key[:10]}.h5"
        )
    out_path = Path(out_path).resolve()
    check_output(out_path, params)

    with engine.begin() as conn:
        model_record = register_model_info(conn, model, infos)
        dataset_record = register_dataset(
            conn,
            name=dataset.name,
            kind=type(dataset).__name__,
            source=str(dataset.source) if dataset.source else None,
            class_keys=list(dataset.class_keys),
            class_names=list(dataset.class_names),
        )
    with recorded_run(
        engine,
        "extract",
        params,
        label=f"{model.name} on {dataset.name}",
        model_id=model_record.id,
        dataset_id=dataset_record.id,
        h5_path=str(out_path),
        provenance={
            "device": device,
            "dataset": dataset_fingerprint(dataset.class_keys, plan.n_images),
        },
    ) as run:
        extract = extract_activations
        if cluster is not None:
            from catalogue.cluster.extract import extract_on_cluster
            from catalogue.store.shards import DEFAULT_SHARD_IMAGES

            extract = partial(
                extract_on_cluster, cluster, shard_images=shard_images or DEFAULT_SHARD_IMAGES
            )
        summary = extract(
            model,
            dataset,
            [i.name for i in infos],
            out_path,
            reduce=reduce,
            keep_maps=plan.kept_maps,
            device=device,
            batch_size=batch_size,
            workers=workers,
            limit=limit,
            strict=strict,
            autocast=autocast,
            on_progress=run.watch(on_progress),
        )
        if run.finished_elsewhere:
            return ExtractResult(run_id=run.id, summary=summary, finished_elsewhere=True)
        run.complete(
            stats={
                "n_images": summary.n_images,
                "n_skipped": summary.n_skipped,
                "skipped": [
                    {"key": k, "reason": r} for k, r in summary.skipped[:MAX_SKIPPED_LISTED]
                ],
                "accuracy": summary.accuracy,
                "images_per_second": summary.images_per_second,
                "resumed_from": summary.resumed_from,
                "layers": {i.name: list(i.output_shape) for i in summary.layers},
                **summary.runtime,
            }
        )
    return ExtractResult(run_id=run.id, summary=summary)
