"""The paper's catalogue, generated: AlexNet's conv5 to fc8 over 721,536 images and 1,000 classes.

`bench/paper_scale.py` builds its catalogue with these functions. The activations are
what `bench/score.py` generates — seeded ReLU-like values, about 80 % exact zeros, each
unit nudged towards one class — written band by band through the project's own store
writer (`catalogue.store.ActivationStore`), so that no step needs the whole matrix in
memory. Every band of every 16 units has its own seed, so `columns` can generate any
unit's activations alone, to check the catalogue against `score_units` at any size.

The network is torchvision's AlexNet with seeded random weights, registered with the
layers the paper scored (`catalogue.pipeline.paper.ALEXNET_LAYERS`); every image is
"correctly classified" (prediction = label), as the paper's 721,536 were.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np

PAPER_IMAGES = 721_536
PAPER_CLASSES = 1_000
#: The paper's layers: (its name, torchvision AlexNet's node, units).
PAPER_LAYERS: tuple[tuple[str, str, int], ...] = (
    ("conv5", "features.11", 256),
    ("fc6", "classifier.2", 4096),
    ("fc7", "classifier.5", 4096),
    ("fc8", "classifier.6", 1000),
)
ZEROS = 0.8
NUDGE = 1.5
#: rows generated and appended at a time (the store's chunk height)
BAND = 4096
#: units generated from one seed (the store's chunk width)
UNIT_CHUNK = 16
DATASET = "paper-scale-imagenet"
#: how the catalogue names AlexNet with random weights of seed 0 (`catalogue.models.random_name`)
MODEL = "alexnet@random-seed0"


@dataclass(frozen=True)
class Shape:
    """The generated catalogue's size: images, classes, and each layer's (node, units)."""

    n_images: int
    n_classes: int
    layers: tuple[tuple[str, int], ...]
    seed: int = 0

    @classmethod
    def of(cls, fraction: Fraction, unit_scale: Fraction = Fraction(1), **kw: Any) -> Shape:
        """`fraction` of the paper's images; every layer's width times `unit_scale` (at least 1)."""
        n = max(1, round(PAPER_IMAGES * fraction))
        layers = tuple((node, max(1, round(u * unit_scale))) for _, node, u in PAPER_LAYERS)
        return cls(n, kw.pop("n_classes", PAPER_CLASSES), layers, **kw)

    @property
    def n_units(self) -> int:
        return sum(u for _, u in self.layers)

    @property
    def raw_bytes(self) -> int:
        return self.n_images * self.n_units * 4


def labels(shape: Shape) -> np.ndarray:
    """Each image's class, uniform over the classes (seeded)."""
    return np.random.default_rng([shape.seed, 0]).integers(0, shape.n_classes, shape.n_images)


def preferred(shape: Shape, layer: int) -> np.ndarray:
    """The class each unit of layer number `layer` is nudged towards."""
    units = shape.layers[layer][1]
    return np.random.default_rng([shape.seed, 1, layer]).integers(0, shape.n_classes, units)


def _chunk(shape: Shape, layer: int, band: int, chunk: int, rows: int) -> np.ndarray:
    """N(0, 1) values of one band (rows) × one chunk (UNIT_CHUNK units) of a layer, seeded by
    all four, so that any unit's column can be generated without the rest of its layer."""
    width = min(UNIT_CHUNK, shape.layers[layer][1] - chunk * UNIT_CHUNK)
    rng = np.random.default_rng([shape.seed, 2, layer, band, chunk])
    return rng.standard_normal((rows, width), dtype=np.float32)


def _relu_like(z: np.ndarray, band_labels: np.ndarray, prefers: np.ndarray) -> np.ndarray:
    """NUDGE added where a unit's preferred class is the image's, shifted so that about ZEROS
    of the values fall below 0, then ReLU (as `bench/score.py`)."""
    z += NUDGE * (band_labels[:, None] == prefers[None, :])
    z -= np.float32(NormalDist().inv_cdf(ZEROS))
    return np.maximum(z, 0, out=z)


def _band(
    shape: Shape, layer: int, band: int, band_labels: np.ndarray, prefers: np.ndarray
) -> np.ndarray:
    """One band (rows `band_labels`) of every unit of a layer."""
    units = shape.layers[layer][1]
    z = np.empty((band_labels.size, units), dtype=np.float32)
    for chunk, start in enumerate(range(0, units, UNIT_CHUNK)):
        z[:, start : start + UNIT_CHUNK] = _chunk(shape, layer, band, chunk, band_labels.size)
    return _relu_like(z, band_labels, prefers)


