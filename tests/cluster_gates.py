"""Real work that waits at a gate, so that a test can kill a Ray worker at a known point.

A worker that reaches the gate writes ``waiting-<pid>`` into the gate folder
and waits until the file ``open`` appears there. The test reads the pid,
kills that process (SIGKILL, as the kernel's OOM killer would), opens the
gate, and checks that Ray ran the work again in a new process and that the
result is whole. The workers import this module by name (``tests`` is on
their PYTHONPATH), as they import any installed package. This module imports
no torch, so a worker restarted for `gated_column_sums` starts quickly
(`GatedDataset` is in `tests.cluster_datasets`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from catalogue.cluster import UnitBlock

POLL = 0.02
#: a bound on waiting, so that a broken test fails instead of hanging
PATIENCE = 300


def wait_at_gate(gate: Path) -> None:
    if (gate / "open").exists():
        return
    (gate / f"waiting-{os.getpid()}").touch()
    deadline = time.monotonic() + PATIENCE
    while not (gate / "open").exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"the gate {gate} was never opened")
        time.sleep(POLL)


def waiting_pid(gate: Path, driver: subprocess.Popen | None = None) -> int:
    """The pid of the first process waiting at the gate (waits for one to arrive, while ``driver`` runs)."""
    deadline = time.monotonic() + PATIENCE
    while True:
        found = sorted(gate.glob("waiting-*"))
        if found:
            return int(found[0].name.split("-", 1)[1])
        if driver is not None and driver.poll() is not None:
            raise RuntimeError(f"the driver ended (exit {driver.returncode}) before the gate")
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing reached the gate {gate}")
        time.sleep(POLL)


def is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_until_gone(pid: int) -> None:
    deadline = time.monotonic() + PATIENCE
    while is_alive(pid):
        if time.monotonic() > deadline:
            raise TimeoutError(f"process {pid} is still running")
        time.sleep(POLL)


def kill_waiting_worker(gate: Path) -> threading.Thread:
    """In the background: kill the process that reaches the gate, wait until it is gone, open the gate."""
    killed: list[int] = []

    def run() -> None:
        pid = waiting_pid(gate)
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)
        wait_until_gone(pid)
        (gate / "open").touch()

    thread = threading.Thread(target=run, daemon=True)
    thread.killed = killed  # type: ignore[attr-defined]
    thread.start()
    return thread


@dataclass(frozen=True)
class GatedSums:
    """Context of `gated_column_sums`: a matrix, and the block that waits at the gate."""

    matrix: np.ndarray
    gate: Path
    gated: UnitBlock


def gated_column_sums(context: GatedSums, block: UnitBlock) -> tuple[int, np.ndarray]:
    """(pid, the block's column sums): the gated block waits at the gate first."""
    if block == context.gated:
        wait_at_gate(context.gate)
    return os.getpid(), context.matrix[:, block.start : block.stop].sum(axis=0)


def loaded_checksum(handle: Any, _item: Any, _progress: Any) -> str:
    """The weights' checksum of the model a `ModelHandle` loads on the worker (a task)."""
    return str(handle.load().checksum)
