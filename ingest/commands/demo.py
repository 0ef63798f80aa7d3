"""`unitcat demo`: build a real catalogue offline and show how the measures disagree."""

from __future__ import annotations

import time

import typer

from catalogue.cluster import connect
from catalogue.db.engine import get_engine
from catalogue.db.migrate import ensure_current
from catalogue.pipeline.demo import DemoPlan, choose_dataset, run_demo
from ingest.cluster import cluster_option
from ingest.reporting import RichReporter, print_report


def demo(
    dataset: str = typer.Option(
        "auto", help="fashion-mnist, digits, or auto (fashion-mnist when installed)."
    ),
    cluster: str | None = cluster_option(),
) -> None:
    """Train the demo CNN, extract, score, dissect and make AM panels, then print the headline query."""
    started = time.perf_counter()
    engine = get_engine()
    ensure_current(engine)
    plan = DemoPlan(dataset=choose_dataset(dataset))
    with connect(cluster) as ray_cluster:
        result = run_demo(engine, plan, RichReporter(), cluster=ray_cluster)
    print_report(result, time.perf_counter() - started)
