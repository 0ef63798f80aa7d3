"""The tables of a dump: one Parquet file per catalogue table, keyed without database ids.

A database id means nothing in another catalogue, so every reference is replaced by a
key that means the same everywhere (`REFERENCES`):

| reference | columns in the dump |
|---|---|
| a model | `model` (its name; `model.parquet` gives its weights `checksum`) |
| a layer | `model`, `layer` |
| a unit | `model`, `layer`, `unit` (the unit's index in its layer) |
| a run | `run` (or `parent`, `score_run` …): its content key (`catalogue.share.keys`) |
| a dataset | `dataset` (its name; `image_class.parquet` gives its classes) |
| a class group | `group`, `group_version` (of the run's dataset) |
| a concept | `probe`, `category`, `concept` |
| a participant | `participant` (their code) |
| an AM panel (rated) | `panel_run`: the key of its AM run (the unit is the rating's) |
| a 2-AFC study | `study` (its name) |
| a 2-AFC trial | `study`, `task`, `position` |

Class columns (`*_class`, `class_index`) stay class indices of the run's dataset, as in
the database. Every other column is the database column, named and typed as there
(`catalogue.db.schema`): a new measure is a new column of `unit_metrics.parquet` without
a change here. Summaries kept by triggers (`unit_best_concept`, `unit_rating_stats`,
`layer_detectors_cache`) are not exported: the importing catalogue's triggers rebuild
them from the rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
from sqlalchemy import ARRAY, Boolean, DateTime, Float, Integer, SmallInteger, String
from sqlalchemy.dialects.postgresql import JSONB

from catalogue.db.schema import Base

#: Reference kind -> the dump columns that replace its id column.
REFERENCES: dict[str, tuple[str, ...]] = {
    "model": ("model",),
    "dataset": ("dataset",),
    "layer": ("model", "layer"),
    "unit": ("model", "layer", "unit"),
    "concept": ("probe", "category", "concept"),
    "group": ("group", "group_version"),
    "participant": ("participant",),
    "run": ("run",),
    "panel": ("panel_run",),
    "study": ("study",),
    "trial": ("study", "task", "position"),
}


@dataclass(frozen=True)
class Ref:
    """An id column and what replaces it: `kind` (a key of REFERENCES); for a run reference,
    the dump column's name (`run`, `parent`, `score_run` …)."""

    kind: str
    name: str | None = None

    def columns(self) -> tuple[str, ...]:
        return (self.name,) if self.name else REFERENCES[self.kind]


@dataclass(frozen=True)
class DumpTable:
    """One Parquet file: the database `table` with id columns replaced by keys (`refs`),
    columns renamed (`rename`: database name -> dump name) or left out (`drop`)."""

    table: str
    key: tuple[str, ...]
    description: str
    refs: dict[str, Ref] = field(default_factory=dict)
    rename: dict[str, str] = field(default_factory=dict)
    drop: tuple[str, ...] = ()
    #: columns that the dump adds (name, arrow type, description)
    extra: tuple[tuple[str, pa.DataType, str], ...] = ()
    #: rows that belong to one run (written only for runs the importing catalogue lacks)
    per_run: bool = True

    @property
    def file(self) -> str:
        return f"{self.table}.parquet"

    def columns(self) -> list[tuple[str, str | None]]:
        """(dump column, database column or None for a key or added column), in order."""
        out: list[tuple[str, str | None]] = []
        for column in Base.metadata.tables[self.table].c:
            if column.name in self.drop:
                continue
            if column.name in self.refs:
                out += [(c, None) for c in self.refs[column.name].columns()]
            else:
                out.append((self.rename.get(column.name, column.name), column.name))
        out += [(name, None) for name, _, _ in self.extra]
        seen: set[str] = set()
        return [c for c in out if not (c[0] in seen or seen.add(c[0]))]  # type: ignore[func-returns-value]

    def schema(self) -> pa.Schema:
        """The Arrow schema of the file."""
        table = Base.metadata.tables[self.table]
        extra = {name: kind for name, kind, _ in self.extra}
        fields = []
        for name, db_column in self.columns():
            if db_column is not None:
                column = table.c[db_column]
                fields.append(pa.field(name, arrow_type(column.type), column.nullable))
            else:
                fields.append(pa.field(name, extra.get(name, KEY_TYPES.get(name, pa.string()))))
        return pa.schema(fields)


#: Key columns that are not strings.
KEY_TYPES: dict[str, pa.DataType] = {
    "unit": pa.int32(),
    "group_version": pa.int32(),
    "task": pa.int32(),
    "position": pa.int32(),
}


