"""Register the things results refer to: models with their layers and units,
datasets with their classes and class groups, probe-set concepts.

Registration is idempotent (re-registering the same thing returns the same ids)
and refuses a name that already stands for something different. Every function
takes the `Connection` of the caller's transaction; the lookups beside the
writers are the ones the pipelines need to write (an id by name).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import (
    ARRAY,
    Connection,
    Integer,
    Text,
    any_,
    cast,
    func,
    literal,
    select,
)
from sqlalchemy.dialects.postgresql import insert

from catalogue.db.schema import (
    ClassGroup,
    ClassGroupMember,
    Concept,
    Dataset,
    ImageClass,
    Layer,
    Model,
    Unit,
)
from catalogue.errors import InputError, NotFound
from catalogue.groups import group_class_indices

#: (model name, layer name, unit index): how people and files name a unit
UnitKey = tuple[str, str, int]


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
    checksum: str | None = None

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


def _serialise_registration(conn: Connection) -> None:
    """Two commands registering the same model or dataset at once take turns (until the end
    of the caller's transaction): the second finds the first's rows instead of colliding."""
    conn.execute(select(func.pg_advisory_xact_lock(func.hashtext("unitcat.registry"))))


def register_model(
    conn: Connection,
    *,
    name: str,
    architecture: str,
    weights: str | None,
    checksum: str | None,
    layers: Sequence[LayerSpec],
) -> ModelRecord:
    _serialise_registration(conn)
    row = conn.execute(select(Model.id, Model.checksum).where(Model.name == name)).one_or_none()
    if row is None:
        model_id = conn.execute(
            insert(Model)
            .values(name=name, architecture=architecture, weights=weights, checksum=checksum)
            .returning(Model.id)
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
        select(Layer.id, Layer.n_units).where(Layer.model_id == model_id, Layer.name == spec.name)
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
            insert(Layer)
            .values(
                model_id=model_id,
                name=spec.name,
                kind=spec.kind,
                n_units=spec.n_units,
                position=spec.position,
                output_shape=list(spec.output_shape) if spec.output_shape is not None else None,
            )
            .returning(Layer.id)
        ).scalar_one()
    conn.execute(
        insert(Unit)
        .from_select(
            [Unit.layer_id, Unit.unit_index],
            select(literal(layer_id, Integer), func.generate_series(0, spec.n_units - 1)),
        )
        .on_conflict_do_nothing(index_elements=[Unit.layer_id, Unit.unit_index])
    )


def find_model(conn: Connection, name: str) -> ModelRecord | None:
    """The registered model of this name with its layers and unit ids; None if there is none."""
    row = conn.execute(select(Model.id, Model.checksum).where(Model.name == name)).one_or_none()
    if row is None:
        return None
    layers: dict[str, LayerRecord] = {}
    for lrow in conn.execute(
        select(Layer.id, Layer.name, Layer.kind, Layer.n_units, Layer.position)
        .where(Layer.model_id == row.id)
        .order_by(Layer.position, Layer.name)
    ):
        ids = conn.execute(
            select(Unit.id).where(Unit.layer_id == lrow.id).order_by(Unit.unit_index)
        ).scalars()
        layers[lrow.name] = LayerRecord(
            id=lrow.id,
            name=lrow.name,
            kind=lrow.kind,
            n_units=lrow.n_units,
            position=lrow.position,
            unit_ids=np.fromiter(ids, dtype=np.int64),
        )
    return ModelRecord(id=row.id, name=name, layers=layers, checksum=row.checksum)


def load_model_record(conn: Connection, name: str) -> ModelRecord:
    record = find_model(conn, name)
    if record is None:
        raise NotFound(f"no model named {name!r} in the catalogue; extract activations first.")
    return record


def load_model_record_by_id(conn: Connection, model_id: int) -> ModelRecord:
    name = conn.execute(select(Model.name).where(Model.id == model_id)).scalar_one()
    return load_model_record(conn, name)


def unit_ids_by_key(conn: Connection, keys: Sequence[UnitKey]) -> dict[UnitKey, int]:
    """Unit ids of the registered units among (model, layer, unit index) keys; unknown
    keys are left out."""
    if not keys:
        return {}
    wanted = (
        func.unnest(
            cast([k[0] for k in keys], ARRAY(Text)),
            cast([k[1] for k in keys], ARRAY(Text)),
            cast([k[2] for k in keys], ARRAY(Integer)),
        )
        .table_valued("model", "layer", "unit")
        .render_derived(name="k")
    )
    rows = conn.execute(
        select(
            Model.name.label("model"),
            Layer.name.label("layer"),
            Unit.unit_index.label("unit"),
            Unit.id,
        )
        .join_from(Unit, Layer, Layer.id == Unit.layer_id)
        .join(Model, Model.id == Layer.model_id)
        .join(
            wanted,
            (wanted.c.model == Model.name)
            & (wanted.c.layer == Layer.name)
            & (wanted.c.unit == Unit.unit_index),
        )
    ).all()
    return {(r.model, r.layer, r.unit): r.id for r in rows}


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
    _serialise_registration(conn)
    known = conn.execute(select(Dataset.id).where(Dataset.name == name)).scalar_one_or_none()
    if known is not None:
        record = load_dataset_record(conn, name)
        if record.class_keys != tuple(class_keys):
            raise InputError(
                f"dataset {name!r} is already in the catalogue with other classes; "
                "give this one another name."
            )
        return record
    dataset_id = conn.execute(
        insert(Dataset)
        .values(name=name, kind=kind, source=source, n_classes=len(class_keys))
        .returning(Dataset.id)
    ).scalar_one()
    conn.execute(
        insert(ImageClass),
        [
            {"dataset_id": dataset_id, "class_index": i, "key": k, "name": n}
            for i, (k, n) in enumerate(zip(class_keys, class_names, strict=True))
        ],
    )
    return load_dataset_record(conn, name)


def load_dataset_record(conn: Connection, name: str) -> DatasetRecord:
    dataset_id = conn.execute(select(Dataset.id).where(Dataset.name == name)).scalar_one_or_none()
    if dataset_id is None:
        raise NotFound(f"no dataset named {name!r} in the catalogue.")
    rows = conn.execute(
        select(ImageClass.key, ImageClass.name)
        .where(ImageClass.dataset_id == dataset_id)
        .order_by(ImageClass.class_index)
    ).all()
    return DatasetRecord(
        id=dataset_id,
        name=name,
        class_keys=tuple(r.key for r in rows),
        class_names=tuple(r.name for r in rows),
    )


def load_dataset_record_by_id(conn: Connection, dataset_id: int) -> DatasetRecord:
    name = conn.execute(select(Dataset.name).where(Dataset.id == dataset_id)).scalar_one()
    return load_dataset_record(conn, name)


def register_class_groups(
    conn: Connection, dataset: DatasetRecord, groups: Mapping[str, Sequence[str]]
) -> dict[str, int]:
    """The ids of the class-group versions with exactly these members (keys or names).

    A group is versioned: a name given other members than any version it has gets a
    new version (1, 2, …), and a version is never changed, so the `unit_group_metrics`
    of an earlier run keep joining to the members that run used. Giving a group the
    members of an existing version reuses that version.
    """
    indices = group_class_indices(
        groups, dataset.class_keys, dataset.class_names, dataset=dataset.name
    )
    # one writer per dataset at a time, so two runs cannot both create "version N + 1"
    conn.execute(
        select(func.pg_advisory_xact_lock(func.hashtext("unitcat.class_group"), dataset.id))
    )
    ids: dict[str, int] = {}
    for group, members in indices.items():
        if not members:
            raise InputError(f"class group {group!r} has no classes.")
        class_ids = sorted(
            conn.execute(
                select(ImageClass.id).where(
                    ImageClass.dataset_id == dataset.id,
                    ImageClass.class_index == any_(cast([int(m) for m in members], ARRAY(Integer))),
                )
            ).scalars()
        )
        versions = conn.execute(
            select(
                ClassGroup.id,
                ClassGroup.version,
                func.array_agg(ClassGroupMember.class_id).label("class_ids"),
            )
            .outerjoin(ClassGroupMember, ClassGroupMember.group_id == ClassGroup.id)
            .where(ClassGroup.dataset_id == dataset.id, ClassGroup.name == group)
            .group_by(ClassGroup.id, ClassGroup.version)
        ).all()
        same = [v.id for v in versions if sorted(c for c in v.class_ids if c) == class_ids]
        if same:
            ids[group] = same[0]
            continue
        version = max((v.version for v in versions), default=0) + 1
        group_id = conn.execute(
            insert(ClassGroup)
            .values(dataset_id=dataset.id, name=group, version=version)
            .returning(ClassGroup.id)
        ).scalar_one()
        conn.execute(
            insert(ClassGroupMember),
            [{"group_id": group_id, "class_id": c} for c in class_ids],
        )
        ids[group] = group_id
    return ids


def register_concepts(
    conn: Connection, probe: str, concepts: Sequence[tuple[int, str, str]]
) -> dict[int, int]:
    """Register (number, name, category) concepts of a probe set; return concept id by number."""
    ids: dict[int, int] = {}
    for number, name, category in concepts:
        upsert = insert(Concept).values(probe=probe, number=number, name=name, category=category)
        ids[number] = conn.execute(
            upsert.on_conflict_do_update(
                index_elements=[Concept.probe, Concept.category, Concept.name],
                set_={"number": upsert.excluded.number},
            ).returning(Concept.id)
        ).scalar_one()
    return ids
