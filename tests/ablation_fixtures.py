"""Fixtures for ablation and baselines: a demo CNN trained briefly on digits (once per
session, at 60-70 % test accuracy, so that scoring has correct images of every class and
units matter), and a catalogue in which it is extracted and scored."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.pool import NullPool

from catalogue.data import ImageDataset, resolve_dataset
from catalogue.models import ModelInfo, demo_cnn, load_demo_checkpoint

TRAINED_LAYERS = ("conv4", "conv5", "fc6", "fc7")


@pytest.fixture(scope="session")
def trained_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("trained") / "demo-digits.pt"
    demo_cnn.train_demo("digits", epochs=4, limit=600, out_path=path)
    return path


@pytest.fixture(scope="session")
def quick_checkpoint_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo checkpoint file (one quick epoch on 200 digits): a model the CLI loads by path,
    trained once per session for the modules that need one."""
    out = tmp_path_factory.mktemp("quick-checkpoint") / "demo.pt"
    return demo_cnn.train_demo("digits", epochs=1, limit=200, out_path=out).checkpoint


@pytest.fixture
def trained_model(trained_checkpoint: Path) -> ModelInfo:
    return load_demo_checkpoint(trained_checkpoint)


@pytest.fixture
def digits_test(trained_model: ModelInfo) -> ImageDataset:
    return resolve_dataset("digits:test", transform=trained_model.transform)


@dataclass(frozen=True)
class Scored:
    extract_run: int
    score_run: int
    model: ModelInfo
    dataset: ImageDataset
    h5_path: Path


@dataclass(frozen=True)
class ScoredTemplate:
    """The trained CNN extracted and scored once, in the template database `database`."""

    database: str
    extract_run: int
    score_run: int
    h5_path: Path


@pytest.fixture(scope="session")
def scored_template(
    database_template: Callable[..., tuple[str, tuple[int, int, Path]]], trained_checkpoint: Path
) -> ScoredTemplate:
    from catalogue.pipeline.extract import extract_into_catalogue
    from catalogue.pipeline.scoring import score_extraction

    model = load_demo_checkpoint(trained_checkpoint)
    dataset = resolve_dataset("digits:test", transform=model.transform)

    def build(url: str) -> tuple[int, int, Path]:
        engine = create_engine(url, poolclass=NullPool)
        extracted = extract_into_catalogue(engine, model, dataset, list(TRAINED_LAYERS))
        score = score_extraction(engine, extracted.run_id)
        engine.dispose()
        return extracted.run_id, score.run_id, extracted.summary.path

    database, (extract_run, score_run, h5_path) = database_template(build)
    return ScoredTemplate(database, extract_run, score_run, h5_path)


@pytest.fixture
def scored(
    engine: Engine,
    scored_template: ScoredTemplate,
    trained_model: ModelInfo,
    digits_test: ImageDataset,
) -> Scored:
    """The trained CNN extracted and scored in the test's database (`engine`, a clone of
    `scored_template`, as tests/conftest.py's CATALOGUE_TEMPLATES says)."""
    with engine.connect() as conn:
        status = conn.execute(
            text("SELECT status FROM run WHERE id = :r"), {"r": scored_template.score_run}
        ).scalar_one()
    assert status == "done", "the test's database is not a clone of the scored catalogue"
    return Scored(
        scored_template.extract_run,
        scored_template.score_run,
        trained_model,
        digits_test,
        scored_template.h5_path,
    )
