"""`unitcat ingest am`: activation-maximisation panels of registered units, for the rating study."""

from __future__ import annotations

import time
from typing import Any

import typer

from catalogue.pipeline.defaults import AM_LR, AM_MAX_IMAGES, AM_STEPS, AM_UNITS_PER_BATCH
from ingest.console import console, progress
from ingest.options import (
    Device,
    ModelSpec,
    Name,
    NumClasses,
    Weights,
    WeightsFile,
    WeightsSeed,
    load_model,
    open_catalogue,
)
from ingest.output import print_table


def register(app: typer.Typer) -> None:
    app.command("am")(am)


def am(
    model: ModelSpec,
    layer: str = typer.Option(
        ..., "--layer", help="A layer of the model in the catalogue (conv5, features.10 …)."
    ),
    units: str | None = typer.Option(
        None,
        "--units",
        help="Unit indices: 0,1,5 or 0-9 or 0-3,7 (default: every unit of the layer).",
    ),
    images: int = typer.Option(
        AM_MAX_IMAGES,
        "--images",
        help="AM images per unit (the paper's 10 × 10 panel holds 100).",
    ),
    steps: int = typer.Option(AM_STEPS, "--steps", help="Gradient-ascent steps."),
    image_size: int | None = typer.Option(
        None, "--image-size", help="Image side in pixels (default: the model's input size)."
    ),
    lr: float = typer.Option(AM_LR, "--lr", help="Adam learning rate."),
    seed: int = typer.Option(0, "--seed", help="Seed of each unit's starting images and jitter."),
    reduce: str = typer.Option(
        "auto",
        "--reduce",
        help="Conv units: auto (as the unit was scored; spatial max by default), mean or max.",
    ),
    device: Device = "auto",
    units_per_batch: int = typer.Option(
        AM_UNITS_PER_BATCH,
        "--units-per-batch",
        help="Units optimised together (batch = units × images).",
    ),
    weights: Weights = None,
    weights_file: WeightsFile = None,
    weights_seed: WeightsSeed = 0,
    name: Name = None,
    num_classes: NumClasses = None,
) -> None:
    """Generate AM panels for units of LAYER and record them for the Rate page (re-running replaces them)."""
    from catalogue.pipeline.am import parse_units, plan_am, run_am

    unit_list = parse_units(units)
    engine = open_catalogue()
    info = load_model(
        model, weights=weights, weights_file=weights_file, num_classes=num_classes,
        seed=weights_seed, name=name,
    )  # fmt: skip
    plan = plan_am(
        engine, info, layer, unit_list, n_images=images, steps=steps, image_size=image_size,
        lr=lr, seed=seed, reduce=reduce, device=device, units_per_batch=units_per_batch,
    )  # fmt: skip
    started = time.perf_counter()
    with progress() as bar:
        task = bar.add_task(
            f"AM {info.name} {layer}: {len(plan.units)} units × {plan.steps} steps",
            total=len(plan.units) * plan.steps,
            rate="",
        )

        def on_progress(done: int, total: int) -> None:
            elapsed = time.perf_counter() - started
            rate = done / elapsed if elapsed > 0 else 0.0
            bar.update(task, completed=done, total=total, rate=f"{rate:,.1f} unit-steps/s")

        result = run_am(engine, plan, on_progress)
    _report(result)


def _report(result: Any) -> None:
    from rich.table import Table

    if result.reused:
        console.print(
            f"run {result.run_id} was made by another unitcat process while this one waited; "
            "its panels are in the catalogue.",
            highlight=False,
        )
        return
    table = Table(title=f"AM panels of {result.model} {result.layer} (run {result.run_id})")
    for column in ("unit", "mean AM activation", "min", "dataset max", "mean / dataset max"):
        table.add_column(column, justify="right")
    table.add_column("panel")
    shown = result.panels[:20]
    for p in shown:
        table.add_row(
            str(p.unit),
            f"{p.activations.mean():.4g}",
            f"{p.activations.min():.4g}",
            "–" if p.dataset_max is None else f"{p.dataset_max:.4g}",
            "–" if p.ratio is None else f"{p.ratio:.2f}×",
            str(p.path),
        )
    print_table(table)
    if len(result.panels) > len(shown):
        console.print(f"… and {len(result.panels) - len(shown)} more panels.", highlight=False)
    reference = (
        f"dataset max from scoring run {result.score_run_id}"
        if result.score_run_id is not None
        else "no scoring run yet, so no dataset max (run `unitcat ingest score`)"
    )
    reduce = f", conv maps reduced by {result.reduce}" if result.reduce else ""
    console.print(
        f"run {result.run_id}: {len(result.panels)} panels on {result.device}{reduce}; {reference}.",
        highlight=False,
    )
    console.print(
        "next: unitcat ui  (the Rate page shows the panels to participants)", highlight=False
    )
