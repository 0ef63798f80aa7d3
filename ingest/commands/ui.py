"""`unitcat ui`: the Streamlit app on the catalogue, served headless.

The server is a child process. Stopping `unitcat ui` stops it: Ctrl+C (SIGINT),
SIGTERM and SIGHUP are passed on to the child, which is killed if it has not
stopped within `STOP_GRACE_S`; and the child is started with the kernel's
parent-death signal (Linux), so that even a `kill -9` of `unitcat ui` does not
leave it serving the port. The child runs in its own session, so a Ctrl+C in the
terminal reaches it once, through us.

Once the child has stopped, this process leaves at once (`os._exit` after
flushing), with no interpreter teardown between the server's exit and ours, so a
supervisor that stops `unitcat ui` sees it gone when the server is. Until then it
imports no more than the light commands do (neither streamlit, which runs in the
child, nor torch).
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

import typer

import ui as ui_package
from ingest.console import console, err_console

STOP_GRACE_S = 10.0
STUDY_ENV = "UNITCAT_STUDY"  # ui/study.py reads it
_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_PR_SET_PDEATHSIG = 1


def app_path() -> Path:
    """ui/serve.py of the installed `ui` package (a namespace package in some editable
    installs): the server of ui/app.py, whose deep links log no 404s (see ui/serve.py)."""
    for folder in ui_package.__path__:
        candidate = Path(folder) / "serve.py"
        if candidate.is_file():
            return candidate.resolve()
    raise FileNotFoundError("ui/serve.py is missing from the installed unitcat; reinstall it.")


def streamlit_command(port: int, address: str) -> list[str]:
    """The `streamlit run` command line for the app (headless, no usage statistics)."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app_path()),
        "--server.headless",
        "true",
        "--server.port",
        str(port),
        "--server.address",
        address,
        "--browser.gatherUsageStats",
        "false",
        "--client.toolbarMode",
        "viewer",
        "--server.fileWatcherType",
        "none",
    ]


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux for SIGTERM when the parent dies."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the signal forwarding still applies
        pass


def serve(command: list[str], env: dict[str, str]) -> tuple[int, bool]:
    """Run the server until it exits or we are told to stop; (its exit status, stopped by us)."""
    child = subprocess.Popen(command, env=env, start_new_session=True, preexec_fn=_die_with_parent)
    stop_requested: list[float] = []

    def forward(signum: int, _frame: FrameType | None) -> None:
        if not stop_requested:
            stop_requested.append(time.monotonic())
        if child.poll() is None:
            child.send_signal(signal.SIGTERM if signum == signal.SIGHUP else signum)

    previous = {s: signal.signal(s, forward) for s in _FORWARDED}
    try:
        while True:
            try:
                return child.wait(timeout=0.5), bool(stop_requested)
            except subprocess.TimeoutExpired:
                if stop_requested and time.monotonic() - stop_requested[0] > STOP_GRACE_S:
                    child.kill()
    finally:
        if child.poll() is None:  # an exception of our own: never leave the server behind
            child.kill()
            child.wait()
        for s, handler in previous.items():
            signal.signal(s, handler)


def _leave(code: int) -> None:
    """Exit now, skipping the interpreter teardown of the CLI's heavy imports."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def ui(
    port: int = typer.Option(8501, min=1, max=65535, help="Port to serve the app on."),
    address: str = typer.Option(
        "127.0.0.1", help="Address to listen on (0.0.0.0: every interface of this machine)."
    ),
    study: bool = typer.Option(
        False,
        "--study",
        help="Serve the rating study alone: participants see only the Rate page, with no "
        "navigation and no class names.",
    ),
) -> None:
    """Serve the catalogue's web UI (search, units, compare, layers, measures, runs, SQL) until
    Ctrl+C.

    It uses the same database as the other commands (DATABASE_URL, or the embedded server).
    """
    env = dict(os.environ)
    if study:
        env[STUDY_ENV] = "1"
    what = "rating study" if study else "UI"
    console.print(f"unitcat {what} at http://{address}:{port}  (Ctrl+C stops it)", highlight=False)
    status, stopped = serve(streamlit_command(port, address), env)
    if stopped or status == 0:
        _leave(0)
    err_console.print(
        f"[red]the UI server exited with status {status}[/] "
        f"(is port {port} already in use? try --port)",
        highlight=False,
    )
    _leave(status if 0 < status < 256 else 1)
    raise typer.Exit(status)  # unreachable
