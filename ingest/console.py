"""Shared console objects and the one place where errors become exit codes."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TypeVar

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from catalogue.errors import UnitcatError

console = Console()
err_console = Console(stderr=True)

T = TypeVar("T")


def fail(message: str, code: int = 2) -> None:
    """Print one red line on stderr and exit with `code`."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    sys.exit(code)


def progress(transient: bool = False) -> Progress:
    """A rich progress bar with count, rate-friendly columns and ETA."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=transient,
    )


def run_reporting_errors(fn: Callable[[], T]) -> T:
    """Run the CLI, turning library errors into one line and a non-zero exit.

    Only expected failures are caught: `UnitcatError` from the library and a
    database that cannot be reached. Anything else is a bug and keeps its traceback.
    """
    from sqlalchemy.exc import OperationalError

    try:
        return fn()
    except UnitcatError as exc:
        fail(str(exc), exc.exit_code)
    except OperationalError as exc:
        first = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc).splitlines()[0]
        fail(
            f"cannot reach the database ({first}); check DATABASE_URL or run `unitcat db start`.",
            3,
        )
    except KeyboardInterrupt:
        fail(
            "interrupted; the current run was rolled back (extraction resumes where it stopped).",
            130,
        )
    raise AssertionError("unreachable")
