"""`unitcat ingest extract`: activations of chosen layers over a labelled image set."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from catalogue.cluster import connect
from catalogue.data import resolve_dataset
from catalogue.db.engine import get_engine
from catalogue.db.migrate import ensure_current
from catalogue.models import load_model
from catalogue.pipeline.extract import extract_into_catalogue
from ingest.cluster import cluster_option
from ingest.commands.model_options import name_option, weights_seed_option
from ingest.console import console, progress


def register(app: typer.Typer) -> None:
    app.command("extract")(extract)


def split_names(text: str | None) -> list[str] | None:
    if not text:
        return None
    return [name.strip() for name in text.split(",") if name.strip()]


def extract(
    model: str = typer.Option(
        ..., "--model", help="torchvision name (alexnet …), demo[:dataset], or a model file."
    ),
    dataset: str = typer.Option(
        ...,
        "--dataset",
        help="digits[:split], fashion-mnist[:split], or an image folder (one folder per class).",
    ),
    layers: str | None = typer.Option(
        None,
        "--layers",
        help="Comma-separated node names (see `unitcat ingest layers MODEL`); default: the usual ones.",
    ),
    weights: str | None = typer.Option(
        None, help="none (random), DEFAULT, or a weights enum name."
    ),
    weights_file: Path | None = typer.Option(
        None, help="Weights file instead of the torch hub cache."
    ),
    weights_seed: int = weights_seed_option(),
    name: str | None = name_option(),
    num_classes: int | None = typer.Option(None, help="Output classes of a random or file model."),
    class_map: Path | None = typer.Option(
        None, help="CSV index,key,name giving the model's class order for an image folder."
    ),
    reduce: str = typer.Option("max", help="Conv units per image: spatial max or mean."),
    keep_maps: bool = typer.Option(
        False, help="Also store conv layers' spatial maps (for dissection)."
    ),
    device: str = typer.Option("auto", help="auto, cpu or cuda."),
    batch_size: int = typer.Option(64, help="Images per forward pass."),
    workers: int = typer.Option(0, help="Data-loading worker processes."),
    limit: int | None = typer.Option(None, help="Only the first N images."),
    strict: bool = typer.Option(False, help="Fail on an unreadable image instead of skipping it."),
    autocast: bool = typer.Option(False, help="Mixed precision on CUDA."),
    out: Path | None = typer.Option(
        None, help="HDF5 file (default: under $UNITCAT_HOME/runs, named by the parameters)."
    ),
    cluster: str | None = cluster_option(),
    shard_images: int | None = typer.Option(
        None,
        help="With --cluster: images per shard file (default 4096, rounded up to a multiple of "
        "--batch-size); a resumed run must use the same.",
    ),
) -> None:
    """Run MODEL over DATASET and store the activations of the chosen layers (resumable)."""
    engine = get_engine()
    ensure_current(engine)
    info = load_model(
        model,
        weights=weights,
        weights_file=weights_file,
        num_classes=num_classes,
        seed=weights_seed,
        name=name,
    )
    data = resolve_dataset(
        dataset,
        transform=info.transform,
        class_keys=info.class_keys,
        class_names=info.class_names,
        mapping_file=class_map,
        strict=strict,
    )
    started = time.perf_counter()
    first: list[int] = []
    with connect(cluster) as ray_cluster, progress() as bar:
        task = bar.add_task(f"extract {info.name}", total=None, rate="")

        def on_progress(done: int, total: int) -> None:
            if not first:
                first.append(done)
            elapsed = time.perf_counter() - started
            rate = (done - first[0]) / elapsed if elapsed > 0 else 0.0
            bar.update(task, completed=done, total=total, rate=f"{rate:,.0f} img/s")

        result = extract_into_catalogue(
            engine,
            info,
            data,
            split_names(layers),
            reduce=reduce,
            keep_maps=keep_maps,
            device=device,
            batch_size=batch_size,
            workers=workers,
            limit=limit,
            strict=strict,
            autocast=autocast,
            out_path=out,
            on_progress=on_progress,
            cluster=ray_cluster,
            shard_images=shard_images,
        )
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
