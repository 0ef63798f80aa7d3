"""`unitcat ingest baseline RUN`: how many detectors random weights, or chance, would give."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from catalogue.cluster import connect
from catalogue.db.engine import get_engine
from catalogue.db.migrate import ensure_current
from catalogue.errors import InputError
from catalogue.models import load_model
from catalogue.pipeline.baseline import (
    DEFAULT_REPEATS,
    chance_baseline,
    random_weights_baseline,
    trained_runs,
)
from catalogue.query.importance import layer_baselines
from ingest.cluster import cluster_option
from ingest.commands.model_options import name_option
from ingest.console import console, progress


def register(app: typer.Typer) -> None:
    app.command("baseline")(baseline)


def baseline(
    run: str = typer.Argument(
        ..., help="The trained extraction run (or one of its scoring runs): id or label."
    ),
    random_weights: bool = typer.Option(
        False,
        "--random-weights",
        help="Extract, score (and dissect, where the trained model was) the same network with "
        "seeded random weights over the same images.",
    ),
    chance: bool = typer.Option(
        False,
        "--chance",
        help="Score the trained activations against permuted labels (same class sizes).",
    ),
    seed: int = typer.Option(
        0,
        "--seed",
        help="Seed of the random weights (named <model>@random-seed<N>) / of the permutations.",
    ),
    repeats: int = typer.Option(
        DEFAULT_REPEATS, "--repeats", help="Label permutations (--chance)."
    ),
    name: str | None = name_option("the random-weights model"),
    model: str | None = typer.Option(
        None,
        "--model",
        help="The trained run's model, when it cannot be loaded again from the catalogue "
        "(a weights file, a checkpoint elsewhere, a TorchScript file).",
    ),
    weights: str | None = typer.Option(None, "--weights", help="With --model: its weights."),
    weights_file: Path | None = typer.Option(
        None, "--weights-file", help="With --model: a weights file."
    ),
    num_classes: int | None = typer.Option(
        None, "--num-classes", help="With --model: output classes."
    ),
    dissect: bool = typer.Option(
        True, "--dissect/--no-dissect", help="Dissect the random network where the trained one was."
    ),
    dataset: str | None = typer.Option(
        None, "--dataset", help="The run's images, when they cannot be found by its dataset name."
    ),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    batch_size: int = typer.Option(64, "--batch-size", help="Images per forward pass."),
    workers: int = typer.Option(0, "--workers", help="Image-decoding worker processes."),
    cluster: str | None = cluster_option(),
) -> None:
    """Baselines of a trained run's detector counts: random weights (--random-weights) and chance (--chance)."""
    if not (random_weights or chance):
        raise InputError("choose a baseline: --random-weights, --chance, or both.")
    engine = get_engine()
    ensure_current(engine)
    trained_runs(engine, run)  # a wrong run is one line, before any progress bar
    score_run = None
    if random_weights:
        info = None
        if model is not None:
            info = load_model(
                model, weights=weights, weights_file=weights_file, num_classes=num_classes
            )
        with connect(cluster) as ray_cluster, progress() as bar:

            def step(title: str):
                task = bar.add_task(title, total=None, rate="")
                return lambda done, total: bar.update(task, completed=done, total=total)

            result = random_weights_baseline(
                engine,
                run,
                seed=seed,
                name=name,
                model=info,
                dataset=dataset,
                device=device,
                batch_size=batch_size,
                workers=workers,
                dissect=dissect,
                step=step,
                cluster=ray_cluster,
            )
        score_run = result.trained.score.id
        dissected = f", dissection run {result.dissect_run}" if result.dissect_run else ""
        console.print(
            f"{result.model}: extraction run {result.extract_run}, scoring run "
            f"{result.score_run}{dissected} (baselines of runs {result.trained.extract.id}, "
            f"{result.trained.score.id}).",
            highlight=False,
        )
    if chance:
        with progress() as bar:
            task = bar.add_task(f"score against permuted labels × {repeats}", total=None, rate="")
            done = chance_baseline(
                engine,
                run,
                repeats=repeats,
                seed=seed,
                device=device,
                on_progress=lambda d, t: bar.update(task, completed=d, total=t),
            )
        score_run = done.score_run
        console.print(
            f"chance run {done.run_id}: {done.repeats} permutations of {done.n_images:,} labels "
            f"(baseline of scoring run {done.score_run}).",
            highlight=False,
        )
    frame = layer_baselines(engine, score_run)
    table = Table("layer", "criterion", "trained", "random weights", "chance (mean ± sd)")
    for row in frame.itertuples():
        chance_text = (
            "–"
            if row.chance_mean is None or row.chance_mean != row.chance_mean
            else f"{row.chance_mean:.1f} ± {0.0 if row.chance_sd != row.chance_sd else row.chance_sd:.1f}"
        )
        random_text = (
            "–" if row.random is None or row.random != row.random else str(int(row.random))
        )
        table.add_row(row.layer, row.criterion, str(int(row.trained)), random_text, chance_text)
    console.print(table)
    console.print("see the view layer_baselines.", highlight=False)
