"""`unitcat ingest dissect` and `unitcat ingest make-probe`: network dissection."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from catalogue.measures import DISSECTION_QUANTILE, IOU_DETECTOR_THRESHOLD
from catalogue.pipeline.defaults import DISSECT_BATCH_SIZE
from ingest.console import console, progress
from ingest.options import (
    BatchSize,
    ClusterSpec,
    Device,
    ModelSpec,
    Name,
    NumClasses,
    Weights,
    WeightsFile,
    WeightsSeed,
    Workers,
    load_model,
    open_catalogue,
    split_names,
)
from ingest.output import print_table


def register(app: typer.Typer) -> None:
    app.command("dissect")(dissect)
    app.command("make-probe")(make_probe)


def dissect(
    model: ModelSpec,
    probe: Path = typer.Option(
        ..., "--probe", help="A Broden-format directory (Broden, or one from make-probe)."
    ),
    layers: str = typer.Option(
        ..., "--layers", help="Comma-separated conv layers, e.g. conv5 or features.11."
    ),
    weights: Weights = None,
    weights_file: WeightsFile = None,
    num_classes: NumClasses = None,
    weights_seed: WeightsSeed = 0,
    name: Name = None,
    categories: str | None = typer.Option(
        None, help="Only these concept categories, e.g. object,color."
    ),
    split: str | None = typer.Option(None, help="Only probe images of this split."),
    limit: int | None = typer.Option(None, help="Only the first N probe images."),
    quantile: float = typer.Option(
        DISSECTION_QUANTILE, help="Top quantile of each unit's activations that counts as firing."
    ),
    iou_threshold: float = typer.Option(
        IOU_DETECTOR_THRESHOLD,
        help="IoU above which a unit is a detector (Bau, Zhou et al. 2017).",
    ),
    device: Device = "auto",
    batch_size: BatchSize = DISSECT_BATCH_SIZE,
    workers: Workers = 0,
    cluster: ClusterSpec = None,
) -> None:
    """Label conv units with the probe-set concepts whose masks their activation maps overlap best."""
    from catalogue.cluster import connect
    from catalogue.pipeline.dissect import dissect_into_catalogue

    engine = open_catalogue()
    info = load_model(
        model, weights=weights, weights_file=weights_file, num_classes=num_classes,
        seed=weights_seed, name=name,
    )  # fmt: skip
    with connect(cluster) as ray_cluster, progress() as bar:
        tasks: list[int] = []  # added on the first progress: a refused model is one line

        def on_progress(done: int, total: int) -> None:
            if not tasks:
                tasks.append(bar.add_task("dissect (2 passes)", total=None, rate="images"))
            bar.update(tasks[0], completed=done, total=total)

        result = dissect_into_catalogue(
            engine, info, probe, split_names(layers) or [], categories=split_names(categories),
            split=split, limit=limit, quantile=quantile, iou_threshold=iou_threshold,
            batch_size=batch_size, device=device, workers=workers, on_progress=on_progress,
            cluster=ray_cluster,
        )  # fmt: skip
    _report(result, iou_threshold)


def _report(result: Any, iou_threshold: float) -> None:
    from rich.table import Table

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
    print_table(table)
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
    from catalogue.pipeline.dissect import build_probe

    probe = build_probe(
        source, n_images=images, image_size=size, seed=seed, out_dir=out, overwrite=overwrite
    )
    categories: dict[str, int] = {}
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
