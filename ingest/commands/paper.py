"""`unitcat ingest paper`: the paper's AlexNet setup over an ImageNet folder in one command."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from ingest.options import BatchSize, ClusterSpec, Device, open_catalogue, split_names
from ingest.output import OutputFormat, format_option


def register(app: typer.Typer) -> None:
    app.command("paper")(paper)


def paper(
    imagenet: Path = typer.Option(
        ..., help="ImageNet folder: one folder per WordNet id (e.g. the validation set)."
    ),
    broden: Path | None = typer.Option(None, help="Broden directory: also dissect conv5."),
    device: Device = "auto",
    weights: str = typer.Option(
        "DEFAULT", help="AlexNet weights (DEFAULT = IMAGENET1K_V1 from the torch hub cache)."
    ),
    weights_file: Path | None = typer.Option(
        None, help="The weights file, if not in the torch hub cache."
    ),
    class_map: Path | None = typer.Option(
        None,
        help="index,key,name CSV (or LOC_synset_mapping.txt) when the folder lacks some classes.",
    ),
    batch_size: BatchSize = 128,
    workers: int = typer.Option(4, help="Image-decoding worker processes."),
    limit: int | None = typer.Option(None, help="Only the first N images (a quick look)."),
    broden_categories: str | None = typer.Option(
        None, help="Broden categories to use, e.g. object,part."
    ),
    num_classes: int | None = typer.Option(
        None, hidden=True, help="Outputs of a random-weight AlexNet (tests)."
    ),
    cluster: ClusterSpec = None,
    fmt: OutputFormat = format_option(),
) -> None:
    """AlexNet conv5, fc6, fc7, fc8 over ImageNet: extract, score (correct images, bus and car groups), dissect."""
    from catalogue.cluster import connect
    from catalogue.pipeline.paper import PaperOptions, run_paper
    from ingest.reporting import RichReporter, print_report

    started = time.perf_counter()
    engine = open_catalogue()
    options = PaperOptions(
        imagenet=imagenet,
        broden=broden,
        weights=weights,
        weights_file=weights_file,
        num_classes=num_classes,
        class_map=class_map,
        device=device,
        batch_size=batch_size,
        workers=workers,
        limit=limit,
        broden_categories=tuple(split_names(broden_categories) or ()) or None,
    )
    with connect(cluster) as ray_cluster:
        report = run_paper(engine, options, RichReporter(fmt), cluster=ray_cluster)
    print_report(report, time.perf_counter() - started, fmt)
