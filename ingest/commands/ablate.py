"""`unitcat ingest ablate RUN`: remove each unit of some layers and measure every class's accuracy."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from catalogue.ablation import RANKINGS, VALUES
from catalogue.cluster import connect
from catalogue.db.engine import get_engine
from catalogue.db.migrate import ensure_current
from catalogue.errors import InputError
from catalogue.models import load_model
from catalogue.pipeline.ablate import CurveOptions, ablate_into_catalogue
from ingest.cluster import cluster_option
from ingest.commands.extract import split_names
from ingest.commands.model_options import name_option, weights_seed_option
from ingest.console import console, progress


def register(app: typer.Typer) -> None:
    app.command("ablate")(ablate)


def parse_classes(text: str | None) -> list[int] | None:
    """``all`` (or nothing) → None; ``0,3,7`` or ``0-9`` → class indices."""
    if text is None or text.strip().lower() in ("", "all"):
        return None
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        lo, sep, hi = part.partition("-")
        if not lo.isdigit() or (sep and not hi.isdigit()):
            raise InputError(
                f"--curve-classes takes class indices like 0,3,7 or 0-9, not {text!r}."
            )
        out += list(range(int(lo), int(hi) + 1)) if sep else [int(lo)]
    return out


def ablate(
    run: str = typer.Argument(
        ..., help="The extraction run: its id (see `unitcat runs`) or label."
    ),
    layers: str = typer.Option(
        ..., "--layers", help="Comma-separated layers of the run, e.g. conv4,fc6."
    ),
    value: str = typer.Option(
        "zero", "--value", help=f"Replace each unit's whole activation by: {' or '.join(VALUES)}."
    ),
    images: str = typer.Option(
        "all",
        "--images",
        help="Images to measure accuracy on: all, correct, or a number (spread evenly over classes).",
    ),
    curves: bool = typer.Option(
        True, "--curves/--no-curves", help="Also the class-ablation curves (Bau et al. 2020)."
    ),
    curve_rankings: str = typer.Option(
        ",".join(RANKINGS), "--curve-rankings", help="Rankings of the units for each class."
    ),
    curve_classes: str | None = typer.Option(
        None, "--curve-classes", help="Classes with curves: all (default), 0,3,7 or 0-9."
    ),
    curve_max_k: int | None = typer.Option(
        None, "--curve-max-k", help="Remove up to this many units (default: every unit)."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the random ranking (the curves' control)."),
    model: str | None = typer.Option(
        None,
        "--model",
        help="The extraction's model, when it cannot be loaded again from the catalogue "
        "(a weights file, a TorchScript file).",
    ),
    weights: str | None = typer.Option(None, "--weights", help="With --model: its weights."),
    weights_file: Path | None = typer.Option(
        None, "--weights-file", help="With --model: a weights file."
    ),
    num_classes: int | None = typer.Option(
        None, "--num-classes", help="With --model: output classes."
    ),
    weights_seed: int = weights_seed_option(),
    name: str | None = name_option("the --model (as the extraction registered it)"),
    dataset: str | None = typer.Option(
        None,
        "--dataset",
        help="The run's images, when they cannot be found again by the run's dataset name.",
    ),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    batch_size: int = typer.Option(64, "--batch-size", help="Images per batch."),
    workers: int = typer.Option(0, "--workers", help="Image-decoding worker processes."),
    block_units: int | None = typer.Option(
        None,
        "--block-units",
        help="With --cluster: configurations per Ray task (default: each layer split evenly "
        "over the workers).",
    ),
    cluster: str | None = cluster_option(),
) -> None:
    """Replace each unit of LAYERS by 0 (or its mean), one at a time, and record every class's accuracy.

    The units × classes matrix goes to the ablation run's own HDF5 file; the catalogue
    gets per unit the overall change, the most-hurt classes and the change for its
    precision, max-informedness, CCMAS and detector-bar classes (view unit_importance), and the
    class-ablation curves (class_ablation_curve).
    """
    engine = get_engine()
    ensure_current(engine)
    info = None
    if model is not None:
        info = load_model(
            model,
            weights=weights,
            weights_file=weights_file,
            num_classes=num_classes,
            seed=weights_seed,
            name=name,
        )
    options = (
        CurveOptions(
            rankings=split_names(curve_rankings) or [],
            classes=parse_classes(curve_classes),
            max_k=curve_max_k,
            seed=seed,
        )
        if curves
        else None
    )
    with connect(cluster) as ray_cluster, progress() as bar:
        tasks: dict[str, int] = {}

        def on_progress(layer: str, done: int, total: int) -> None:
            if layer not in tasks:
                tasks[layer] = bar.add_task(f"ablate {layer}", total=total, rate="image-ablations")
            bar.update(tasks[layer], completed=done, total=total)

        result = ablate_into_catalogue(
            engine,
            run,
            split_names(layers) or [],
            value=value,
            images=images,
            curves=options,
            model=info,
            dataset=dataset,
            device=device,
            batch_size=batch_size,
            workers=workers,
            on_progress=on_progress,
            cluster=ray_cluster,
            block_units=block_units,
        )
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
    console.print(table)
    console.print(
        f"run {result.run_id}: {result.n_images:,} images → {result.path}; "
        "see unit_importance and selectivity_vs_importance.",
        highlight=False,
    )
