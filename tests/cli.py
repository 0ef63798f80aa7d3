"""Run `unitcat` as a user would: a process of its own, its output captured.

`unitcat(…)` forks the command from a process that has imported torch and the other
heavy libraries once (`tests/unitcat_forks.py`); each call is still a separate process
with the environment, arguments, exit code and output of the installed script, minus
about three seconds of imports. A test about the process itself — which modules it
imports, signals, a kill, two commands at once — starts the real executable (`UNITCAT`)
with `subprocess`, as does `unitcat(…, fresh=True)` and any call that sets a `PYTHON…`
variable (read only when an interpreter starts).
"""

from __future__ import annotations

import atexit
import json
import locale
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path

UNITCAT = str(Path(sys.executable).with_name("unitcat"))
_FORKS_SCRIPT = Path(__file__).with_name("unitcat_forks.py")


def unitcat(
    *args: str,
    env: Mapping[str, str | None] | None = None,
    timeout: float = 600,
    fresh: bool = False,
) -> subprocess.CompletedProcess[str]:
    # a fixed, wide terminal: rich tables must not wrap or elide differently with the caller's
    full_env = {**os.environ, "COLUMNS": "200"}
    for key, value in (env or {}).items():
        if value is None:
            full_env.pop(key, None)
        else:
            full_env[key] = value
    argv = [UNITCAT, *args]
    starts_an_interpreter = any(key.startswith("PYTHON") for key in env or {})
    if not (fresh or starts_an_interpreter):
        forked = _forks.run(argv, full_env, timeout)
        if forked is not None:
            return forked
    return subprocess.run(argv, env=full_env, capture_output=True, text=True, timeout=timeout)


class _ForkServer:
    """The fork server of this pytest process, started at the first call; None from `run`
    where it cannot be (no `os.fork`/`pidfd_open`, or it died), and the caller starts the
    real executable instead."""

    def __init__(self) -> None:
        self._process: subprocess.Popen[str] | None = None
        self._broken = not (hasattr(os, "fork") and hasattr(os, "pidfd_open"))
        self._outputs: Path | None = None  # the commands' stdout and stderr, once started
        self._busy = threading.Lock()

    def _server(self) -> subprocess.Popen[str] | None:
        if self._process is None and not self._broken:
            self._outputs = Path(tempfile.mkdtemp(prefix="unitcat-forks-"))
            atexit.register(self.close)
            process = subprocess.Popen(
                [sys.executable, str(_FORKS_SCRIPT)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                text=True, env={**os.environ, "COLUMNS": "200"}, cwd=tempfile.gettempdir(),
            )  # fmt: skip
            assert process.stdout is not None
            if json.loads(process.stdout.readline() or "{}").get("ready"):
                self._process = process
            else:
                self._broken = True
                process.kill()
        return self._process

    def run(
        self, argv: list[str], env: Mapping[str, str], timeout: float
    ) -> subprocess.CompletedProcess[str] | None:
        # one call at a time: a second thread's call (two commands at once) runs the script
        if not self._busy.acquire(blocking=False):
            return None
        try:
            return self._forked(argv, env, timeout)
        finally:
            self._busy.release()

    def _forked(
        self, argv: list[str], env: Mapping[str, str], timeout: float
    ) -> subprocess.CompletedProcess[str] | None:
        process = self._server()
        if process is None:
            return None
        assert process.stdin is not None and process.stdout is not None
        out = Path(tempfile.mkstemp(dir=self._outputs, suffix=".out")[1])
        err = Path(tempfile.mkstemp(dir=self._outputs, suffix=".err")[1])
        request = {"argv": argv, "env": dict(env), "cwd": os.getcwd(), "timeout": timeout,
                   "stdout": str(out), "stderr": str(err)}  # fmt: skip
        try:
            process.stdin.write(json.dumps(request) + "\n")
            process.stdin.flush()
            answer = json.loads(process.stdout.readline())
        except (OSError, ValueError):  # the server died: this and later calls run the script
            self._process, self._broken = None, True
            return None
        stdout, stderr = _text(out), _text(err)
        out.unlink()
        err.unlink()
        if answer.get("timeout"):
            raise subprocess.TimeoutExpired(argv, timeout, stdout, stderr)
        return subprocess.CompletedProcess(argv, answer["returncode"], stdout, stderr)

    def close(self) -> None:
        if self._process is not None:
            assert self._process.stdin is not None
            self._process.stdin.close()
            self._process.wait(timeout=30)
            self._process = None
        if self._outputs is not None:
            shutil.rmtree(self._outputs, ignore_errors=True)
            self._outputs = None


def _text(path: Path) -> str:
    """What `subprocess.run(text=True)` reads: the locale's encoding, universal newlines."""
    data = path.read_bytes().decode(locale.getpreferredencoding(False))
    return data.replace("\r\n", "\n").replace("\r", "\n")


_forks = _ForkServer()
