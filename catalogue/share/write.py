"""The import's writes: identity rows merged by key, runs, results by binary COPY.

Every function takes the `Connection` of the import's one transaction. Merging follows
the rules of `catalogue.db.identities`: a model is the same model when its name
is and its weights checksum does not differ; a dataset when its name is and its class
keys, in order, are the same; a layer's unit count must agree. Anything else is refused
with one line that names the way out (`--rename`, `--rename-dataset`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import Connection, func, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.schema import AddConstraint, DropConstraint

from catalogue.db.runs import _delete_run_results, lock_held
from catalogue.db.schema import (
    Base,
    ClassGroup,
    ClassGroupMember,
    Concept,
    Dataset,
    ImageClass,
    Layer,
    Model,
    Participant,
    Run,
)
from catalogue.errors import InputError


def lock_import(conn: Connection) -> None:
    """One import at a time, and registrations wait for it (the registry's lock)."""
    conn.execute(select(func.pg_advisory_xact_lock(func.hashtext("unitcat.import"))))
    conn.execute(select(func.pg_advisory_xact_lock(func.hashtext("unitcat.registry"))))


# ------------------------------------------------------------------------------ models


@dataclass
class Merged:
    """What a merge found: new rows, and rows the catalogue had already."""

    new: list[str] = field(default_factory=list)
    present: list[str] = field(default_factory=list)


def merge_model(
    conn: Connection, dump_name: str, name: str, row: Mapping[str, Any]
) -> tuple[int, bool]:
    """The id of model `name` (the dump's `dump_name`), inserted if new; True if new."""
    known = conn.execute(select(Model.id, Model.checksum).where(Model.name == name)).one_or_none()
    if known is None:
        model_id = conn.execute(
            insert(Model)
            .values(
                name=name,
                architecture=row["architecture"],
                weights=row["weights"],
                checksum=row["checksum"],
                created_at=row["created_at"],
            )
            .returning(Model.id)
        ).scalar_one()
        return model_id, True
    checksum = row["checksum"]
    if known.checksum and checksum and known.checksum != checksum:
        raise InputError(
            f"model {name!r} of the dump has other weights than the catalogue's {name!r} "
            f"(checksum {checksum[:12]} ≠ {known.checksum[:12]}); import it under another "
            f"name with --rename {dump_name}={name}-imported."
        )
    return known.id, False


def merge_layers(
    conn: Connection, models: Mapping[str, tuple[int, str]], rows: Sequence[Mapping[str, Any]]
) -> dict[tuple[str, str], int]:
    """The ids of the dump's layers, (dump model, layer) -> id: the catalogue's where it has
    them (their unit counts must agree), else inserted with their units — in three
    statements however many layers (`models`: dump model -> (model id here, name here))."""
    ids = sorted({model_id for model_id, _ in models.values()})
    known = {
        (r.model_id, r.name): r
        for r in conn.execute(
            select(Layer.id, Layer.model_id, Layer.name, Layer.n_units).where(
                Layer.model_id.in_(ids)
            )
        )
    }
    out: dict[tuple[str, str], int] = {}
    new = []
    for row in rows:
        model_id, name = models[row["model"]]
        have = known.get((model_id, row["layer"]))
        if have is None:
            new.append(row)
            continue
        if have.n_units != row["n_units"]:
            raise InputError(
                f"layer {name}.{row['layer']} has {have.n_units} units in the catalogue and "
                f"{row['n_units']} in the dump; import the model under another name (--rename)."
            )
        out[(row["model"], row["layer"])] = int(have.id)
    if not new:
        return out
    values = [
        {
            "model_id": models[r["model"]][0],
            "name": r["layer"],
            "kind": r["kind"],
            "n_units": r["n_units"],
            "position": r["position"],
            "output_shape": r["output_shape"],
        }
        for r in new
    ]
    inserted = conn.execute(
        insert(Layer).returning(Layer.id, Layer.model_id, Layer.name, sort_by_parameter_order=True),
        values,
    ).all()
    by_model = {model_id: dump for dump, (model_id, _) in models.items()}
    for layer_id, model_id, name in inserted:
        out[(by_model[model_id], name)] = int(layer_id)
    conn.execute(
        text(
            "INSERT INTO unit (layer_id, unit_index) SELECT l.id, generate_series(0, l.n_units - 1) "
            "FROM layer l WHERE l.id = ANY(:ids) ORDER BY l.id"
        ),
        {"ids": [int(r[0]) for r in inserted]},
    )
    return out


def unit_ids(conn: Connection, layer_ids: Sequence[int]) -> dict[int, np.ndarray]:
    """Per layer, its unit ids indexed by unit index (-1 where a unit is missing)."""
    out: dict[int, np.ndarray] = {}
    if not layer_ids:
        return out
    # units are registered in order by generate_series, so ids usually run with the index
    spans = conn.execute(
        text(
            "SELECT layer_id, min(id - unit_index) AS lo, max(id - unit_index) AS hi, "
            "max(unit_index) AS top FROM unit WHERE layer_id = ANY(:ids) GROUP BY layer_id"
        ),
        {"ids": list(layer_ids)},
    ).all()
    for row in spans:
        if row.lo == row.hi:
            out[row.layer_id] = row.lo + np.arange(row.top + 1, dtype=np.int64)
            continue
        pairs = conn.execute(
            text("SELECT unit_index, id FROM unit WHERE layer_id = :l"), {"l": row.layer_id}
        ).all()
        ids = np.full(row.top + 1, -1, dtype=np.int64)
        for index, unit_id in pairs:
            ids[index] = unit_id
        out[row.layer_id] = ids
    return out


# ------------------------------------------------------------------------------ data


def merge_dataset(
    conn: Connection,
    dump_name: str,
    name: str,
    row: Mapping[str, Any],
    classes: Sequence[Mapping[str, Any]],
) -> tuple[int, bool]:
    """The id of dataset `name` with exactly these classes (inserted if new); True if new."""
    keys = [c["key"] for c in classes]
    known = conn.execute(select(Dataset.id).where(Dataset.name == name)).scalar_one_or_none()
    if known is not None:
        have = (
            conn.execute(
                select(ImageClass.key)
                .where(ImageClass.dataset_id == known)
                .order_by(ImageClass.class_index)
            )
            .scalars()
            .all()
        )
        if list(have) != keys:
            raise InputError(
                f"dataset {name!r} of the dump has other classes than the catalogue's {name!r}; "
                f"import it under another name with --rename-dataset {dump_name}={name}-imported."
            )
        return int(known), False
    dataset_id = conn.execute(
        insert(Dataset)
        .values(
            name=name,
            kind=row["kind"],
            source=row["source"],
            n_classes=row["n_classes"],
            created_at=row["created_at"],
        )
        .returning(Dataset.id)
    ).scalar_one()
    if classes:
        conn.execute(
            insert(ImageClass),
            [
                {
                    "dataset_id": dataset_id,
                    "class_index": c["class_index"],
                    "key": c["key"],
                    "name": c["name"],
                }
                for c in classes
            ],
        )
    return int(dataset_id), True


def merge_group(conn: Connection, dataset_id: int, row: Mapping[str, Any]) -> int:
    """The id of the version of group `row['group']` with exactly these members: one the
    catalogue has, or a new version (the dump's number when it is free)."""
    by_key = dict(
        conn.execute(
            select(ImageClass.key, ImageClass.id).where(ImageClass.dataset_id == dataset_id)
        ).all()
    )
    members = {by_key[k] for k in row["members"] if k in by_key}
    if len(members) != len(row["members"]):
        raise InputError(
            f"class group {row['group']!r} names classes its dataset does not have; the dump "
            "is damaged: export it again."
        )
    versions = conn.execute(
        select(ClassGroup.id, ClassGroup.version).where(
            ClassGroup.dataset_id == dataset_id, ClassGroup.name == row["group"]
        )
    ).all()
    for group_id, _ in versions:
        have = set(
            conn.execute(
                select(ClassGroupMember.class_id).where(ClassGroupMember.group_id == group_id)
            ).scalars()
        )
        if have == members:
            return int(group_id)
    taken = {v for _, v in versions}
    version = row["version"] if row["version"] not in taken else max(taken) + 1
    group_id = conn.execute(
        insert(ClassGroup)
        .values(
            dataset_id=dataset_id, name=row["group"], version=version, created_at=row["created_at"]
        )
        .returning(ClassGroup.id)
    ).scalar_one()
    conn.execute(
        insert(ClassGroupMember), [{"group_id": group_id, "class_id": c} for c in sorted(members)]
    )
    return int(group_id)


def merge_concepts(
    conn: Connection, rows: Sequence[Mapping[str, Any]]
) -> dict[tuple[str, str, str], int]:
    """Ids of the concepts (probe, category, name), inserting those the catalogue lacks."""
    if not rows:
        return {}
    conn.execute(
        pg_insert(Concept)
        .values(
            [
                {
                    "probe": r["probe"],
                    "number": r["number"],
                    "name": r["concept"],
                    "category": r["category"],
                }
                for r in rows
            ]
        )
        .on_conflict_do_nothing(index_elements=["probe", "category", "name"])
    )
    probes = sorted({r["probe"] for r in rows})
    found = conn.execute(
        select(Concept.id, Concept.probe, Concept.category, Concept.name).where(
            Concept.probe.in_(probes)
        )
    ).all()
    return {(p, c, n): int(i) for i, p, c, n in found}


def merge_participants(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Ids of the participants by code, inserting those the catalogue lacks."""
    if not rows:
        return {}
    conn.execute(
        pg_insert(Participant)
        .values(
            [
                {
                    "code": r["participant"],
                    "list_index": r["list_index"],
                    "created_at": r["created_at"],
                }
                for r in rows
            ]
        )
        .on_conflict_do_nothing(index_elements=["code"])
    )
    codes = [r["participant"] for r in rows]
    return {
        code: int(i)
        for code, i in conn.execute(
            select(Participant.code, Participant.id).where(Participant.code.in_(codes))
        ).all()
    }


# ------------------------------------------------------------------------------ runs


def find_run(conn: Connection, kind: str, key: str) -> Any:
    return conn.execute(
        select(Run.id, Run.status).where(Run.kind == kind, Run.key == key).with_for_update()
    ).one_or_none()


def insert_run(conn: Connection, values: Mapping[str, Any]) -> int:
    return int(conn.execute(insert(Run).values(**values).returning(Run.id)).scalar_one())


def take_over_run(conn: Connection, run_id: int, key: str, values: Mapping[str, Any]) -> None:
    """Replace a run this catalogue never finished with the dump's finished one."""
    if lock_held(conn, key):
        raise InputError(
            f"run {run_id} of the catalogue, which the dump has finished, is running now; "
            "import again when it has stopped (`unitcat runs`)."
        )
    _delete_run_results(conn, run_id)
    conn.execute(update(Run).where(Run.id == run_id).values(**values))


# ------------------------------------------------------------------------------ ratings


def rated_pairs(conn: Connection, participant_ids: Iterable[int]) -> set[tuple[int, int]]:
    """(participant id, unit id) of the ratings these participants have already given."""
    return {
        (int(p), int(u))
        for p, u in conn.execute(
            text("SELECT participant_id, unit_id FROM rating WHERE participant_id = ANY(:p)"),
            {"p": list(participant_ids)},
        ).all()
    }


def analysed_units(conn: Connection, ids: Iterable[int]) -> set[int]:
    return set(
        conn.execute(
            text("SELECT unit_id FROM unit_rating_analysis WHERE unit_id = ANY(:u)"),
            {"u": list(ids)},
        ).scalars()
    )


def panel_ids(conn: Connection, run_ids: Iterable[int]) -> dict[tuple[int, int], int]:
    """(AM run id, unit id) -> am_panel id."""
    return {
        (int(r), int(u)): int(i)
        for i, r, u in conn.execute(
            text("SELECT id, run_id, unit_id FROM am_panel WHERE run_id = ANY(:r)"),
            {"r": list(run_ids)},
        ).all()
    }


# ------------------------------------------------------------------------------ bulk loads


@contextmanager
def bulk_load(conn: Connection, table: str, incoming: int) -> Iterator[bool]:
    """Load `incoming` rows into `table` as pg_restore does when that is at least as many as
    the table holds: its foreign keys are dropped inside the transaction and added back
    after the rows are in, checked in one pass over the table instead of one lookup and
    row lock per row (which took two thirds of the server's time of a COPY into
    `dissection`). Until the transaction ends, the table and the ones it refers to
    (`run`, `unit` …) take no other writes. Yields whether it did so."""
    keys = [fk.constraint for fk in Base.metadata.tables[table].foreign_keys]
    held = conn.execute(
        text(f'SELECT count(*) FROM (SELECT 1 FROM "{table}" LIMIT :n) t'), {"n": incoming + 1}
    ).scalar_one()
    if not keys or incoming == 0 or held > incoming:
        yield False
        return
    for key in dict.fromkeys(keys):
        conn.execute(DropConstraint(key))
    yield True
    for key in dict.fromkeys(keys):
        conn.execute(AddConstraint(key))
