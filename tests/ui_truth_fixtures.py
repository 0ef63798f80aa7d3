"""A second small real catalogue for the UI tests, built like tests/ui_fixtures.py (an HDF5
store per model, an extraction run pointing at it, the real scorer), sized and designed
for what the first one cannot show:

- more than 5,000 scored images (20 classes × 300, every image correct), so that a jitter
  plot carries more points than Altair lets a chart serialise by default;
- a trained model `bignet` and its random-weights baseline `bignet@random-seed0`, whose
  extraction and scoring runs are linked to the trained ones (`baseline_of`), as
  `unitcat ingest baseline --random-weights` links them;
- a misleading unit whose precision class and max-informedness class differ.

bignet.fc1.0 (worked out from docs/DESIGN.md's definitions): 48 "red dress" images at
8–10 and 12 images of other classes (not "red coat") at 8–10 are the top 60, so top-60
precision is 48/60 = .8 for red dress; every "red coat" image and 3,000 images of the other
classes (the 252 other red dresses at 0) sit at 1.0. At threshold 1.0 red coat's
informedness is 1 − 3,060/5,700 = .463 (red dress's best is 48/300 − 12/5,700 = .158), so
the max-informedness class is red coat, with a false-alarm rate of 3,060/3,360 = .911:
a precision "detector" of red dress whose false alarms are counted at red coat's threshold.
The baseline's fc1.1 has the same design, so the misleading preset finds units of both
models. Every other unit is ReLU'd noise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.pool import NullPool

from catalogue.db.ablation import link_baseline
from catalogue.db.identities import LayerSpec, register_dataset, register_model
from catalogue.db.runs import recorded_run
from catalogue.pipeline.scoring import score_extraction
from catalogue.store import ActivationStore
from catalogue.store import LayerSpec as StoreLayer
from tests.ui_fixtures import _write_images

CLASS_NAMES = ("red dress", "red coat", *(f"colour {i}" for i in range(2, 20)))
PER_CLASS = 300
N_IMAGES = PER_CLASS * len(CLASS_NAMES)
LAYERS = (("conv1", "conv", 2), ("fc1", "fc", 3))
RED_DRESS, RED_COAT = 0, 1
TRAINED, BASELINE = "bignet", "bignet@random-seed0"
#: bignet.fc1.0's measures in its scoring run (see the module docstring)
FC1_0 = {
    "precision": 48 / 60,
    "false_alarm_rate": 3060 / 3360,
    "max_informedness": 1 - 3060 / 5700,
}


@dataclass
class BigCatalogue:
    url: str
    score_run: int
    baseline_score_run: int
    extract_run: int
    baseline_extract_run: int
    unit_ids: dict[tuple[str, str, int], int]  # (model, layer, unit) → id
    labels: np.ndarray


def _misleading(rng: np.random.Generator, labels: np.ndarray) -> np.ndarray:
    values = np.zeros(labels.size, dtype=np.float32)
    dresses = np.flatnonzero(labels == RED_DRESS)
    values[dresses[:48]] = rng.uniform(8.0, 10.0, 48)
    values[labels == RED_COAT] = 1.0
    others = np.flatnonzero((labels != RED_DRESS) & (labels != RED_COAT))
    chosen = rng.choice(others, 3012, replace=False)
    values[chosen[:12]] = rng.uniform(8.0, 10.0, 12)
    values[chosen[12:]] = 1.0
    return values


def _activations(rng: np.random.Generator, labels: np.ndarray, unit: int) -> dict[str, np.ndarray]:
    out = {
        name: np.maximum(rng.normal(0.0, 1.0, size=(labels.size, units)), 0.0).astype(np.float32)
        for name, _kind, units in LAYERS
    }
    out["fc1"][:, unit] = _misleading(rng, labels)
    return out


def _extracted(
    engine: Engine,
    folder: Path,
    name: str,
    activations: dict[str, np.ndarray],
    labels: np.ndarray,
    keys: list[str],
    dataset_id: int,
) -> tuple[int, dict[tuple[str, int], int]]:
    class_keys = [f"c{i:02d}" for i in range(len(CLASS_NAMES))]
    path = folder / f"{name.replace('@', '-')}.h5"
    with ActivationStore.create(
        path,
        [StoreLayer(n, u, kind=k, position=i) for i, (n, k, u) in enumerate(LAYERS)],
        class_keys=class_keys,
        class_names=CLASS_NAMES,
        params={"model": name},
        chunk_rows=1024,
    ) as store:
        store.append(activations, labels=labels, predictions=labels, image_keys=keys)
        store.finish()
    with engine.begin() as conn:
        model = register_model(
            conn,
            name=name,
            architecture="big-toy",
            weights="random" if "@" in name else "trained",
            checksum=name,
            layers=[LayerSpec(n, k, u, i) for i, (n, k, u) in enumerate(LAYERS)],
        )
    params = {"model": name, "dataset": "big-colours", "dataset_source": str(folder / "images")}
    with recorded_run(
        engine,
        "extract",
        params,
        label=f"{name} on big-colours",
        model_id=model.id,
        dataset_id=dataset_id,
        h5_path=str(path),
    ) as extract:
        pass
    units = {
        (layer, int(i)): int(uid)
        for layer, record in model.layers.items()
        for i, uid in enumerate(record.unit_ids)
    }
    return extract.id, units


def build_big_catalogue(engine: Engine, url: str, folder: Path) -> BigCatalogue:
    rng = np.random.default_rng(3)
    labels = np.repeat(np.arange(len(CLASS_NAMES)), PER_CLASS)
    keys = [f"c{c:02d}/img_{i:05d}.png" for i, c in enumerate(labels.tolist())]
    with engine.begin() as conn:
        dataset = register_dataset(
            conn,
            name="big-colours",
            kind="ImageFolderDataset",
            source=str(folder / "images"),
            class_keys=[f"c{i:02d}" for i in range(len(CLASS_NAMES))],
            class_names=list(CLASS_NAMES),
        )
    extract, units = _extracted(
        engine, folder, TRAINED, _activations(rng, labels, 0), labels, keys, dataset.id
    )
    score = score_extraction(engine, extract)
    random_extract, random_units = _extracted(
        engine, folder, BASELINE, _activations(rng, labels, 1), labels, keys, dataset.id
    )
    random_score = score_extraction(  # on the trained run's images, as a baseline is scored
        engine, random_extract, rows=np.ones(N_IMAGES, dtype=bool), rows_from=score.run_id
    )
    with engine.begin() as conn:
        link_baseline(conn, random_extract, extract)
        link_baseline(conn, random_score.run_id, score.run_id)
        shown = (
            conn.execute(text("SELECT DISTINCT image_index FROM unit_top_image")).scalars().all()
        )
    _write_images(folder / "images", [keys[i] for i in shown], labels[shown])
    unit_ids = {(TRAINED, layer, i): uid for (layer, i), uid in units.items()}
    unit_ids |= {(BASELINE, layer, i): uid for (layer, i), uid in random_units.items()}
    return BigCatalogue(
        url=url,
        score_run=score.run_id,
        baseline_score_run=random_score.run_id,
        extract_run=extract,
        baseline_extract_run=random_extract,
        unit_ids=unit_ids,
        labels=labels,
    )


@pytest.fixture(scope="module")
def big_catalogue(
    database_factory: Callable[..., str], tmp_path_factory: pytest.TempPathFactory
) -> BigCatalogue:
    """The catalogue above in a fresh database, built once per test module."""
    url = database_factory()
    engine = create_engine(url, poolclass=NullPool)
    built = build_big_catalogue(engine, url, tmp_path_factory.mktemp("big-catalogue"))
    engine.dispose()
    return built
