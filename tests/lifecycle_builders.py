"""Real extraction runs without a model: an HDF5 store of random activations registered as a
finished `extract` run, so that scoring (and killing a scoring) takes a chosen time."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from sqlalchemy import Engine, text

from catalogue.db.identities import LayerSpec, register_dataset, register_model
from catalogue.db.runs import recorded_run
from catalogue.store import ActivationStore
from catalogue.store import LayerSpec as StoreLayer

N_CLASSES = 10


def synthetic_extraction(
    engine: Engine, path: Path, n_images: int, n_units: int, *, seed: int = 0
) -> int:
    """A finished extraction run of `n_units` fc units over `n_images` images (all correctly
    classified, random labels); its run id."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, N_CLASSES, n_images)
    keys = [f"k{i}" for i in range(N_CLASSES)]
    with ActivationStore.create(
        path, [StoreLayer("fc", n_units)], class_keys=keys, params={"synthetic": seed}
    ) as store:
        store.append(
            {"fc": rng.random((n_images, n_units), dtype=np.float32)},
            labels=labels,
            predictions=labels,
            image_keys=[f"img{i}" for i in range(n_images)],
        )
        store.finish()
    with engine.begin() as conn:
        model = register_model(
            conn,
            name=f"synth-{n_units}",
            architecture="synthetic",
            weights=None,
            checksum=f"synth-{n_units}",
            layers=[LayerSpec("fc", "fc", n_units, 0)],
        )
        dataset = register_dataset(
            conn,
            name="synth-data",
            kind="test",
            source=None,
            class_keys=keys,
            class_names=[f"class {i}" for i in range(N_CLASSES)],
        )
    with recorded_run(
        engine,
        "extract",
        {"synthetic": str(path)},
        label=f"synthetic {n_units} units",
        model_id=model.id,
        dataset_id=dataset.id,
        h5_path=str(path),
    ) as run:
        pass
    return run.id


def wait_for(condition: Callable[[], bool], what: str, *, process: subprocess.Popen) -> None:
    """Poll `condition` until it holds; fail if `process` ended first (no wall-clock limit)."""
    while not condition():
        if process.poll() is not None:
            out, err = process.communicate()
            raise AssertionError(f"the process ended before {what}:\n{out}\n{err}")
        time.sleep(0.05)


def running_owner(engine: Engine, kind: str) -> int | None:
    """The pid recorded for the newest running run of `kind`, if any."""
    with engine.connect() as conn:
        return conn.execute(
            text(
                "SELECT owner_pid FROM run_status WHERE kind = :k AND status = 'running' "
                "ORDER BY run_id DESC LIMIT 1"
            ),
            {"k": kind},
        ).scalar_one_or_none()


def kill(process: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    os.kill(process.pid, sig)
    process.communicate()


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def fault_log(stderr: str) -> Path:
    """The log file the one error line names."""
    (line,) = error_lines(stderr)
    assert "Details: " in line, line
    return Path(line.rsplit("Details: ", 1)[1].strip())


def assert_one_line_fault(result: subprocess.CompletedProcess[str], code: int) -> str:
    """One `error:` line (the last line), exit `code`, no traceback anywhere, and a log file
    with the details; the line."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    for stream in (result.stdout, result.stderr):
        assert "Traceback" not in stream, stream
        assert "Exception ignored" not in stream, stream
    lines = error_lines(result.stderr)
    assert len(lines) == 1, result.stderr
    assert result.stderr.strip().splitlines()[-1] == lines[0]
    log = fault_log(result.stderr)
    assert log.is_file(), log
    assert "Traceback" in log.read_text() or "KeyboardInterrupt" in log.read_text()
    return lines[0]
