"""Inputs on which the measures mean nothing are refused with one line, not stored.

- Images of one class: every selectivity measure compares a class with the others; over
  one class they are all trivially perfect (precision 1, localist, detector bar 1).
- A model whose activations are NaN (a checkpoint with NaN weights): NaN must never reach
  the catalogue as a number.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from sqlalchemy import Engine

from catalogue.errors import InputError
from catalogue.query.runs import run_records
from catalogue.store import ActivationStore, LayerSpec
from tests.cli import unitcat
from tests.lifecycle_builders import assert_one_line_fault


def _one_class_folder(root: Path, n: int = 6) -> Path:
    rng = np.random.default_rng(0)
    (root / "teapot").mkdir(parents=True)
    for i in range(n):
        pixels = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / "teapot" / f"{i}.png")
    return root


def test_scoring_images_of_one_class_is_refused_before_the_run(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    env = {"DATABASE_URL": database_url}
    folder = _one_class_folder(tmp_path / "folder")
    extract = unitcat(
        "ingest", "extract", "--model", "alexnet", "--weights", "none", "--num-classes", "1",
        "--dataset", str(folder), "--layers", "features.1", "--out", str(tmp_path / "a.h5"),
        env=env,
    )  # fmt: skip
    assert extract.returncode == 0, extract.stderr
    assert "has images of one class only ('teapot')" in extract.stderr  # said before the work
    assert "scoring will refuse them" in extract.stderr
    (run,) = run_records(engine)
    for extra in ((), ("--all-images",)):  # its correctly classified images, or all of them
        line = assert_one_line_fault(unitcat("ingest", "score", str(run["id"]), *extra, env=env), 2)
        assert "all 6 images are of one class ('teapot')" in line
        assert "Extract images of at least two classes" in line
    assert [r["kind"] for r in run_records(engine)] == ["extract"]  # no scoring run written


def test_nan_activations_are_refused_by_the_store(tmp_path: Path) -> None:
    path = tmp_path / "acts.h5"
    good = np.ones((4, 3), np.float32)
    bad = good.copy()
    bad[2, 1] = np.nan
    bad[3, 0] = np.inf
    with ActivationStore.create(path, [LayerSpec("fc", 3)], class_keys=["a", "b"]) as store:
        store.append({"fc": good}, labels=[0, 1, 0, 1], predictions=[0, 1, 0, 1],
                     image_keys=["g0", "g1", "g2", "g3"])  # fmt: skip
        with pytest.raises(InputError, match="2 activations in layer fc that are not numbers"):
            store.append({"fc": bad}, labels=[0, 1, 0, 1], predictions=[0, 1, 0, 1],
                         image_keys=["b0", "b1", "b2", "b3"])  # fmt: skip
        store.finish()
    with ActivationStore.open(path) as store:
        assert store.n_complete == 4 and store.image_keys == ["g0", "g1", "g2", "g3"]
        np.testing.assert_array_equal(store.read_units("fc", 0, 3), good)


def test_a_model_with_nan_weights_is_one_line_at_extraction(
    engine: Engine, database_url: str, trained_checkpoint: Path, tmp_path: Path
) -> None:
    payload = torch.load(trained_checkpoint, map_location="cpu", weights_only=True)
    payload["state_dict"] = {
        k: torch.full_like(v, float("nan")) if v.is_floating_point() else v
        for k, v in payload["state_dict"].items()
    }
    broken = tmp_path / "nan-weights.pt"
    torch.save(payload, broken)
    result = unitcat(
        "ingest", "extract", "--model", str(broken), "--dataset", "digits:test", "--limit", "16",
        "--out", str(tmp_path / "nan.h5"), env={"DATABASE_URL": database_url},
    )  # fmt: skip
    line = assert_one_line_fault(result, 2)
    assert "that are not numbers (NaN or infinite), first for image" in line
    assert "check the model's weights" in line
    (run,) = run_records(engine)
    assert run["status"] == "failed"