def arrow_type(sql_type: Any) -> pa.DataType:
    """The Arrow type of a database column type (jsonb as JSON text)."""
    if isinstance(sql_type, JSONB):
        return pa.string()
    if isinstance(sql_type, ARRAY):
        return pa.list_(arrow_type(sql_type.item_type))
    if isinstance(sql_type, Boolean):
        return pa.bool_()
    if isinstance(sql_type, SmallInteger):
        return pa.int16()
    if isinstance(sql_type, Integer):
        return pa.int32()
    if isinstance(sql_type, Float):
        return pa.float64()
    if isinstance(sql_type, DateTime):
        return pa.timestamp("us", tz="UTC")
    if isinstance(sql_type, String):
        return pa.string()
    raise TypeError(f"no Arrow type for {sql_type!r}")


_RUN = Ref("run", "run")
_UNIT = Ref("unit")
_PER_UNIT = {"run_id": _RUN, "unit_id": _UNIT}

#: The catalogue's identity: models, data, concepts, people (merged on import by key).
IDENTITY: tuple[DumpTable, ...] = (
    DumpTable(
        "model",
        ("model", "checksum"),
        "The networks: a model is its name and the checksum of its weights.",
        rename={"name": "model"},
        drop=("id",),
        per_run=False,
    ),
    DumpTable(
        "layer",
        ("model", "layer"),
        "The layers of each model: kind (conv | fc), number of units, position.",
        refs={"model_id": Ref("model")},
        rename={"name": "layer"},
        drop=("id",),
        per_run=False,
    ),
    DumpTable(
        "unit",
        ("model", "layer", "unit"),
        "Every unit: its layer and its index in the layer.",
        refs={"layer_id": Ref("layer")},
        rename={"unit_index": "unit"},
        drop=("id",),
        per_run=False,
    ),
    DumpTable(
        "dataset",
        ("dataset",),
        "The labelled image sets runs read (the source folder as on the exporting machine).",
        rename={"name": "dataset"},
        drop=("id",),
        per_run=False,
    ),
    DumpTable(
        "image_class",
        ("dataset", "class_index"),
        "The classes of each dataset: index, key (e.g. a WordNet id), name.",
        refs={"dataset_id": Ref("dataset")},
        drop=("id",),
        per_run=False,
    ),
    DumpTable(
        "class_group",
        ("dataset", "group", "version"),
        "Named groups of classes (one row per version), with their member class keys.",
        refs={"dataset_id": Ref("dataset")},
        rename={"name": "group"},
        drop=("id",),
        extra=(("members", pa.list_(pa.string()), "the class keys of the group's members"),),
        per_run=False,
    ),
    DumpTable(
        "concept",
        ("probe", "category", "concept"),
        "The visual concepts of the probe sets dissection used.",
        rename={"name": "concept"},
        drop=("id",),
        per_run=False,
    ),
    DumpTable(
        "participant",
        ("participant",),
        "The people who rated AM panels or answered 2-AFC trials, by their code.",
        rename={"code": "participant"},
        drop=("id",),
        per_run=False,
    ),
    DumpTable(
        "run",
        ("run",),
        "Every run with its parameters (run ids replaced by run keys), status, timings and "
        "provenance.",
        refs={
            "id": Ref("run", "run"),
            "model_id": Ref("model"),
            "dataset_id": Ref("dataset"),
            "parent_id": Ref("run", "parent"),
            "baseline_of": Ref("run", "baseline_of"),
        },
        drop=("key",),
        extra=(
            ("source_run_id", pa.int32(), "the run's id in the exporting catalogue (not a key)"),
        ),
        per_run=False,
    ),
)

#: The results, each row belonging to one run.
RESULTS: tuple[DumpTable, ...] = (
    DumpTable(
        "unit_metrics",
        ("run", "model", "layer", "unit"),
        "Every selectivity measure of every unit per scoring run (docs/DESIGN.md).",
        refs=_PER_UNIT,
    ),
    DumpTable(
        "unit_class_stats",
        ("run", "model", "layer", "unit", "class_index"),
        "Per unit, its top classes by informedness and by mean activation.",
        refs=_PER_UNIT,
    ),
    DumpTable(
        "unit_group_metrics",
        ("run", "model", "layer", "unit", "group", "group_version"),
        "The measures of each unit for a named group of classes (the paper's Tables 4-6).",
        refs={**_PER_UNIT, "group_id": Ref("group")},
    ),
    DumpTable(
        "unit_top_image",
        ("run", "model", "layer", "unit", "rank"),
        "Each unit's most active images (keys as the run read them).",
        refs=_PER_UNIT,
    ),
    DumpTable(
        "unit_bottom_image",
        ("run", "model", "layer", "unit", "rank"),
        "Each unit's least active images (rank 1 = least active; ties in a fixed "
        "pseudo-random order): the minimal side of a 2-AFC trial.",
        refs=_PER_UNIT,
    ),
    DumpTable(
        "dissection",
        ("run", "model", "layer", "unit", "probe", "category", "concept"),
        "Network dissection: per unit its top concepts by IoU.",
        refs={**_PER_UNIT, "concept_id": Ref("concept")},
    ),
    DumpTable(
        "am_panel",
        ("run", "model", "layer", "unit"),
        "Activation-maximisation panels: method, parameters, the unit's activations on them "
        "(the PNG is in images/am_panel-*.parquet).",
        refs=_PER_UNIT,
        drop=("id",),
    ),
    DumpTable(
        "unit_ablation",
        ("run", "model", "layer", "unit"),
        "Per unit and ablation run: the accuracy change when the unit is removed, overall "
        "and for its selective classes.",
        refs={**_PER_UNIT, "score_run_id": Ref("run", "score_run")},
    ),
    DumpTable(
        "unit_ablation_class",
        ("run", "model", "layer", "unit", "rank"),
        "Per unit and ablation run, the classes its removal hurt most.",
        refs=_PER_UNIT,
    ),
    DumpTable(
        "class_ablation_curve",
        ("run", "model", "layer", "class_index", "ranking", "k"),
        "A class's accuracy as the top k units of a layer are removed (Bau et al. 2020); "
        "`units` are unit indices.",
        refs={"run_id": _RUN, "layer_id": Ref("layer")},
    ),
    DumpTable(
        "chance_metrics",
        ("run", "model", "layer", "unit", "repeat"),
        "Every measure against permuted labels, per repeat (the chance baseline).",
        refs=_PER_UNIT,
    ),
)

