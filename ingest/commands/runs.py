"""`unitcat runs`: what has been computed, with status, timing and errors."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import typer

from catalogue.db.engine import get_engine
from catalogue.db.migrate import ensure_readable
from catalogue.errors import InputError
from catalogue.query.runs import run_records
from ingest.output import Column, OutputFormat, Rows, format_option, say, write_rows

STATUS_COLOUR = {"done": "green", "failed": "red", "running": "yellow", "interrupted": "magenta"}
NOTE_WIDTH = 80  # the table's "error or owner"; the rows for programs have the whole error


def _status(status: str) -> str:
    return f"[{STATUS_COLOUR.get(status, 'white')}]{status}[/]"


def _started(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M")


def _took(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds:.1f} s"


#: A run as `unitcat runs` shows it: in the table (headers) and in the rows for programs
#: (keys: the `run_status` view's names, `id` for `run_id`).
RUN_COLUMNS: tuple[Column, ...] = (
    Column("id", "id"),
    Column("kind", "kind"),
    Column("label", "label"),
    Column("status", "status", _status),
    Column("model", "model"),
    Column("dataset", "dataset"),
    Column("parent_id", "from run"),
    Column("started_at", "started", _started),
    Column("finished_at", "finished", shown_in="rows"),
    Column("duration_s", "took", _took),
    Column("note", "error or owner", lambda note: note[:NOTE_WIDTH], shown_in="table"),
    Column("error", "error", shown_in="rows"),
    Column("owner_host", "owner host", shown_in="rows"),
    Column("owner_pid", "owner pid", shown_in="rows"),
)


def runs(
    kind: str | None = typer.Option(
        None, help="Only runs of this kind (extract, score, dissect, am)."
    ),
    fmt: OutputFormat = format_option(),
) -> None:
    """List the runs in the catalogue, newest first."""
    if kind is not None:
        _check_kind(kind)
    engine = get_engine()
    ensure_readable(engine)
    rows = [{**r, "note": _note(r)} for r in run_records(engine, kinds=(kind,) if kind else ())]
    if not rows and fmt is OutputFormat.table:
        say("no runs yet: start with `unitcat ingest extract`.")
        return
    write_rows(Rows(RUN_COLUMNS, rows), fmt)
    if fmt is OutputFormat.table and any(r["status"] == "interrupted" for r in rows):
        say(
            "interrupted: the run's process stopped before it finished; run the same command "
            "again to resume it (extraction) or redo it.",
            highlight=False,
        )


def _check_kind(kind: str) -> None:
    from catalogue.db.schema import RUN_KINDS  # the ORM schema: only when a kind is asked for

    if kind not in RUN_KINDS:
        raise InputError(
            f"--kind {kind!r} is not a kind of run; use one of {', '.join(RUN_KINDS)}."
        )


def _note(run: Mapping[str, Any]) -> str:
    """The error of a failed run; who runs a running one; who ran an interrupted one."""
    if run["status"] in ("running", "interrupted") and run["owner_pid"] is not None:
        who = f"pid {run['owner_pid']} on {run['owner_host']}"
        return who if run["status"] == "running" else f"{who} is gone"
    return run["error"] or ""
