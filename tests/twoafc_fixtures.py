"""A small scored catalogue for the 2-AFC tests, built as users build one: an HDF5 store
written with `catalogue.store`, an extraction run pointing at it and an image folder,
and a scoring run by the real scorer (`score_extraction`).

8 classes × 30 images; every 10th image is misclassified (not scored). conv5 has 4
units of ReLU'd noise with many zeros (ties at the bottom); fc6 has 6 units, of which
fc6.5 is dead (0 on every image) and fc6.4 is 1.0 on half of the images and 0 on the
others (ties at both ends).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from sqlalchemy import Engine

from catalogue.db.identities import LayerSpec, register_dataset, register_model
from catalogue.db.runs import recorded_run
from catalogue.pipeline.scoring import score_extraction
from catalogue.store import ActivationStore
from catalogue.store import LayerSpec as StoreLayer

N_CLASSES = 8
PER_CLASS = 30
LAYERS = (("conv5", "conv", 4), ("fc6", "fc", 6))


@dataclass
class TwoAFCCatalogue:
    score_run: int
    extract_run: int
    unit_ids: dict[tuple[str, int], int]
    activations: dict[str, np.ndarray]  # every stored image
    labels: np.ndarray
    correct: np.ndarray
    keys: list[str]
    image_root: Path

    def scored(self, layer: str, unit: int) -> np.ndarray:
        return self.activations[layer][self.correct, unit]

    @property
    def scored_rows(self) -> np.ndarray:
        return np.flatnonzero(self.correct)


def _activations(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    conv5 = np.maximum(rng.normal(0.0, 1.0, size=(n, 4)), 0.0).astype(np.float32)
    fc6 = np.maximum(rng.normal(0.2, 1.0, size=(n, 6)), 0.0).astype(np.float32)
    fc6[:, 4] = (np.arange(n) % 2 == 0).astype(np.float32)
    fc6[:, 5] = 0.0
    return {"conv5": conv5, "fc6": fc6}


def _write_images(root: Path, keys: list[str], labels: np.ndarray) -> None:
    """A 12 × 8 picture per image: its class's colour, its index in a grey stripe."""
    palette = np.random.default_rng(3).integers(0, 256, size=(N_CLASSES, 3))
    for i, (key, label) in enumerate(zip(keys, labels.tolist(), strict=True)):
        pixels = np.empty((8, 12, 3), dtype=np.uint8)
        pixels[:] = palette[label]
        pixels[:2, :] = i % 256
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(path)


def build_twoafc_catalogue(engine: Engine, folder: Path, *, seed: int = 0) -> TwoAFCCatalogue:
    rng = np.random.default_rng(seed)
    n = N_CLASSES * PER_CLASS
    labels = np.repeat(np.arange(N_CLASSES), PER_CLASS)
    predictions = labels.copy()
    predictions[::10] = (labels[::10] + 1) % N_CLASSES
    keys = [f"c{c}/img_{i:04d}.png" for i, c in enumerate(labels.tolist())]
    activations = _activations(rng, n)
    class_keys = [f"c{i}" for i in range(N_CLASSES)]
    image_root = folder / "images"
    _write_images(image_root, keys, labels)
    h5_path = folder / "acts.h5"
    with ActivationStore.create(
        h5_path,
        [StoreLayer(name, u, kind=k, position=i) for i, (name, k, u) in enumerate(LAYERS)],
        class_keys=class_keys,
        class_names=[f"class {i}" for i in range(N_CLASSES)],
        params={"model": "afcnet"},
        chunk_rows=64,
    ) as store:
        store.append(activations, labels=labels, predictions=predictions, image_keys=keys)
        store.finish()
    with engine.begin() as conn:
        model = register_model(
            conn,
            name="afcnet",
            architecture="toy-cnn",
            weights="random",
            checksum="2afc-fixture",
            layers=[LayerSpec(name, k, u, i) for i, (name, k, u) in enumerate(LAYERS)],
        )
        dataset = register_dataset(
            conn,
            name="afc-images",
            kind="ImageFolderDataset",
            source=str(image_root),
            class_keys=class_keys,
            class_names=[f"class {i}" for i in range(N_CLASSES)],
        )
    with recorded_run(
        engine,
        "extract",
        {"model": "afcnet", "dataset": "afc-images", "dataset_source": str(image_root)},
        model_id=model.id,
        dataset_id=dataset.id,
        h5_path=str(h5_path),
    ) as extract:
        pass
    score = score_extraction(engine, extract.id)
    unit_ids = {
        (layer, int(i)): int(uid)
        for layer, record in model.layers.items()
        for i, uid in enumerate(record.unit_ids)
    }
    return TwoAFCCatalogue(
        score_run=score.run_id,
        extract_run=extract.id,
        unit_ids=unit_ids,
        activations=activations,
        labels=labels,
        correct=predictions == labels,
        keys=keys,
        image_root=image_root,
    )
