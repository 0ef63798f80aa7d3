"""The ``--cluster`` option shared by the commands that can run on Ray."""

from __future__ import annotations

from typing import Any

import typer

CLUSTER_HELP = (
    "Run on Ray: local:N (a Ray instance with N CPUs on this machine, for this command), "
    "auto (the cluster this machine joined with `ray start`), or the head's ADDRESS. "
    "Default: one process."
)


def cluster_option() -> Any:
    """``--cluster local:N|auto|ADDRESS`` (None: the one-process path)."""
    return typer.Option(None, "--cluster", help=CLUSTER_HELP, metavar="local:N|auto|ADDRESS")
