"""`unitcat runs`: what has been computed, with status, timing and errors."""

from __future__ import annotations

import typer
from rich.table import Table

from catalogue.db.engine import get_engine
from catalogue.db.migrate import ensure_readable
from catalogue.db.schema import RUN_KINDS
from catalogue.errors import InputError
from catalogue.query.runs import run_records
from ingest.console import console


def runs(
    kind: str | None = typer.Option(
        None, help="Only runs of this kind (extract, score, dissect, am)."
    ),
) -> None:
    """List the runs in the catalogue, newest first."""
    if kind is not None and kind not in RUN_KINDS:
        raise InputError(
            f"--kind {kind!r} is not a kind of run; use one of {', '.join(RUN_KINDS)}."
        )
    engine = get_engine()
    ensure_readable(engine)
    rows = run_records(engine, kinds=(kind,) if kind else ())
    if not rows:
        console.print("no runs yet: start with `unitcat ingest extract`.")
        return
    table = Table(
        "id", "kind", "label", "status", "model", "dataset", "from run", "started", "took", "error"
    )
    colour = {"done": "green", "failed": "red", "running": "yellow"}
    for r in rows:
        table.add_row(
            str(r["id"]),
            r["kind"],
            r["label"] or "",
            f"[{colour.get(r['status'], 'white')}]{r['status']}[/]",
            r["model"] or "",
            r["dataset"] or "",
            str(r["parent_id"] or ""),
            r["started_at"].strftime("%Y-%m-%d %H:%M"),
            f"{r['duration_s']:.1f} s" if r["duration_s"] is not None else "",
            (r["error"] or "")[:80],
        )
    console.print(table)
