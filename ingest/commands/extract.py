"""`unitcat ingest extract`: activations of chosen layers over a labelled image set."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import typer

from catalogue.pipeline.defaults import EXTRACT_BATCH_SIZE
from ingest.console import console, progress
from ingest.options import (
    BatchSize,
    ClusterSpec,
    DatasetSpec,
    Device,
    ModelSpec,
    Name,
    NumClasses,
    Weights,
    WeightsFile,
    WeightsSeed,
    load_model,
    open_catalogue,
    split_names,
)


def register(app: typer.Typer) -> None:
    app.command("extract")(extract)


def extract(
    model: ModelSpec,
    dataset: DatasetSpec,
    layers: str | None = typer.Option(
        None,
        "--layers",
        help="Comma-separated node names (see `unitcat ingest layers MODEL`); default: the usual ones.",
    ),
    weights: Weights = None,
    weights_file: WeightsFile = None,
    weights_seed: WeightsSeed = 0,
    name: Name = None,
    num_classes: NumClasses = None,
    class_map: Path | None = typer.Option(
        None, help="CSV index,key,name giving the model's class order for an image folder."
    ),
    reduce: str = typer.Option("max", help="Conv units per image: spatial max or mean."),
    keep_maps: bool = typer.Option(
        False, help="Also store conv layers' spatial maps (for dissection)."
    ),
    device: Device = "auto",
    batch_size: BatchSize = EXTRACT_BATCH_SIZE,
    workers: int = typer.Option(0, help="Data-loading worker processes."),
    limit: int | None = typer.Option(None, help="Only the first N images."),
    strict: bool = typer.Option(
        False, help="Refuse the run if an image cannot be read, instead of skipping it."
    ),
    autocast: bool = typer.Option(False, help="Mixed precision on CUDA."),
    out: Path | None = typer.Option(
        None, help="HDF5 file (default: under $UNITCAT_HOME/runs, named by the parameters)."
    ),
    cluster: ClusterSpec = None,
    shard_images: int | None = typer.Option(
        None,
        help="With --cluster: images per shard file (default 4096, rounded up to a multiple of "
        "--batch-size); a resumed run must use the same.",
    ),
) -> None:
    """Run MODEL over DATASET and store the activations of the chosen layers (resumable)."""
    from catalogue.cluster import connect
    from catalogue.data import resolve_dataset
    from catalogue.pipeline.extract import extract_into_catalogue

    engine = open_catalogue()
    info = load_model(
        model, weights=weights, weights_file=weights_file, num_classes=num_classes,
        seed=weights_seed, name=name,
    )  # fmt: skip
    data = resolve_dataset(
        dataset, transform=info.transform, class_keys=info.class_keys,
        class_names=info.class_names, mapping_file=class_map, strict=strict,
    )  # fmt: skip
    with connect(cluster) as ray_cluster, progress() as bar:
        result = extract_into_catalogue(
            engine, info, data, split_names(layers), reduce=reduce, keep_maps=keep_maps,
            device=device, batch_size=batch_size, workers=workers, limit=limit, strict=strict,
            autocast=autocast, out_path=out, on_progress=_progress(bar, f"extract {info.name}"),
            cluster=ray_cluster, shard_images=shard_images,
        )  # fmt: skip
    _report(result)


def _progress(bar: Any, title: str) -> Any:
    """A progress callback with the images per second since the first report."""
    task = bar.add_task(title, total=None, rate="")
    started = time.perf_counter()
    first: list[int] = []

    def on_progress(done: int, total: int) -> None:
        if not first:
            first.append(done)
        elapsed = time.perf_counter() - started
        rate = (done - first[0]) / elapsed if elapsed > 0 else 0.0
        bar.update(task, completed=done, total=total, rate=f"{rate:,.0f} img/s")

    return on_progress


def _report(result: Any) -> None:
    s = result.summary
    if result.finished_elsewhere:
        console.print(
            f"run {result.run_id} was extracted by another unitcat process while this one "
            f"waited: {s.n_images:,} images → {s.path}",
            highlight=False,
        )
        console.print(f"next: unitcat ingest score {result.run_id}", highlight=False)
        return
    resumed = f", resumed at image {s.resumed_from:,}" if s.resumed_from else ""
    if "shards" in s.runtime:
        reused = len(s.runtime["shards_reused"])
        resumed += f", {s.runtime['shards']} shards ({reused} reused) on {s.runtime['cluster']}"
    console.print(
        f"run {result.run_id}: {s.n_images:,} images × {len(s.layers)} layers "
        f"({', '.join(i.name for i in s.layers)}), accuracy {s.accuracy:.1%}, "
        f"{s.n_skipped} skipped{resumed} → {s.path}",
        highlight=False,
    )
    for key, reason in s.skipped[:5]:
        console.print(f"  skipped {key}: {reason}", highlight=False)
    console.print(f"next: unitcat ingest score {result.run_id}", highlight=False)
