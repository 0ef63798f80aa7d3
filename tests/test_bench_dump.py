"""`bench/dump.py` at a tiny size: it builds the generated catalogue of bench/db.py, exports
it, imports it into an empty database, fails unless the imported catalogue answers as the
source does, imports it again without a change, and measures PostgreSQL's floor for the
unit-sized tables."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from catalogue.share.spec import TABLES

ROOT = Path(__file__).resolve().parents[1]


def test_the_dump_bench_runs_and_the_imported_catalogue_answers_the_same(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("DATABASE_URL", None)
    home = tmp_path / "home"
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "dump.py"), "--units", "600", "--layer-units",
         "20", "--writer-models", "1", "--home", str(home)],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    try:
        assert result.returncode == 0, result.stdout + result.stderr
        out = result.stdout
        assert "3 models × 10 layers × 20 units = 600 units" in out
        tables = len(TABLES)  # every table of the dump, the 2-AFC study's included
        assert re.search(rf"export: [\d,]+ rows of {tables} tables \(600 unit rows\)", out), out
        assert re.search(r"import: [\d,]+ result rows \(600 unit rows\)", out), out
        assert "the imported catalogue answers as the source does" in out
        assert "import again: nothing new" in out
        # PostgreSQL's floor: the same rows of the unit-sized tables by plain COPY
        assert re.search(
            r"floor: [\d,]+ rows of unit, unit_metrics, dissection by plain binary COPY into "
            r"bare tables [\d.]+ s = [\d,]+ unit rows/s, into tables with their indexes",
            out,
        ), out
    finally:
        from catalogue.db import server

        server.stop(home / "postgres")
