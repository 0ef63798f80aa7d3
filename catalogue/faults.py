"""Every failure as one line that says what is wrong and what to do, and its details in a log.

The CLI (`ingest.console`) and the UI turn any exception into a `Fault`: a one-line
message, an exit code, and whether the details are worth keeping. The details —
the traceback with its chained causes and what the command logged — go into a file
under ``$UNITCAT_HOME/logs`` (`write_log`), which the one line names; a user never
sees a traceback.

Database errors are classified by their SQLSTATE, honestly: a server that cannot
be reached is not a deadlock, a missing privilege or a refused row, and each asks
for a different remedy. Exit codes: 1 a bug, 2 bad input, 3 the database is
unreachable or not a unitcat catalogue, 4 the disk (full, read-only), 5 the
database refused the work (conflict with another command, privilege,
constraint), 130 interrupted.
"""

from __future__ import annotations

import errno
import os
import sys
import tempfile
import traceback
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from catalogue import __version__
from catalogue.errors import UnitcatError

EXIT_BUG = 1
EXIT_INPUT = 2
EXIT_DATABASE = 3
EXIT_DISK = 4
EXIT_REFUSED = 5
EXIT_INTERRUPTED = 130

#: Log files kept in $UNITCAT_HOME/logs (the oldest are removed beyond this).
KEEP_LOGS = 200

_UNREACHABLE = ("57P01", "57P02", "57P03")  # admin / crash shutdown, cannot connect now
_SCHEMA = ("42P01", "42703", "42P07", "42704", "42883")  # undefined / duplicate object


@dataclass(frozen=True)
class Fault:
    message: str  # one line: what is wrong and what to do
    exit_code: int
    details: bool  # whether to write a log file (every failure but Ctrl-C: a bug report needs it)


def first_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's message (of its driver error for a DBAPIError)."""
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc)
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return type(orig if orig is not None else exc).__name__


def explain(exc: BaseException) -> Fault:
    """The one line for `exc`, its exit code, and whether to keep the details."""
    fault = _explain(exc)
    return Fault(_one_line(fault.message), fault.exit_code, fault.details)


def _explain(exc: BaseException) -> Fault:
    if isinstance(exc, KeyboardInterrupt):
        return Fault(
            "interrupted; nothing half-done was written (a run in progress is marked "
            "interrupted: run the same command again to resume or redo it).",
            EXIT_INTERRUPTED,
            False,
        )
    if isinstance(exc, UnitcatError):
        return Fault(str(exc), exc.exit_code, True)
    database = _database_fault(exc)
    if database is not None:
        return database
    if isinstance(exc, OSError):
        return _os_fault(exc)
    if isinstance(exc, MemoryError):
        return Fault(
            "out of memory; use a smaller --block-units or --batch-size (or a machine with more "
            "memory) and run the command again.",
            EXIT_DISK,
            True,
        )
    return Fault(
        f"unitcat stopped on an unexpected error ({type(exc).__name__}: {first_line(exc)}); "
        "this is a bug: please report it with the log file.",
        EXIT_BUG,
        True,
    )


def _one_line(message: str) -> str:
    return " ".join(message.split())


