"""Register the things results refer to: models with their layers and units,
datasets with their classes and class groups, probe-set concepts.

Registration is idempotent (re-registering the same thing returns the same ids)
and refuses a name that already stands for something different.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import Connection, text

from catalogue.errors import InputError, NotFound


@dataclass(frozen=True)
class LayerSpec:
    name: str
    kind: str  # "conv" | "fc"
    n_units: int
    position: int
    output_shape: Sequence[int] | None = None


@dataclass(frozen=True)
class LayerRecord:
    id: int
    name: str
    kind: str
    n_units: int
    position: int
    unit_ids: np.ndarray = field(repr=False)  # unit id by unit index


@dataclass(frozen=True)
class ModelRecord:
    id: int
    name: str
    layers: dict[str, LayerRecord]

    def layer(self, name: str) -> LayerRecord:
        try:
            return self.layers[name]
        except KeyError:
            raise NotFound(
                f"model {self.name!r} has no registered layer {name!r}; "
                f"known: {', '.join(self.layers) or 'none'}."
            ) from None


@dataclass(frozen=True)
class DatasetRecord:
    id: int
    name: str
    class_keys: tuple[str, ...]
    class_names: tuple[str, ...]


def register_model(
    conn: Connection,
    *,
    name: str,
    architecture: str,
    weights: str | None,
    checksum: str | None,
    layers: Sequence[LayerSpec],
) -> ModelRecord:
    row = conn.execute(
        text("SELECT id, checksum FROM model WHERE name = :name"), {"name": name}
    ).one_or_none()
    if row is None:
        model_id = conn.execute(
            text(
                "INSERT INTO model (name, architecture, weights, checksum) "
                "VALUES (:name, :arch, :weights, :checksum) RETURNING id"
            ),
            {"name": name, "arch": architecture, "weights": weights, "checksum": checksum},
        ).scalar_one()
    else:
        model_id, known = row
        if known and checksum and known != checksum:
            raise InputError(
                f"model {name!r} is already in the catalogue with other weights "
                f"(checksum {known[:12]} ≠ {checksum[:12]}); register these under another name (--name)."
            )
    for spec in layers:
        _register_layer(conn, model_id, name, spec)
    return load_model_record(conn, name)


def register_model_info(conn: Connection, model: Any, layers: Sequence[Any]) -> ModelRecord:
    """Register a loaded model (`catalogue.models.ModelInfo`) with the layers about to be used
    (`catalogue.models.LayerInfo`: name, kind, n_units, position, output_shape)."""
    return register_model(
        conn,
        name=model.name,
        architecture=model.architecture,
        weights=model.weights,
        checksum=model.checksum,
        layers=[
            LayerSpec(i.name, i.kind, i.n_units, i.position, list(i.output_shape)) for i in layers
        ],
    )


def _register_layer(conn: Connection, model_id: int, model_name: str, spec: LayerSpec) -> None:
    existing = conn.execute(
        text("SELECT id, n_units FROM layer WHERE model_id = :m AND name = :n"),
        {"m": model_id, "n": spec.name},
    ).one_or_none()
    if existing is not None:
        if existing.n_units != spec.n_units:
            raise InputError(
                f"layer {model_name}.{spec.name} is registered with {existing.n_units} units, "
                f"not {spec.n_units}; register the model under another name."
            )
        layer_id = existing.id
    else:
        layer_id = conn.execute(
            text(
                "INSERT INTO layer (model_id, name, kind, n_units, position, output_shape) "
                "VALUES (:m, :n, :k, :u, :p, :s) RETURNING id"
            ),
            {
                "m": model_id,
                "n": spec.name,
                "k": spec.kind,
                "u": spec.n_units,
                "p": spec.position,
                "s": list(spec.output_shape) if spec.output_shape is not None else None,
            },
        ).scalar_one()
    conn.execute(
        text(
            "INSERT INTO unit (layer_id, unit_index) "
            "SELECT :l, g FROM generate_series(0, :u - 1) AS g "
            "ON CONFLICT (layer_id, unit_index) DO NOTHING"
        ),
        {"l": layer_id, "u": spec.n_units},
    )


def load_model_record(conn: Connection, name: str) -> ModelRecord:
    model_id = conn.execute(
        text("SELECT id FROM model WHERE name = :n"), {"n": name}
    ).scalar_one_or_none()
    if model_id is None:
        raise NotFound(f"no model named {name!r} in the catalogue; extract activations first.")
    layers: dict[str, LayerRecord] = {}
    for lrow in conn.execute(
        text(
            "SELECT id, name, kind, n_units, position FROM layer "
            "WHERE model_id = :m ORDER BY position, name"
        ),
        {"m": model_id},
    ):
        ids = conn.execute(
            text("SELECT id FROM unit WHERE layer_id = :l ORDER BY unit_index"), {"l": lrow.id}
        ).scalars()
        layers[lrow.name] = LayerRecord(
            id=lrow.id,
            name=lrow.name,
            kind=lrow.kind,
            n_units=lrow.n_units,
            position=lrow.position,
            unit_ids=np.fromiter(ids, dtype=np.int64),
        )
    return ModelRecord(id=model_id, name=name, layers=layers)


def register_dataset(
    conn: Connection,
    *,
    name: str,
    kind: str,
    source: str | None,
    class_keys: Sequence[str],
    class_names: Sequence[str],
) -> DatasetRecord:
    if len(class_keys) != len(class_names):
        raise InputError(
            f"dataset {name!r}: {len(class_keys)} class keys but {len(class_names)} class names."
        )
    if len(set(class_keys)) != len(class_keys):
        raise InputError(f"dataset {name!r}: class keys are not unique.")
    row = conn.execute(
        text("SELECT id FROM dataset WHERE name = :n"), {"n": name}
    ).scalar_one_or_none()
    if row is not None:
        record = load_dataset_record(conn, name)
        if record.class_keys != tuple(class_keys):
            raise InputError(
                f"dataset {name!r} is already in the catalogue with other classes; "
                "give this one another name."
            )
        return record
    dataset_id = conn.execute(
        text(
            "INSERT INTO dataset (name, kind, source, n_classes) "
            "VALUES (:n, :k, :s, :c) RETURNING id"
        ),
        {"n": name, "k": kind, "s": source, "c": len(class_keys)},
    ).scalar_one()
    conn.execute(
        text(
            "INSERT INTO image_class (dataset_id, class_index, key, name) VALUES (:d, :i, :k, :n)"
        ),
        [
            {"d": dataset_id, "i": i, "k": k, "n": n}
            for i, (k, n) in enumerate(zip(class_keys, class_names, strict=True))
        ],
    )
    return load_dataset_record(conn, name)


def load_dataset_record(conn: Connection, name: str) -> DatasetRecord:
    dataset_id = conn.execute(
        text("SELECT id FROM dataset WHERE name = :n"), {"n": name}
    ).scalar_one_or_none()
    if dataset_id is None:
        raise NotFound(f"no dataset named {name!r} in the catalogue.")
    rows = conn.execute(
        text("SELECT key, name FROM image_class WHERE dataset_id = :d ORDER BY class_index"),
        {"d": dataset_id},
    ).all()
    return DatasetRecord(
        id=dataset_id,
        name=name,
        class_keys=tuple(r.key for r in rows),
        class_names=tuple(r.name for r in rows),
    )


def register_class_groups(
    conn: Connection, dataset: DatasetRecord, groups: Mapping[str, Sequence[str]]
) -> dict[str, int]:
    """Create or replace named groups of classes (keys or names); return group ids by name."""
    from catalogue.groups import group_class_indices

    indices = group_class_indices(
        groups, dataset.class_keys, dataset.class_names, dataset=dataset.name
    )
    ids: dict[str, int] = {}
    for group, members in indices.items():
        if not members:
            raise InputError(f"class group {group!r} has no classes.")
        group_id = conn.execute(
            text(
                "INSERT INTO class_group (dataset_id, name) VALUES (:d, :n) "
                "ON CONFLICT (dataset_id, name) DO UPDATE SET name = EXCLUDED.name RETURNING id"
            ),
            {"d": dataset.id, "n": group},
        ).scalar_one()
        conn.execute(text("DELETE FROM class_group_member WHERE group_id = :g"), {"g": group_id})
        conn.execute(
            text(
                "INSERT INTO class_group_member (group_id, class_id) "
                "SELECT :g, id FROM image_class WHERE dataset_id = :d AND class_index = ANY(:members)"
            ),
            {"g": group_id, "d": dataset.id, "members": members},
        )
        ids[group] = group_id
    return ids


def register_concepts(
    conn: Connection, probe: str, concepts: Sequence[tuple[int, str, str]]
) -> dict[int, int]:
    """Register (number, name, category) concepts of a probe set; return concept id by number."""
    ids: dict[int, int] = {}
    for number, name, category in concepts:
        ids[number] = conn.execute(
            text(
                "INSERT INTO concept (probe, number, name, category) VALUES (:p, :num, :n, :c) "
                "ON CONFLICT (probe, category, name) DO UPDATE SET number = EXCLUDED.number "
                "RETURNING id"
            ),
            {"p": probe, "num": number, "n": name, "c": category},
        ).scalar_one()
    return ids
