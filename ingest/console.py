"""Shared console objects and the one place where errors become exit codes."""

from __future__ import annotations

import collections
import logging
import os
import signal
import sys
from collections.abc import Callable
from typing import NoReturn, TypeVar

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from catalogue.faults import explain, write_log
from ingest.options import cli_message

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


class _Records(logging.Handler):
    """Keeps what the command logged (the last few thousand records) for the log file."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: collections.deque[str] = collections.deque(maxlen=5000)
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record))
        except Exception:  # a record that cannot be formatted is not worth a traceback
            self.lines.append(f"{record.levelname} {record.name}: {record.msg!r}")


class _Notes(logging.Handler):
    """catalogue's warnings (e.g. "run 4 is already running … waiting") as one plain line."""

    def emit(self, record: logging.LogRecord) -> None:
        err_console.print(
            f"[yellow]note:[/] {record.getMessage()}", highlight=False, soft_wrap=True
        )


_records = _Records()
_signal_name: list[str] = []


def setup_logging() -> None:
    """Route every log record and Python warning into memory (written to the log file if the
    command fails), and catalogue's warnings to stderr as notes; nothing else reaches the
    terminal (no "could not …" tracebacks from libraries)."""
    root = logging.getLogger()
    if _records in root.handlers:
        return
    root.addHandler(_records)
    root.setLevel(logging.INFO)
    notes = _Notes(level=logging.WARNING)
    logging.getLogger("catalogue").addHandler(notes)
    logging.captureWarnings(True)
    sys.unraisablehook = _unraisable
    sys.excepthook = _printed


def _printed(kind: type[BaseException], value: BaseException, tb: object) -> None:
    """Tracebacks that extension code prints itself (Cython destructors call PyErr_Print) go
    to the log file too."""
    logging.getLogger("printed").error("%s", kind.__name__, exc_info=(kind, value, tb))  # type: ignore[arg-type]


def _unraisable(info: sys.UnraisableHookArgs) -> None:
    """Errors Python cannot raise (in a destructor, e.g. h5py's after a failed write) go to the
    log file, not to the terminal as "Exception ignored in …" tracebacks."""
    logging.getLogger("unraisable").error(
        "%s: %s",
        info.err_msg or "Exception ignored in",
        info.object,
        exc_info=(info.exc_type, info.exc_value, info.exc_traceback)
        if info.exc_value is not None
        else None,
    )


def _terminate(signum: int, _frame: object) -> None:
    """SIGTERM behaves like Ctrl-C: the run is marked interrupted, files are closed cleanly."""
    _signal_name.append(signal.Signals(signum).name)
    raise KeyboardInterrupt


def _interrupted(exc: BaseException) -> bool:
    """Whether this exit is Typer's answer to Ctrl-C (it turns KeyboardInterrupt into exit 130)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, KeyboardInterrupt):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def report_fault(exc: BaseException) -> NoReturn:
    """Print the one line for `exc` (naming the log file with its details) and exit."""
    fault = explain(exc)
    message = cli_message(exc, fault.message)  # the library's argument names as flags
    if isinstance(exc, KeyboardInterrupt) and _signal_name:
        message = f"{_signal_name[-1]}: {message}"
    if fault.details:
        path = write_log(exc, context=list(_records.lines))
        if path is not None:
            message = f"{message.rstrip('.')}. Details: {path}"
    if _hdf5_unclosed():
        err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(fault.exit_code)  # HDF5's clean-up at exit would crash on the unclosed file
    fail(message, fault.exit_code)
    raise AssertionError("unreachable")


def _hdf5_unclosed() -> bool:
    store = sys.modules.get("catalogue.store")
    return bool(store is not None and store.unclosed_stores())


def run_reporting_errors(fn: Callable[[], T]) -> T:
    """Run the CLI; any failure becomes one line on stderr (with a log file for the details)
    and a non-zero exit code (`catalogue.faults`). No traceback reaches the terminal."""
    setup_logging()
    signal.signal(signal.SIGTERM, _terminate)
    try:
        return fn()
    except SystemExit as exc:
        if exc.code == 130 and _interrupted(exc):
            report_fault(KeyboardInterrupt())
        raise
    except BaseException as exc:
        report_fault(exc)