def _database_fault(exc: BaseException) -> Fault | None:
    from sqlalchemy.exc import DBAPIError

    if not isinstance(exc, DBAPIError):
        try:
            import psycopg
        except ImportError:  # pragma: no cover - a dependency
            return None
        if not isinstance(exc, psycopg.Error):
            return None
        orig: BaseException = exc
    else:
        orig = exc.orig if exc.orig is not None else exc
    sqlstate = str(getattr(orig, "sqlstate", None) or "")
    first = first_line(exc)
    constraint = getattr(getattr(orig, "diag", None), "constraint_name", None)
    if sqlstate in ("40P01", "40001"):
        what = "a deadlock" if sqlstate == "40P01" else "a serialization failure"
        return Fault(
            f"the database stopped this command because of {what} with another command "
            f"writing the same rows ({first}); nothing of it was written: run it again.",
            EXIT_REFUSED,
            True,
        )
    if sqlstate == "55P03":
        return Fault(
            f"another command holds a lock this one needs ({first}); run it again when that "
            "one has finished.",
            EXIT_REFUSED,
            True,
        )
    if sqlstate == "57014":
        return Fault(
            f"the database cancelled the statement ({first}: a statement timeout or an "
            "administrator); nothing of it was written.",
            EXIT_REFUSED,
            True,
        )
    if sqlstate == "42501":
        return Fault(
            f"the database role may not do this ({first}); connect as a role that owns the "
            "catalogue, or ask the database's administrator for the privilege.",
            EXIT_REFUSED,
            True,
        )
    if sqlstate == "25006":
        return Fault(
            f"the database session is read-only ({first}); use a writable database or role.",
            EXIT_REFUSED,
            True,
        )
    if sqlstate.startswith("23"):
        named = f" (constraint {constraint})" if constraint else ""
        return Fault(
            f"the database refused the write{named}: {first}; nothing was written. If another "
            "unitcat command was writing the same thing, run this one again.",
            EXIT_REFUSED,
            True,
        )
    if sqlstate == "53100":
        return Fault(
            f"the database server's disk is full ({first}); free space on the server, then "
            "run the command again.",
            EXIT_DISK,
            True,
        )
    if sqlstate.startswith("53"):
        return Fault(
            f"the database server is out of resources ({first}); close other clients or ask "
            "its administrator, then run the command again.",
            EXIT_DATABASE,
            True,
        )
    if sqlstate in _SCHEMA:
        return Fault(
            f"the database does not have the catalogue this unitcat expects ({first}); check "
            "DATABASE_URL, then `unitcat db status` (and `unitcat db upgrade` if it is behind).",
            EXIT_DATABASE,
            True,
        )
    if sqlstate.startswith("22"):
        return Fault(
            f"a value does not fit the database ({first}); check the input it came from.",
            EXIT_INPUT,
            True,
        )
    from sqlalchemy.exc import DBAPIError, OperationalError

    unreachable = (
        sqlstate.startswith("08")
        or sqlstate in _UNREACHABLE
        or (not sqlstate and isinstance(exc, OperationalError))
        or (isinstance(exc, DBAPIError) and exc.connection_invalidated)
    )
    if unreachable:
        return Fault(
            f"cannot reach the database ({first}); check DATABASE_URL or run `unitcat db start`.",
            EXIT_DATABASE,
            True,
        )
    code = f" {sqlstate}" if sqlstate else ""
    return Fault(f"database error{code}: {first}.", EXIT_DATABASE, True)


def _os_fault(exc: OSError) -> Fault:
    where = f" {exc.filename}" if exc.filename else ""
    reason = exc.strerror or first_line(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return Fault(
            f"no space left on the device of{where or ' a file being written'} ({reason}); free "
            "space and run the command again (an extraction resumes where it stopped).",
            EXIT_DISK,
            True,
        )
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return Fault(
            f"cannot write{where or ' a file'} ({reason}); set UNITCAT_HOME (or --out) to a "
            "writable folder, or fix its permissions.",
            EXIT_DISK,
            True,
        )
    return Fault(f"a file operation failed{where and ' on' + where} ({reason}).", EXIT_DISK, True)


# ------------------------------------------------------------------------------ log files


def logs_dir() -> Path:
    """$UNITCAT_HOME/logs (read straight from the environment: the settings may be what failed)."""
    home = Path(os.environ.get("UNITCAT_HOME") or "~/.local/share/unitcat").expanduser()
    return home / "logs"


def _writable_dirs() -> Iterable[Path]:
    yield logs_dir()
    yield Path(tempfile.gettempdir()) / f"unitcat-logs-{os.getuid()}"


def write_log(
    exc: BaseException, *, context: Iterable[str] = (), argv: list[str] | None = None
) -> Path | None:
    """Write the details of `exc` (traceback with causes, then `context` lines) to a new log
    file; its path, or None if no folder could be written (the home's, else a temporary one)."""
    stamp = datetime.now().astimezone()
    name = f"unitcat-{stamp:%Y%m%d-%H%M%S}-{os.getpid()}.log"
    body = [
        f"unitcat {__version__}, Python {sys.version.split()[0]}, {stamp.isoformat(timespec='seconds')}",
        f"command: {' '.join(argv if argv is not None else sys.argv)}",
        "",
        *traceback.format_exception(exc),
    ]
    lines = list(context)
    if lines:
        body += ["", "log records:", *lines]
    text = "".join(line if line.endswith("\n") else line + "\n" for line in body)
    for folder in _writable_dirs():
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / name
            path.write_text(text, encoding="utf-8")
        except OSError:
            continue
        _prune(folder)
        return path
    return None


def _prune(folder: Path) -> None:
    try:
        logs = sorted(folder.glob("unitcat-*.log"), key=lambda p: p.stat().st_mtime)
        for old in logs[:-KEEP_LOGS]:
            old.unlink(missing_ok=True)
    except OSError:
        pass
