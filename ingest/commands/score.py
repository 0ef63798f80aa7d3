"""`unitcat ingest score RUN`: every measure for every unit of an extraction run."""

from __future__ import annotations

from pathlib import Path

import typer

from catalogue.pipeline.defaults import SCORE_BLOCK_UNITS
from ingest.console import console, progress
from ingest.options import ClusterSpec, open_catalogue, split_names


def register(app: typer.Typer) -> None:
    app.command("score")(score)


def score(
    run: str = typer.Argument(
        ..., help="The extraction run: its id (see `unitcat runs`) or label."
    ),
    layers: str | None = typer.Option(
        None, help="Comma-separated layers (default: all in the run)."
    ),
    all_images: bool = typer.Option(
        False, "--all-images", help="Score every image, not only the correctly classified ones."
    ),
    groups: Path | None = typer.Option(
        None, help="YAML (name: [class keys]) or CSV (group,key) file of class groups, e.g. bus."
    ),
    device: str | None = typer.Option(
        None, help="auto, cpu or cuda (default: UNITCAT_DEVICE or auto)."
    ),
    block_units: int = typer.Option(
        SCORE_BLOCK_UNITS,
        help="Units read and scored at a time (bounds memory; one Ray task with --cluster).",
    ),
    cluster: ClusterSpec = None,
) -> None:
    """Score every unit of RUN with every measure and write the results in one transaction."""
    from catalogue.cluster import connect
    from catalogue.groups import load_groups
    from catalogue.pipeline.scoring import score_extraction

    engine = open_catalogue()
    group_map = load_groups(groups) if groups else None
    with connect(cluster) as ray_cluster, progress() as bar:
        tasks: dict[str, int] = {}

        def on_progress(layer: str, done: int, total: int) -> None:
            if layer not in tasks:
                tasks[layer] = bar.add_task(f"score {layer}", total=total, rate="units")
            bar.update(tasks[layer], completed=done)

        result = score_extraction(
            engine,
            run,
            layers=split_names(layers),
            all_images=all_images,
            groups=group_map,
            device=device,
            block_units=block_units,
            on_progress=on_progress,
            cluster=ray_cluster,
        )
    units = sum(result.layers.values())
    if result.reused:
        console.print(
            f"run {result.run_id} was scored by another unitcat process while this one waited "
            f"({units:,} units in {len(result.layers)} layers); its results are in the catalogue.",
            highlight=False,
        )
        return
    console.print(
        f"run {result.run_id}: scored {units:,} units in {len(result.layers)} layers over "
        f"{result.n_images:,} images.",
        highlight=False,
    )
    console.print(
        'next: unitcat query "SELECT * FROM misleading_detectors"  ·  unitcat ui', highlight=False
    )
