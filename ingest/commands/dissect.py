"""`unitcat ingest dissect` and `unitcat ingest make-probe`: network dissection."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from catalogue.cluster import connect
from catalogue.db.engine import get_engine
from catalogue.db.migrate import ensure_current
from catalogue.measures import IOU_ABOVE
from catalogue.models import load_model
from catalogue.pipeline.dissect import build_probe, dissect_into_catalogue
from ingest.cluster import cluster_option
from ingest.commands.extract import split_names
from ingest.commands.model_options import name_option, weights_seed_option
from ingest.console import console, progress


def register(app: typer.Typer) -> None:
    app.command("dissect")(dissect)
    app.command("make-probe")(make_probe)


def dissect(
    model: str = typer.Option(
        ..., "--model", help="torchvision name, demo[:dataset], or a model file."
    ),
    probe: Path = typer.Option(
        ..., "--probe", help="A Broden-format directory (Broden, or one from make-probe)."
    ),
    layers: str = typer.Option(
        ..., "--layers", help="Comma-separated conv layers, e.g. conv5 or features.11."
    ),
    weights: str | None = typer.Option(
        None, help="none (random), DEFAULT, or a weights enum name."
    ),
    weights_file: Path | None = typer.Option(
        None, help="Weights file instead of the torch hub cache."
    ),
    num_classes: int | None = typer.Option(None, help="Output classes of a random or file model."),
    weights_seed: int = weights_seed_option(),
    name: str | None = name_option(),
    categories: str | None = typer.Option(
        None, help="Only these concept categories, e.g. object,color."
    ),
    split: str | None = typer.Option(None, help="Only probe images of this split."),
    limit: int | None = typer.Option(None, help="Only the first N probe images."),
    quantile: float = typer.Option(
        0.005, help="Top quantile of each unit's activations that counts as firing."
    ),
    iou_threshold: float = typer.Option(
        IOU_ABOVE.value, help="IoU above which a unit is a detector (Bau, Zhou et al. 2017)."
    ),
    device: str = typer.Option("auto", help="auto, cpu or cuda."),
    batch_size: int = typer.Option(32, help="Probe images per forward pass."),
    workers: int = typer.Option(0, help="Image-decoding worker processes."),
    cluster: str | None = cluster_option(),
) -> None:
    """Label conv units with the probe-set concepts whose masks their activation maps overlap best."""
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
    with connect(cluster) as ray_cluster, progress() as bar:
        tasks: list[int] = []  # added on the first progress: a refused model is one line

        def on_progress(done: int, total: int) -> None:
            if not tasks:
                tasks.append(bar.add_task("dissect (2 passes)", total=None, rate="images"))
            bar.update(tasks[0], completed=done, total=total)

        result = dissect_into_catalogue(
            engine,
            info,
            probe,
            split_names(layers) or [],
            categories=split_names(categories),
            split=split,
            limit=limit,
            quantile=quantile,
            iou_threshold=iou_threshold,
            batch_size=batch_size,
            device=device,
            workers=workers,
            on_progress=on_progress,
            cluster=ray_cluster,
        )
    table = Table(
        "layer", "units", f"detectors (IoU > {iou_threshold:g})", "unique concepts", "by category"
    )
    for name, layer in result.layers.items():
        by_cat = ", ".join(
            f"{c} {n}" for c, n in sorted(layer.unique_concepts_by_category().items())
        )
        table.add_row(
            name, str(layer.n_units), str(layer.n_detectors), str(layer.n_unique_concepts), by_cat
        )
    console.print(table)
    console.print(
        f"run {result.run_id}: probe {result.probe}; see best_concept in unit_catalogue.",
        highlight=False,
    )


def make_probe(
    source: str = typer.Option("fashion-mnist", help="Objects from fashion-mnist or digits."),
    images: int = typer.Option(500, help="Number of probe scenes."),
    size: int = typer.Option(64, help="Side of each scene in pixels."),
    seed: int = typer.Option(0, help="Random seed."),
    out: Path | None = typer.Option(None, help="Directory (default: under $UNITCAT_HOME/probes)."),
    overwrite: bool = typer.Option(False, help="Rebuild even if the directory holds a probe set."),
) -> None:
    """Build a probe set in Broden's format: scenes of objects with object and colour masks."""
    probe = build_probe(
        source, n_images=images, image_size=size, seed=seed, out_dir=out, overwrite=overwrite
    )
    categories = {}
    for c in probe.concepts:
        categories[c.category] = categories.get(c.category, 0) + 1
    summary = ", ".join(f"{n} {c}" for c, n in sorted(categories.items()))
    console.print(
        f"probe set {probe.directory}: {len(probe)} images, concepts: {summary}.", highlight=False
    )
    console.print(
        f"next: unitcat ingest dissect --model … --probe {probe.directory} --layers …",
        highlight=False,
    )