#: Human ratings and their analysis: keyed by person and unit, not by run.
RATINGS: tuple[DumpTable, ...] = (
    DumpTable(
        "rating",
        ("participant", "model", "layer", "unit"),
        "One participant's answers about one unit's AM panel (`panel_run`: the AM run of "
        "the panel rated).",
        refs={
            "participant_id": Ref("participant"),
            "unit_id": _UNIT,
            "panel_id": Ref("panel"),
        },
        drop=("id",),
        per_run=False,
    ),
    DumpTable(
        "unit_rating_analysis",
        ("model", "layer", "unit"),
        "The name analysis of each rated unit (WordNet matches of the names given).",
        refs={"unit_id": _UNIT, "score_run_id": Ref("run", "score_run")},
        per_run=False,
    ),
)

_STUDY = Ref("study")

#: The 2-AFC study of natural exemplars: studies by name, trials by (study, task, position),
#: people by code; a study belongs to the scoring run its exemplars come from.
TWOAFC: tuple[DumpTable, ...] = (
    DumpTable(
        "twoafc_study",
        ("study",),
        "2-AFC studies: name, the scoring run of their exemplars, parameters (units, seed, "
        "batches, task size, catch trials), number of tasks.",
        refs={"score_run_id": Ref("run", "score_run")},
        rename={"name": "study"},
        drop=("id",),
        per_run=False,
    ),
    DumpTable(
        "twoafc_trial",
        ("study", "task", "position"),
        "Each trial at its place in its task: the unit, catch or not, the two queries and "
        "the references in the order shown (image indices, keys, activations).",
        refs={"study_id": _STUDY, "unit_id": _UNIT},
        drop=("id",),
        per_run=False,
    ),
    DumpTable(
        "twoafc_assignment",
        ("study", "participant"),
        "The task each participant was dealt in a study.",
        refs={"study_id": _STUDY, "participant_id": Ref("participant")},
        per_run=False,
    ),
    DumpTable(
        "twoafc_response",
        ("study", "task", "position", "participant"),
        "Each answer: whether the participant chose the strongly activating query, with "
        "confidence (1-3) and response time.",
        refs={"trial_id": Ref("trial"), "participant_id": Ref("participant")},
        drop=("id",),
        per_run=False,
    ),
)

TABLES: tuple[DumpTable, ...] = IDENTITY + RESULTS + RATINGS + TWOAFC
BY_NAME: dict[str, DumpTable] = {t.table: t for t in TABLES}

#: Tables kept by triggers from the rows above: rebuilt by the importing catalogue.
DERIVED: tuple[str, ...] = (
    "class_group_member",  # in class_group.parquet's `members`
    "unit_best_concept",
    "unit_rating_stats",
    "layer_detectors_cache",
    "layer_detectors_stale",
)

#: The image files: one row per image, PNG bytes in Hugging Face's image struct.
IMAGE_STRUCT = pa.struct([pa.field("bytes", pa.binary()), pa.field("path", pa.string())])
IMAGES: dict[str, pa.Schema] = {
    "image": pa.schema(
        [
            pa.field("dataset", pa.string()),
            pa.field("image_key", pa.string()),
            pa.field("class_index", pa.int32()),
            pa.field("image", IMAGE_STRUCT),
        ]
    ),
    "am_panel": pa.schema(
        [
            pa.field("run", pa.string()),
            pa.field("model", pa.string()),
            pa.field("layer", pa.string()),
            pa.field("unit", pa.int32()),
            pa.field("image", IMAGE_STRUCT),
        ]
    ),
}
IMAGE_DESCRIPTIONS: dict[str, str] = {
    "image": "The images units' rows name (top and least activating images, 2-AFC stimuli), "
    "each once by dataset and key, as stored (PNG for a bundled dataset).",
    "am_panel": "The AM panels as PNG, one per unit and AM run.",
}