def columns(shape: Shape, layer: int, units: np.ndarray | None = None) -> np.ndarray:
    """The generated (images × units) activations of some units (default all) of layer
    number `layer`, exactly as the store holds them."""
    all_units = shape.layers[layer][1]
    units = np.arange(all_units) if units is None else np.asarray(units, dtype=np.int64)
    y = labels(shape)
    prefers = preferred(shape, layer)[units]
    chunks = np.unique(units // UNIT_CHUNK)
    out = np.empty((shape.n_images, units.size), dtype=np.float32)
    for band, start in enumerate(range(0, shape.n_images, BAND)):
        band_labels = y[start : start + BAND]
        z = {c: _chunk(shape, layer, band, int(c), band_labels.size) for c in chunks.tolist()}
        block = np.stack([z[u // UNIT_CHUNK][:, u % UNIT_CHUNK] for u in units.tolist()], axis=1)
        out[start : start + band_labels.size] = _relu_like(block, band_labels, prefers)
    return out


def image_keys(y: np.ndarray, start: int) -> list[str]:
    """ImageNet-like keys: the class folder, then the image's number."""
    return [f"n{c:08d}/img_{start + i:07d}.JPEG" for i, c in enumerate(y.tolist())]


def class_keys(n_classes: int) -> list[str]:
    return [f"n{c:08d}" for c in range(n_classes)]


def write_store(path: Path, shape: Shape, on_band: Callable[[int], None] | None = None) -> float:
    """Write the store through `ActivationStore` in bands; the seconds spent generating values
    (the rest of the time is the store writer's)."""
    from catalogue.store import ActivationStore, LayerSpec

    y = labels(shape)
    prefers = [preferred(shape, i) for i in range(len(shape.layers))]
    specs = [
        LayerSpec(node, units, kind="conv" if node.startswith("features") else "fc", position=i)
        for i, (node, units) in enumerate(shape.layers)
    ]
    keys = class_keys(shape.n_classes)
    generating = 0.0
    with ActivationStore.create(
        path,
        specs,
        class_keys=keys,
        class_names=[f"class {c}" for c in range(shape.n_classes)],
        params={"bench": "paper_scale", "images": shape.n_images, "seed": shape.seed},
    ) as store:
        for band, start in enumerate(range(0, shape.n_images, BAND)):
            band_labels = y[start : start + BAND]
            started = time.perf_counter()
            blocks = {
                node: _band(shape, i, band, band_labels, prefers[i])
                for i, (node, _) in enumerate(shape.layers)
            }
            generating += time.perf_counter() - started
            store.append(
                blocks,
                labels=band_labels,
                predictions=band_labels,
                image_keys=image_keys(band_labels, start),
            )
            if on_band is not None:
                on_band(start + band_labels.size)
        store.finish()
    return generating


def register(engine: Any, shape: Shape, h5_path: Path) -> dict[str, int]:
    """Register random-weights AlexNet (the paper's layers at the shape's widths) and the
    1,000-class dataset, and record the extraction run of `h5_path`; their ids."""
    from catalogue.db.identities import LayerSpec, register_dataset, register_model
    from catalogue.db.runs import recorded_run
    from catalogue.models import load_model
    from catalogue.models.layers import list_layers

    model = load_model("alexnet", weights=None)
    if model.name != MODEL:
        raise RuntimeError(f"random-weights AlexNet is named {model.name}, not {MODEL}")
    infos = {i.name: i for i in list_layers(model, layers=[node for node, _ in shape.layers])}
    layers = [
        LayerSpec(
            node,
            infos[node].kind,
            units,
            infos[node].position,
            [units, *infos[node].output_shape[1:]],
        )
        for node, units in shape.layers
    ]
    keys = class_keys(shape.n_classes)
    with engine.begin() as conn:
        record = register_model(
            conn,
            name=model.name,
            architecture=model.architecture,
            weights=model.weights,
            checksum=model.checksum,
            layers=layers,
        )
        dataset = register_dataset(
            conn,
            name=DATASET,
            kind="generated",
            source=None,
            class_keys=keys,
            class_names=[f"class {c}" for c in range(shape.n_classes)],
        )
    params = {
        "bench": "paper_scale",
        "images": shape.n_images,
        "layers": [node for node, _ in shape.layers],
        "seed": shape.seed,
    }
    with recorded_run(
        engine,
        "extract",
        params,
        label=f"{model.name} on {DATASET}",
        model_id=record.id,
        dataset_id=dataset.id,
        h5_path=str(h5_path),
    ) as run:
        run.complete(stats={"n_images": shape.n_images, "accuracy": 1.0})
    return {"model_id": record.id, "dataset_id": dataset.id, "extract_run": run.id}
