"""The ablation and baseline `unitcat` commands as a user runs them: ablate, baseline, and random
weights that are the same network in every command (seeded, named by the seed, --name)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import Engine, text

from catalogue.cluster import Cluster
from catalogue.errors import ConfigError
from catalogue.models import demo_cnn
from catalogue.pipeline.ablate import ablate_into_catalogue
from catalogue.pipeline.dissect import build_probe
from ingest.options import cli_message
from tests.ablation_fixtures import Scored
from tests.cli import unitcat


def _ok(*args: str, env: dict[str, str]) -> str:
    result = unitcat(*args, env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _one_line_error(*args: str, env: dict[str, str]) -> str:
    result = unitcat(*args, env=env)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture
def demo_digits_checkpoint(trained_checkpoint: Path) -> Iterator[None]:
    """The briefly trained digits CNN where `load_model("demo:digits")` looks for it."""
    target = demo_cnn.checkpoint_path("digits")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(trained_checkpoint, target)
    yield
    target.unlink(missing_ok=True)


@pytest.mark.usefixtures("demo_digits_checkpoint")
def test_ablate_and_baseline_commands_fill_the_views(
    engine: Engine, database_url: str, scored: Scored
) -> None:
    env = {"DATABASE_URL": database_url}
    run = str(scored.extract_run)
    out = _ok(
        "ingest", "ablate", run, "--layers", "conv5,fc6", "--images", "40",
        "--curve-classes", "0,1", "--curve-max-k", "4", "--value", "mean", env=env,
    )  # fmt: skip
    assert "conv5" in out and "fc6" in out and "unit_importance" in out
    out = _ok("ingest", "baseline", run, "--random-weights", "--chance", "--repeats", "2", env=env)
    assert "demo:digits@random-seed0" in out
    assert "precision" in out and "misleading" in out
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM unit_importance")).scalar() == 32 + 128
        curves = conn.execute(
            text("SELECT DISTINCT class_index, k FROM class_ablation_curve ORDER BY 1, 2")
        ).all()
        assert [tuple(r) for r in curves] == [(c, k) for c in (0, 1) for k in (0, 1, 2, 4)]
        replaced = conn.execute(text("SELECT DISTINCT replaced_by FROM unit_importance")).scalar()
        assert replaced == "mean"
        kinds = dict(conn.execute(text("SELECT kind, count(*) FROM run GROUP BY kind")).all())
        assert kinds == {"extract": 2, "score": 2, "ablate": 1, "chance": 1}
        rows = conn.execute(text("SELECT count(*) FROM layer_baselines WHERE random IS NOT NULL"))
        assert rows.scalar() > 0
    assert "conv9" in _one_line_error("ingest", "ablate", run, "--layers", "conv9", env=env)
    assert "--random-weights" in _one_line_error("ingest", "baseline", run, env=env)


def _image_folder(root: Path) -> Path:
    rng = np.random.default_rng(0)
    for c in ("a", "b", "c"):
        (root / c).mkdir(parents=True)
        for i in range(2):
            pixels = rng.integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / c / f"{i}.png")
    return root


def test_random_weights_are_the_same_network_in_every_command(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    env = {"DATABASE_URL": database_url}
    folder = _image_folder(tmp_path / "images")
    probe = build_probe("digits", n_images=4, image_size=32, seed=2, out_dir=tmp_path / "probe")
    model = ("--model", "resnet18", "--weights", "none")
    _ok("ingest", "extract", *model, "--num-classes", "3", "--dataset", str(folder),
        "--layers", "layer1,fc", env=env)  # fmt: skip
    dissect = ("ingest", "dissect", *model, "--probe", str(probe.directory), "--layers", "layer1")
    _ok(*dissect, "--num-classes", "3", env=env)  # the same seeded network: accepted
    # 1,000 outputs is another network under the same name: refused, pointing at --name
    message = _one_line_error(*dissect, env=env)
    assert "other weights" in message and "--name" in message
    _ok(*dissect, "--name", "resnet18-1000@random-seed0", env=env)
    with engine.connect() as conn:
        models = conn.execute(
            text(
                "SELECT m.name, m.weights, count(DISTINCT r.id) FROM model m "
                "JOIN run r ON r.model_id = m.id GROUP BY m.name, m.weights ORDER BY m.name"
            )
        ).all()
    assert [tuple(m) for m in models] == [
        ("resnet18-1000@random-seed0", "random-seed0", 1),
        ("resnet18@random-seed0", "random-seed0", 2),  # the extraction and the dissection
    ]


def test_a_baseline_of_a_model_the_catalogue_cannot_load_takes_its_model(
    engine: Engine, database_url: str, scored: Scored, trained_checkpoint: Path
) -> None:
    """The trained network's checkpoint lies where `demo:digits` is not looked for: the
    command says to pass --model, and with it makes the baseline under the catalogue's name."""
    env = {"DATABASE_URL": database_url}
    run = str(scored.extract_run)
    assert not demo_cnn.checkpoint_path("digits").is_file()
    message = _one_line_error("ingest", "baseline", run, "--random-weights", env=env)
    assert "cannot load model 'demo:digits' again" in message and "--model" in message
    out = _ok(
        "ingest", "baseline", run, "--random-weights", "--model", str(trained_checkpoint), env=env
    )
    assert "demo:digits@random-seed0" in out
    with engine.connect() as conn:
        linked = conn.execute(
            text(
                "SELECT r.kind, m.name FROM run r JOIN model m ON m.id = r.model_id "
                "WHERE r.baseline_of IS NOT NULL ORDER BY r.id"
            )
        ).all()
    assert [tuple(r) for r in linked] == [
        ("extract", "demo:digits@random-seed0"),
        ("score", "demo:digits@random-seed0"),
    ]
    # another network's weights are refused, in one line
    message = _one_line_error(
        "ingest", "baseline", run, "--random-weights", "--model", "resnet18", "--weights", "none",
        "--num-classes", "10", env=env,
    )  # fmt: skip
    assert "resnet18@random-seed0 has other weights" in message


