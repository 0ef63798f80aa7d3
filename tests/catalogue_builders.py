"""Build small real catalogues in a test database (registration + a scoring run)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from sqlalchemy import Engine

from catalogue.db.identities import (
    DatasetRecord,
    LayerSpec,
    ModelRecord,
    register_dataset,
    register_model,
)
from catalogue.db.results import write_unit_metrics
from catalogue.db.runs import recorded_run
from catalogue.measures import UNIT_MEASURES


def register_toy(
    engine: Engine,
    layers: Sequence[tuple[str, str, int]] = (("conv5", "conv", 4), ("fc6", "fc", 6)),
    n_classes: int = 3,
    model_name: str = "toy",
) -> tuple[ModelRecord, DatasetRecord]:
    with engine.begin() as conn:
        model = register_model(
            conn,
            name=model_name,
            architecture="toy-cnn",
            weights="random",
            checksum="abc123",
            layers=[LayerSpec(n, k, u, i) for i, (n, k, u) in enumerate(layers)],
        )
        dataset = register_dataset(
            conn,
            name="toy-data",
            kind="test",
            source=None,
            class_keys=[f"k{i}" for i in range(n_classes)],
            class_names=[f"class {i}" for i in range(n_classes)],
        )
    return model, dataset


def neutral_metrics(n_units: int) -> dict[str, np.ndarray]:
    """Valid scores for `n_units` units: zero selectivity, class 0 everywhere."""
    out: dict[str, np.ndarray] = {}
    for m in UNIT_MEASURES:
        if m.kind == "bool":
            out[m.name] = np.zeros(n_units, dtype=bool)
        elif m.name == "localist_class":
            out[m.name] = np.full(n_units, -1, dtype=np.int64)  # not localist: no class
        elif m.kind == "class":
            out[m.name] = np.zeros(n_units, dtype=np.int64)
        else:
            out[m.name] = np.zeros(n_units, dtype=np.float64)
    return out


def write_scores(
    engine: Engine,
    model: ModelRecord,
    dataset: DatasetRecord,
    layer: str,
    overrides: Mapping[str, Sequence[float]],
    params: Mapping[str, object] | None = None,
) -> int:
    """A scoring run over one layer whose measures are `neutral_metrics` plus `overrides`."""
    record = model.layer(layer)
    metrics = neutral_metrics(record.n_units)
    for name, values in overrides.items():
        metrics[name] = np.asarray(values)
    with recorded_run(
        engine,
        "score",
        dict(params or {"layer": layer}),
        model_id=model.id,
        dataset_id=dataset.id,
    ) as run:
        run.complete(
            lambda conn, run_id: write_unit_metrics(
                conn, run_id, record.unit_ids, metrics, n_images=100
            )
        )
        return run.id
