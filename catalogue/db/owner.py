"""Who runs a run: this process's identity, and whether a recorded owner is still alive.

A run records its owner as (host, pid, process start time). The start time is
what makes the pid check honest: pids are recycled, and a new process that got
the dead owner's pid has a later start time. Only an owner on this host can be
checked this way; for an owner on another host `owner_alive` says it cannot
tell (None), and the database's view of the owner's session decides
(`catalogue.db.runs`: the owner holds an advisory lock for as long as it runs).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime

import psutil

#: Two start times closer than this are the same process (the kernel's tick is 10 ms;
#: /proc and psutil round differently).
START_TIME_TOLERANCE_S = 1.0


@dataclass(frozen=True)
class ProcessOwner:
    host: str
    pid: int
    started_at: datetime | None


def this_host() -> str:
    return socket.gethostname()


def process_started_at(pid: int) -> datetime | None:
    """When process `pid` started (UTC), or None if there is no such process."""
    try:
        return datetime.fromtimestamp(psutil.Process(pid).create_time(), tz=UTC)
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess, ProcessLookupError):
        return None


def this_process() -> ProcessOwner:
    pid = os.getpid()
    return ProcessOwner(host=this_host(), pid=pid, started_at=process_started_at(pid))


def owner_alive(host: str | None, pid: int | None, started_at: datetime | None) -> bool | None:
    """Whether the recorded owner still runs: True or False on this host, None elsewhere
    (or when nothing was recorded)."""
    if host is None or pid is None or host != this_host():
        return None
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        created = process.create_time()
    except (psutil.NoSuchProcess, ProcessLookupError):
        return False
    except psutil.AccessDenied:
        return None
    if started_at is None:
        return True
    return abs(created - started_at.timestamp()) <= START_TIME_TOLERANCE_S
