"""A process that has imported torch & co. once and forks a fresh `unitcat` for each call.

Run as a script by `tests.cli.unitcat` (one per pytest process, started at its first
call). Why: a `unitcat` command that computes spends about three seconds of CPU importing
torch and torchvision before it does anything, and the suite runs some two hundred
commands. Forked from a process that already holds those imports, a call starts in
milliseconds and is still a process of its own, as a user's would be: its own arguments,
environment (replaced whole), working directory, stdin on /dev/null, stdout and stderr in
files, exit code, and the interpreter's exit (non-daemon threads joined, atexit handlers
run, streams flushed). Only third-party libraries are imported before the fork; unitcat's
own modules (`ingest`, `catalogue`) load in the child, as in the installed script.

Protocol, one JSON object a line: a request on stdin
`{"argv", "env", "cwd", "stdout", "stderr", "timeout"}`, the answer on stdout
`{"returncode"}` or `{"timeout": true}` (the child was killed, as `subprocess.run` kills
it). The server ends when its stdin closes.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import select
import signal
import sys
import threading
import traceback
from typing import Any

#: third-party libraries the commands import (none reads settings from the environment at
#: import time that a test varies); unitcat's own modules are left to the child
PRELOADED = (
    "numpy",
    "torch",
    "torchvision",
    "torchvision.models",
    "torchvision.transforms",
    "h5py",
    "PIL.Image",
    "sqlalchemy",
    "psycopg",
    "alembic.command",
    "pyarrow",
    "pyarrow.parquet",
    "rich.console",
    "rich.table",
    "rich.progress",
    "typer",
    "sqlalchemy.orm",
    "pandas",
    "psutil",
    "sklearn.datasets",
)


def _preload() -> None:
    import importlib

    for name in PRELOADED:
        # an optional library that is missing: the child imports it, or reports it, itself
        with contextlib.suppress(ImportError):
            importlib.import_module(name)


def _exit_code(error: SystemExit) -> int:
    code = error.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def _child(request: dict[str, Any]) -> None:
    """Become `unitcat ARGS`: never returns."""
    code = 1
    try:
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
            out = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(out, fd)
            os.close(out)
        os.close(null)
        sys.stdin = open(0, closefd=False)  # noqa: SIM115 - the server's reader may hold a read-ahead
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        script = request["argv"][0]
        sys.argv = list(request["argv"])
        sys.path[0] = os.path.dirname(script)  # as for the installed script
        try:
            from ingest.cli import main

            main()
            code = 0
        except SystemExit as error:
            code = _exit_code(error)
        except BaseException:
            sys.excepthook(*sys.exc_info())
            code = 1
        # what the interpreter does before it exits: thread pools told to stop and
        # non-daemon threads joined, then the atexit handlers
        threading._shutdown()  # type: ignore[attr-defined]
        atexit._run_exitfuncs()
    except BaseException:  # the child's own setup failed: say so where the test looks
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)


def _wait(pid: int, timeout: float) -> dict[str, Any]:
    """Wait for the child as `subprocess.run(timeout=…)` does: killed when time is up."""
    handle = os.pidfd_open(pid)
    try:
        ready, _, _ = select.select([handle], [], [], timeout)
    finally:
        os.close(handle)
    if not ready:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        return {"timeout": True}
    _, status = os.waitpid(pid, 0)
    return {"returncode": os.waitstatus_to_exitcode(status)}


def serve() -> None:
    _preload()
    answers = sys.stdout
    print(json.dumps({"ready": True}), file=answers, flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            _child(request)
        print(json.dumps(_wait(pid, request["timeout"])), file=answers, flush=True)


if __name__ == "__main__":
    serve()
