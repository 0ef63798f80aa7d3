"""`unitcat ingest ablate RUN`: remove each unit of some layers and measure every class's accuracy."""

from __future__ import annotations

from typing import Any

import typer

from catalogue.pipeline.defaults import EXTRACT_BATCH_SIZE
from ingest.console import console, progress
from ingest.options import (
    BatchSize,
    ClusterSpec,
    Device,
    Name,
    NumClasses,
    RunDataset,
    RunModel,
    Weights,
    WeightsFile,
    WeightsSeed,
    Workers,
    load_model,
    open_catalogue,
    parse_classes,
    split_names,
)
from ingest.output import print_table


def register(app: typer.Typer) -> None:
    app.command("ablate")(ablate)


def ablate(
    run: str = typer.Argument(
        ..., help="The extraction run: its id (see `unitcat runs`) or label."
    ),
    layers: str = typer.Option(
        ..., "--layers", help="Comma-separated layers of the run, e.g. conv4,fc6."
    ),
    value: str = typer.Option(
        "zero", "--value", help="Replace each unit's whole activation by: zero or mean."
    ),
    images: str = typer.Option(
        "all",
        "--images",
        help="Images to measure accuracy on: all, correct, or a number (spread evenly over classes).",
    ),
    curves: bool = typer.Option(
        True, "--curves/--no-curves", help="Also the class-ablation curves (Bau et al. 2020)."
    ),
    curve_rankings: str | None = typer.Option(
        None,
        "--curve-rankings",
        help="Rankings of the units for each class, comma-separated: ablation, class_mean, "
        "ccmas, precision, random (default: every ranking).",
    ),
    curve_classes: str | None = typer.Option(
        None, "--curve-classes", help="Classes with curves: all (default), 0,3,7 or 0-9."
    ),
    curve_max_k: int | None = typer.Option(
        None, "--curve-max-k", help="Remove up to this many units (default: every unit)."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the random ranking (the curves' control)."),
    model: RunModel = None,
    weights: Weights = None,
    weights_file: WeightsFile = None,
    num_classes: NumClasses = None,
    weights_seed: WeightsSeed = 0,
    name: Name = None,
    dataset: RunDataset = None,
    device: Device = "auto",
    batch_size: BatchSize = EXTRACT_BATCH_SIZE,
    workers: Workers = 0,
    block_units: int | None = typer.Option(
        None,
        "--block-units",
        help="With --cluster: configurations per Ray task (default: each layer split evenly "
        "over the workers).",
    ),
    cluster: ClusterSpec = None,
) -> None:
    """Replace each unit of LAYERS by 0 (or its mean), one at a time, and record every class's accuracy.

    The units × classes matrix goes to the ablation run's own HDF5 file; the catalogue
    gets per unit the overall change, the most-hurt classes and the change for its
    precision, max-informedness, CCMAS and detector-bar classes (view unit_importance), and the
    class-ablation curves (class_ablation_curve).
    """
    from catalogue.cluster import connect
    from catalogue.pipeline.ablate import CurveOptions, ablate_into_catalogue

    engine = open_catalogue()
    info = None
    if model is not None:
        info = load_model(
            model, weights=weights, weights_file=weights_file, num_classes=num_classes,
            seed=weights_seed, name=name,
        )  # fmt: skip
    rankings = split_names(curve_rankings)
    options = (
        CurveOptions(classes=parse_classes(curve_classes), max_k=curve_max_k, seed=seed)
        if curves
        else None
    )
    if options is not None and rankings is not None:
        options = CurveOptions(rankings, options.classes, options.max_k, options.seed)
    with connect(cluster) as ray_cluster, progress() as bar:
        tasks: dict[str, int] = {}

        def on_progress(layer: str, done: int, total: int) -> None:
            if layer not in tasks:
                tasks[layer] = bar.add_task(f"ablate {layer}", total=total, rate="image-ablations")
            bar.update(tasks[layer], completed=done, total=total)

        result = ablate_into_catalogue(
            engine, run, split_names(layers) or [], value=value, images=images, curves=options,
            model=info, dataset=dataset, device=device, batch_size=batch_size, workers=workers,
            on_progress=on_progress, cluster=ray_cluster, block_units=block_units,
        )  # fmt: skip
    _report(result)


def _report(result: Any) -> None:
    from rich.table import Table

    table = Table(
        "layer",
        "units",
        "baseline accuracy",
        "mean change",
        "largest drop",
        "units that hurt (< 0)",
    )
    for layer, r in result.layers.items():
        change = r.overall_change
        table.add_row(
            layer,
            str(r.n_units),
            f"{r.baseline_accuracy:.3f}",
            f"{change.mean():+.4f}",
            f"{change.min():+.4f} (unit {int(change.argmin())})",
            str(int((change < 0).sum())),
        )
    print_table(table)
    console.print(
        f"run {result.run_id}: {result.n_images:,} images → {result.path}; "
        "see unit_importance and selectivity_vs_importance.",
        highlight=False,
    )
