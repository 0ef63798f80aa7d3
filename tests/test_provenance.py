"""Every run records its provenance when it is made — versions, machine, threads, seeds,
the dataset's fingerprint — and `unitcat runs show N` prints it."""

from __future__ import annotations

import hashlib
import platform
import sys
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.pool import NullPool

import catalogue
from catalogue import provenance
from tests.cli import unitcat
from tests.share_builders import SharedCatalogue
from tests.ui_fixtures import UICatalogue

pytest_plugins = ("tests.share_fixtures",)


def test_dataset_fingerprint_hashes_the_class_keys_in_order() -> None:
    keys = ["n01", "n02", "n03"]
    got = provenance.dataset_fingerprint(keys, 120)
    assert got == {
        "n_images": 120,
        "n_classes": 3,
        "class_keys_sha256": hashlib.sha256(b"n01\nn02\nn03").hexdigest(),
    }
    assert (
        provenance.dataset_fingerprint(keys[::-1])["class_keys_sha256"] != got["class_keys_sha256"]
    )
    assert provenance.dataset_fingerprint([])["n_classes"] == 0


def test_gather_records_this_process_and_machine() -> None:
    import h5py
    import torch

    torch.set_num_threads(1)
    got = provenance.gather("18.6", {"seed": 7})
    versions = got["versions"]
    assert versions["unitcat"] == catalogue.__version__
    assert versions["python"] == platform.python_version()
    assert (versions["torch"], versions["numpy"], versions["h5py"]) == (
        torch.__version__, np.__version__, h5py.__version__,
    )  # fmt: skip
    assert versions["postgresql"] == "18.6"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                 if line.startswith("model name")]  # fmt: skip
        if names:
            assert got["machine"]["cpu"] == names[0]
    assert got["torch"]["threads"] == 1
    assert got["torch"]["deterministic_algorithms"] == torch.are_deterministic_algorithms_enabled()
    assert got["seed"] == 7
    root = Path(catalogue.__file__).resolve().parents[1]
    if (root / ".git").exists():
        assert got["commit"] and len(got["commit"].removesuffix("-dirty")) == 40


def test_without_torch_loaded_no_torch_state_is_made_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    got = provenance.gather(None)
    assert got["torch"] == {}
    assert got["versions"]["torch"]  # the installed distribution's version


def _runs(url: str) -> dict[str, dict]:
    engine: Engine = create_engine(url, poolclass=NullPool)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, kind, provenance FROM run ORDER BY id")).all()
        server = conn.execute(text("SHOW server_version")).scalar_one()
    engine.dispose()
    return {"rows": rows, "server": server}


def test_each_pipeline_records_its_versions_device_seed_and_data(
    shared_catalogue: SharedCatalogue,
) -> None:
    found = _runs(shared_catalogue.url)
    by_id = {r.id: r.provenance for r in found["rows"]}
    for run_id, p in by_id.items():
        assert p["versions"]["postgresql"] == found["server"], run_id
        assert p["versions"]["unitcat"] == catalogue.__version__
        assert p["machine"]["cpu"] == provenance.cpu_model()
    keys_hash = hashlib.sha256("\n".join(shared_catalogue.class_keys).encode()).hexdigest()
    extract = by_id[shared_catalogue.extract_run]
    assert extract["dataset"] == {
        "n_images": shared_catalogue.n_images,
        "n_classes": len(shared_catalogue.class_keys),
        "class_keys_sha256": keys_hash,
    }
    assert extract["device"] == "cpu"
    assert extract["torch"]["threads"] >= 1  # the extraction ran torch in this process
    score = by_id[shared_catalogue.score_run]
    assert score["dataset"]["class_keys_sha256"] == keys_hash
    assert 0 < score["dataset"]["n_images"] <= shared_catalogue.n_images  # correct images
    assert by_id[shared_catalogue.am_run]["seed"] == 0
    assert by_id[shared_catalogue.am_run]["device"] == "cpu"
    assert by_id[shared_catalogue.chance_run]["seed"] == 0


def test_a_failed_run_records_its_provenance_too(catalogue: UICatalogue) -> None:
    found = _runs(catalogue.url)
    (failed,) = [r for r in found["rows"] if r.id == catalogue.failed_run]
    assert failed.provenance["versions"]["postgresql"] == found["server"]


def test_runs_show_prints_a_run_with_its_provenance(
    shared_catalogue: SharedCatalogue, tmp_path: Path
) -> None:
    import torch

    env = {"DATABASE_URL": shared_catalogue.url, "UNITCAT_HOME": str(tmp_path)}
    shown = unitcat("runs", "show", str(shared_catalogue.extract_run), env=env)
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert f"{shared_catalogue.extract_run} · extract · done" in out
    assert f"torch {torch.__version__}" in out and f"numpy {np.__version__}" in out
    assert provenance.cpu_model() in out
    assert f"{shared_catalogue.n_images:,} images · 10 classes" in out
    assert "device       cpu" in out
    assert "unit_top_image" not in out  # an extraction has no result rows
    scored = unitcat("runs", "show", str(shared_catalogue.score_run), env=env)
    assert (
        "unit_metrics" in scored.stdout
        and f"from run     {shared_catalogue.extract_run} (extract)" in scored.stdout
    )

    listed = unitcat("runs", env=env)  # the bare group still lists the runs
    assert listed.returncode == 0, listed.stderr
    assert " extract " in listed.stdout and " score " in listed.stdout
    only = unitcat("runs", "--kind", "am", env=env)
    assert " am " in only.stdout and " extract " not in only.stdout
    missing = unitcat("runs", "show", "99999", env=env)
    assert missing.returncode == 2 and "no run '99999'" in missing.stderr
