"""`unitcat ui`: the Streamlit app on the catalogue, served headless."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import typer

import ui as ui_package
from ingest.console import console


def app_path() -> Path:
    """ui/app.py of the installed `ui` package (a namespace package in some editable installs)."""
    for folder in ui_package.__path__:
        candidate = Path(folder) / "app.py"
        if candidate.is_file():
            return candidate.resolve()
    raise FileNotFoundError("ui/app.py is missing from the installed unitcat; reinstall it.")


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
    ]


def ui(
    port: int = typer.Option(8501, min=1, max=65535, help="Port to serve the app on."),
    address: str = typer.Option(
        "127.0.0.1", help="Address to listen on (0.0.0.0: every interface of this machine)."
    ),
) -> None:
    """Serve the catalogue's web UI (search, units, layers, measures, runs, SQL) until Ctrl+C.

    It uses the same database as the other commands (DATABASE_URL, or the embedded server).
    """
    console.print(f"unitcat UI at http://{address}:{port}  (Ctrl+C stops it)", highlight=False)
    try:
        completed = subprocess.run(streamlit_command(port, address), check=False)
    except KeyboardInterrupt:
        raise typer.Exit(0) from None
    if completed.returncode not in (0, -2, 130):
        console.print(
            f"[red]the UI server exited with status {completed.returncode}[/] "
            f"(is port {port} already in use? try --port)",
            highlight=False,
        )
        raise typer.Exit(completed.returncode)
