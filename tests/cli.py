"""Run the real `unitcat` executable in a subprocess, as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

UNITCAT = str(Path(sys.executable).with_name("unitcat"))


def unitcat(
    *args: str, env: Mapping[str, str | None] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    # a fixed, wide terminal: rich tables must not wrap or elide differently with the caller's
    full_env = {**os.environ, "COLUMNS": "200"}
    for key, value in (env or {}).items():
        if value is None:
            full_env.pop(key, None)
        else:
            full_env[key] = value
    return subprocess.run(
        [UNITCAT, *args], env=full_env, capture_output=True, text=True, timeout=timeout
    )