def _runs_by_kind(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return dict(conn.execute(text("SELECT kind, count(*) FROM run GROUP BY kind")).all())


@pytest.mark.usefixtures("demo_digits_checkpoint")
def test_bad_ablation_options_are_refused_before_the_run_is_recorded(
    engine: Engine, database_url: str, scored: Scored
) -> None:
    """Each in one line naming its flag, exit 2, and no ablation run written (not even a
    failed one): repeated layers, negative workers, curve classes the run does not have,
    images the run did not extract, and cuda on a cluster without GPUs."""
    env = {"DATABASE_URL": database_url}
    run = str(scored.extract_run)
    before = _runs_by_kind(engine)
    cases = [
        (("--layers", "fc6,fc6"), "--layers names fc6 more than once"),
        (("--layers", "fc6", "--workers", "-1"), "--workers must be 0 or more, got -1"),
        (
            ("--layers", "fc6", "--curve-classes", "0-999"),
            f"--curve-classes 10, 11, 12 and 987 more are not class indices of run {run}",
        ),
        (("--layers", "conv5", "--dataset", "digits:train"), "are not in dataset digits:train"),
    ]
    for options, message in cases:
        result = unitcat("ingest", "ablate", run, "--images", "20", *options, env=env)
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr
        (line,) = result.stderr.strip().splitlines()
        assert message in line, line
    cpu_only = Cluster("local:1", "127.0.0.1:1", n_cpus=1, n_gpus=0, started_here=False)
    with pytest.raises(ConfigError, match="has no GPUs") as refused:
        ablate_into_catalogue(
            engine, scored.extract_run, ["fc6"], device="cuda", cluster=cpu_only,
            model=scored.model,
        )  # fmt: skip
    assert cli_message(refused.value).startswith("--device cuda was asked for")
    assert _runs_by_kind(engine) == before
