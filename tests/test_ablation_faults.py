"""A full disk while the ablation file is written: one line, exit 4, a log file, the run
failed, no `.partial` file; the same command resumes once there is space (a real tmpfs,
as in tests/test_faults.py)."""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from sqlalchemy import Engine

from catalogue.ablation.h5 import write_file_bytes
from catalogue.errors import DiskFull
from catalogue.query.runs import run_records
from tests.ablation_fixtures import Scored
from tests.cli import unitcat
from tests.lifecycle_builders import assert_one_line_fault, fault_log
from tests.test_faults import small_filesystem


def _fill(folder: Path) -> Path:
    """Write a file until its file system has no byte left."""
    filler = folder / "filler"
    for size in (65536, 512, 1):
        while True:
            try:
                with open(filler, "ab") as handle:
                    handle.write(b"\0" * size)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                break
    return filler


def test_a_full_disk_while_the_ablation_file_is_written_is_one_line_and_a_rerun_finishes(
    engine: Engine, database_url: str, scored: Scored, trained_checkpoint: Path, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    (home / "checkpoints").mkdir(parents=True)
    shutil.copy(trained_checkpoint, home / "checkpoints" / "demo-digits.pt")
    env = {"DATABASE_URL": database_url, "UNITCAT_HOME": str(home)}
    command = ("ingest", "ablate", str(scored.extract_run), "--layers", "fc6", "--images", "20",
               "--curve-classes", "0", "--curve-max-k", "2")  # fmt: skip
    with small_filesystem(home / "runs", "1m") as runs:
        filler = _fill(runs)
        result = unitcat(*command, env=env)
        line = assert_one_line_fault(result, 4)  # not a segfault (139), no h5py traceback
        assert f"the disk of {runs}/ablate-run" in line and "run the same command again" in line
        assert fault_log(result.stderr).parent == home / "logs"
        assert sorted(p.name for p in runs.iterdir()) == ["filler"]  # no .partial, no file
        ablations = [r for r in run_records(engine) if r["kind"] == "ablate"]
        assert [r["status"] for r in ablations] == ["failed"]
        assert "DiskFull" in ablations[0]["error"]

        filler.unlink()
        again = unitcat(*command, env=env)
        assert again.returncode == 0, again.stderr
        ablations = [r for r in run_records(engine) if r["kind"] == "ablate"]
        assert [r["status"] for r in ablations] == ["done"]
        (written,) = runs.glob("ablate-run*.h5")
        with h5py.File(written, "r") as h5:
            assert h5["layers/fc6/accuracy_change"].shape[0] == 128
        assert not list(runs.glob("*.partial"))


def test_writing_the_file_bytes_onto_a_full_disk_removes_the_partial_file(tmp_path: Path) -> None:
    with small_filesystem(tmp_path / "small", "1m") as small:
        data = np.random.default_rng(0).bytes(2 << 20)  # twice the file system
        with pytest.raises(DiskFull, match=r"the file needs 2\.0 MiB") as raised:
            write_file_bytes(small / "ablate.h5", data, run_id=7)
        assert "ablation run 7 was not written" in str(raised.value)
        assert list(small.iterdir()) == []
        write_file_bytes(small / "ablate.h5", data[:4096], run_id=7)  # room for a small one
        assert (small / "ablate.h5").read_bytes() == data[:4096]
        assert list(small.iterdir()) == [small / "ablate.h5"]
