"""`unitcat demo`: build a real catalogue offline and show how the measures disagree."""

from __future__ import annotations

import time

import typer

from ingest.options import ClusterSpec, open_catalogue
from ingest.output import OutputFormat, format_option


def demo(
    dataset: str = typer.Option(
        "auto",
        help="fashion-mnist-colours (100 classes), fashion-mnist, digits, or auto "
        "(fashion-mnist-colours when Fashion-MNIST is installed, else digits).",
    ),
    split: str = typer.Option(
        "train",
        help="Images to extract and score: train (the images the network learnt, as the "
        "paper scored ImageNet's) or test (held out).",
    ),
    cluster: ClusterSpec = None,
    fmt: OutputFormat = format_option(),
) -> None:
    """Train the demo CNN, extract, score, dissect and make AM panels, then print the headline query."""
    from catalogue.cluster import connect
    from catalogue.pipeline.demo import DemoPlan, choose_dataset, run_demo
    from ingest.reporting import RichReporter, print_report

    started = time.perf_counter()
    engine = open_catalogue()
    plan = DemoPlan(dataset=choose_dataset(dataset), split=split)
    with connect(cluster) as ray_cluster:
        result = run_demo(engine, plan, RichReporter(fmt), cluster=ray_cluster)
    print_report(result, time.perf_counter() - started, fmt)
