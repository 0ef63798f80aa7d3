"""`unitcat ingest am`: activation-maximisation panels of registered units, for the rating study."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.table import Table

from catalogue.db.engine import get_engine
from catalogue.db.migrate import ensure_current
from catalogue.models import load_model
from catalogue.pipeline.am import MAX_IMAGES, parse_units, plan_am, run_am
from ingest.commands.model_options import name_option, weights_seed_option
from ingest.console import console, progress


def register(app: typer.Typer) -> None:
    app.command("am")(am)


def am(
    model: str = typer.Option(
        ...,
        "--model",
        help="The extracted model: torchvision name (alexnet …), demo[:dataset], or a model file.",
    ),
    layer: str = typer.Option(
        ..., "--layer", help="A layer of the model in the catalogue (conv5, features.10 …)."
    ),
    units: str | None = typer.Option(
        None,
        "--units",
        help="Unit indices: 0,1,5 or 0-9 or 0-3,7 (default: every unit of the layer).",
    ),
    images: int = typer.Option(
        MAX_IMAGES, "--images", help="AM images per unit (the paper's 10 × 10 panel holds 100)."
    ),
    steps: int = typer.Option(256, "--steps", help="Gradient-ascent steps."),
    image_size: int | None = typer.Option(
        None, "--image-size", help="Image side in pixels (default: the model's input size)."
    ),
    lr: float = typer.Option(0.05, "--lr", help="Adam learning rate."),
    seed: int = typer.Option(0, "--seed", help="Seed of each unit's starting images and jitter."),
    reduce: str = typer.Option(
        "auto",
        "--reduce",
        help="Conv units: auto (as the unit was scored; spatial max by default), mean or max.",
    ),
    device: str = typer.Option("auto", "--device", help="auto (GPU when available), cpu or cuda."),
    units_per_batch: int = typer.Option(
        4, "--units-per-batch", help="Units optimised together (batch = units × images)."
    ),
    weights: str | None = typer.Option(
        None,
        "--weights",
        help="The weights used for the extraction: none, DEFAULT or an enum name.",
    ),
    weights_file: Path | None = typer.Option(
        None, "--weights-file", help="The weights file used for the extraction."
    ),
    weights_seed: int = weights_seed_option(),
    name: str | None = name_option(),
    num_classes: int | None = typer.Option(
        None, "--num-classes", help="Output classes of a random or file model."
    ),
) -> None:
    """Generate AM panels for units of LAYER and record them for the Rate page (re-running replaces them)."""
    unit_list = parse_units(units)
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
    plan = plan_am(
        engine,
        info,
        layer,
        unit_list,
        n_images=images,
        steps=steps,
        image_size=image_size,
        lr=lr,
        seed=seed,
        reduce=reduce,
        device=device,
        units_per_batch=units_per_batch,
    )
    started = time.perf_counter()
    with progress() as bar:
        task = bar.add_task(
            f"AM {info.name} {layer}: {len(plan.units)} units × {steps} steps",
            total=len(plan.units) * steps,
            rate="",
        )

        def on_progress(done: int, total: int) -> None:
            elapsed = time.perf_counter() - started
            rate = done / elapsed if elapsed > 0 else 0.0
            bar.update(task, completed=done, total=total, rate=f"{rate:,.1f} unit-steps/s")

        result = run_am(engine, plan, on_progress)
    table = Table(title=f"AM panels of {result.model} {result.layer} (run {result.run_id})")
    for name in ("unit", "mean AM activation", "min", "dataset max", "mean / dataset max"):
        table.add_column(name, justify="right")
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
    console.print(table)
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
