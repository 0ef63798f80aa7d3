"""`unitcat runs`: what has been computed, with status, timing and errors; `unitcat runs show N`:
one run with its provenance."""

from __future__ import annotations

import typer
from rich.table import Table

from catalogue.db.engine import get_engine
from catalogue.db.migrate import ensure_readable
from catalogue.db.schema import RUN_KINDS
from catalogue.errors import InputError
from catalogue.query.runs import run_records
from ingest.commands.run_show import origin_line, show
from ingest.console import console

app = typer.Typer(help="List the runs in the catalogue, newest first; `show N` prints one.")
app.command("show")(show)


@app.callback(invoke_without_command=True)
def runs(
    ctx: typer.Context,
    kind: str | None = typer.Option(
        None, help="Only runs of this kind (extract, score, dissect, am)."
    ),
) -> None:
    """List the runs in the catalogue, newest first (`unitcat runs show N`: one run)."""
    if ctx.invoked_subcommand is not None:
        return
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
        "id",
        "kind",
        "label",
        "status",
        "model",
        "dataset",
        "from run",
        "started",
        "took",
        "error or owner",
    )
    colour = {"done": "green", "failed": "red", "running": "yellow", "interrupted": "magenta"}
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
            _note(r)[:80],
        )
    console.print(table)
    if any(r["status"] == "interrupted" for r in rows):
        console.print(
            "interrupted: the run's process stopped before it finished; run the same command "
            "again to resume it (extraction) or redo it.",
            highlight=False,
        )


def _note(run: dict) -> str:
    """The error of a failed run; who runs a running one; who ran an interrupted one; where an
    imported one came from."""
    if run["status"] in ("running", "interrupted") and run["owner_pid"] is not None:
        who = f"pid {run['owner_pid']} on {run['owner_host']}"
        return who if run["status"] == "running" else f"{who} is gone"
    return run["error"] or origin_line(run.get("imported_from")) or ""
