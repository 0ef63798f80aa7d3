"""`bench/db.py` at a tiny size: it builds its catalogue through the writers, times the
query surface, and the current views answer exactly as the previous revision's views."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_database_bench_runs_and_both_view_definitions_agree(
    tmp_path: Path, initialised_data_dir: Callable[[Path], Path]
) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("DATABASE_URL", None)
    initialised_data_dir(tmp_path / "home" / "postgres")  # its server, without a new initdb
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "db.py"),
            "--units",
            "600",
            "--layer-units",
            "20",
            "--repeats",
            "1",
            "--baseline-models",
            "1",
            "--home",
            str(tmp_path / "home"),
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    try:
        assert result.returncode == 0, result.stdout + result.stderr
        out = result.stdout
        assert "3 models × 10 layers × 20 units = 600 units" in out
        assert "current  writer:       400 unit rows" in out
        for label in ("headline query, count(*)", "one unit", "layer_detectors, one model"):
            assert label in out
        assert "DIFFERENT ROWS" not in out
    finally:
        from catalogue.db import server

        server.stop(tmp_path / "home" / "postgres")
