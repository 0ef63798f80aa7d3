"""`unitcat ingest baseline RUN`: how many detectors random weights, or chance, would give."""

from __future__ import annotations

from typing import Any

import typer

from catalogue.pipeline.defaults import CHANCE_REPEATS, EXTRACT_BATCH_SIZE
from ingest.console import console, progress
from ingest.options import (
    BatchSize,
    ClusterSpec,
    Device,
    NumClasses,
    RunDataset,
    RunModel,
    Weights,
    WeightsFile,
    Workers,
    load_model,
    open_catalogue,
)
from ingest.output import print_table


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
    repeats: int = typer.Option(CHANCE_REPEATS, "--repeats", help="Label permutations (--chance)."),
    name: str | None = typer.Option(
        None,
        "--name",
        help="Catalogue name of the random-weights model (default: <model>@random-seed<N>).",
    ),
    model: RunModel = None,
    weights: Weights = None,
    weights_file: WeightsFile = None,
    num_classes: NumClasses = None,
    dissect: bool = typer.Option(
        True, "--dissect/--no-dissect", help="Dissect the random network where the trained one was."
    ),
    dataset: RunDataset = None,
    device: Device = "auto",
    batch_size: BatchSize = EXTRACT_BATCH_SIZE,
    workers: Workers = 0,
    cluster: ClusterSpec = None,
) -> None:
    """Baselines of a trained run's detector counts: random weights (--random-weights) and chance (--chance)."""
    from catalogue.errors import InputError
    from catalogue.pipeline.baseline import trained_runs

    if not (random_weights or chance):
        raise InputError("choose a baseline: --random-weights, --chance, or both.")
    engine = open_catalogue()
    trained_runs(engine, run)  # a wrong run is one line, before any progress bar
    score_run = None
    if random_weights:
        info = None
        if model is not None:
            info = load_model(
                model, weights=weights, weights_file=weights_file, num_classes=num_classes
            )
        score_run = _random_weights(
            engine, run, seed=seed, name=name, model=info, dataset=dataset, device=device,
            batch_size=batch_size, workers=workers, dissect=dissect, cluster=cluster,
        )  # fmt: skip
    if chance:
        score_run = _chance(engine, run, repeats=repeats, seed=seed, device=device)
    _report(engine, score_run)


def _random_weights(engine: Any, run: str, *, cluster: str | None, **options: Any) -> int:
    from catalogue.cluster import connect
    from catalogue.pipeline.baseline import random_weights_baseline

    with connect(cluster) as ray_cluster, progress() as bar:

        def step(title: str) -> Any:
            task = bar.add_task(title, total=None, rate="")
            return lambda done, total: bar.update(task, completed=done, total=total)

        result = random_weights_baseline(engine, run, step=step, cluster=ray_cluster, **options)
    dissected = f", dissection run {result.dissect_run}" if result.dissect_run else ""
    console.print(
        f"{result.model}: extraction run {result.extract_run}, scoring run "
        f"{result.score_run}{dissected} (baselines of runs {result.trained.extract.id}, "
        f"{result.trained.score.id}).",
        highlight=False,
    )
    return int(result.trained.score.id)


def _chance(engine: Any, run: str, *, repeats: int, seed: int, device: str) -> int:
    from catalogue.pipeline.baseline import chance_baseline

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
    console.print(
        f"chance run {done.run_id}: {done.repeats} permutations of {done.n_images:,} labels "
        f"(baseline of scoring run {done.score_run}).",
        highlight=False,
    )
    return done.score_run


def _report(engine: Any, score_run: int | None) -> None:
    from rich.table import Table

    from catalogue.query.importance import layer_baselines

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
    print_table(table)
    console.print("see the view layer_baselines.", highlight=False)
