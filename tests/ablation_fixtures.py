"""Fixtures for ablation and baselines: a demo CNN trained briefly on digits (once per
session, at 60-70 % test accuracy, so that scoring has correct images of every class and
units matter), and a catalogue in which it is extracted and scored."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine

from catalogue.data import ImageDataset, resolve_dataset
from catalogue.models import ModelInfo, demo_cnn, load_demo_checkpoint

TRAINED_LAYERS = ("conv4", "conv5", "fc6", "fc7")


@pytest.fixture(scope="session")
def trained_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("trained") / "demo-digits.pt"
    demo_cnn.train_demo("digits", epochs=4, limit=600, out_path=path)
    return path


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


@pytest.fixture
def scored(engine: Engine, trained_model: ModelInfo, digits_test: ImageDataset) -> Scored:
    from catalogue.pipeline.extract import extract_into_catalogue
    from catalogue.pipeline.scoring import score_extraction

    extracted = extract_into_catalogue(engine, trained_model, digits_test, list(TRAINED_LAYERS))
    score = score_extraction(engine, extracted.run_id)
    return Scored(
        extracted.run_id, score.run_id, trained_model, digits_test, extracted.summary.path
    )
