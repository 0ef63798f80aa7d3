"""The SQL views of `catalogue.db.views` as Core tables, and the schema's tables by name.

Declarations only: queries select from these, so that a column name is written
once here and checked against the database in the tests (a renamed view column
fails there, not on a user's screen). Column names are docs/DESIGN.md's contract.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Boolean, DateTime, Double, Integer, Table, Text, column, table
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql import TableClause

from catalogue.measures import CRITERIA, SELECTIVE_CLASSES, UNIT_MEASURES


def _measure_columns() -> list[Any]:
    cols: list[Any] = []
    for m in UNIT_MEASURES:
        if m.kind == "class":
            cols += [column(m.name, Text), column(f"{m.name}_index", Integer)]
        elif m.kind == "bool":
            cols.append(column(m.name, Boolean))
        else:
            cols.append(column(m.name, Double))
    return cols


def _columns(*spec: tuple[str, Any]) -> list[Any]:
    return [column(name, type_) for name, type_ in spec]


_UNIT_CATALOGUE_COLUMNS: tuple[tuple[str, Any], ...] = (
    ("run_id", Integer),
    ("model", Text),
    ("architecture", Text),
    ("layer", Text),
    ("layer_kind", Text),
    ("layer_position", Integer),
    ("unit", Integer),
    ("unit_id", Integer),
    ("dataset", Text),
    ("n_images", Integer),
)
_UNIT_CATALOGUE_TAIL: tuple[tuple[str, Any], ...] = (
    ("best_concept", Text),
    ("best_concept_category", Text),
    ("best_iou", Double),
    ("is_detector", Boolean),
    ("n_ratings", Integer),
    ("share_yes", Double),
    ("rating_consensus", Boolean),
    ("rating_top_name", Text),
    ("human_2afc_accuracy", Double),
    ("human_2afc_n", Integer),
    ("human_2afc_ci_low", Double),
    ("human_2afc_ci_high", Double),
)


def _unit_catalogue(name: str) -> TableClause:
    return table(
        name,
        *_columns(*_UNIT_CATALOGUE_COLUMNS),
        *_measure_columns(),
        *_columns(*_UNIT_CATALOGUE_TAIL),
    )


#: `unit_catalogue`: one row per unit and scoring run (run_id NULL for units never scored).
UNIT_CATALOGUE: TableClause = _unit_catalogue("unit_catalogue")

#: `misleading_detectors`: the `unit_catalogue` rows the "misleading" criterion selects.
MISLEADING_DETECTORS: TableClause = _unit_catalogue("misleading_detectors")

#: `layer_detectors`: per layer of a scoring run, the units each criterion calls detectors
#: (constant units left out of the counts and medians; `n_constant` counts them).
LAYER_DETECTORS: TableClause = table(
    "layer_detectors",
    *_columns(
        ("run_id", Integer),
        ("model", Text),
        ("layer", Text),
        ("layer_position", Integer),
        ("n_units", Integer),
        ("n_constant", Integer),
    ),
    *(column(c.count_column, Integer) for c in CRITERIA if c.count_column),
    *_columns(
        ("median_max_informedness", Double),
        ("median_false_alarm_rate", Double),
        ("median_recall_at_mi", Double),
    ),
)

LAYER_SUMMARY: TableClause = table(
    "layer_summary",
    *_columns(
        ("run_id", Integer),
        ("model", Text),
        ("layer", Text),
        ("layer_position", Integer),
        ("measure", Text),
        ("n", Integer),
        ("mean", Double),
        ("sd", Double),
        ("min", Double),
        ("q1", Double),
        ("median", Double),
        ("q3", Double),
        ("max", Double),
    ),
)

MEASURE_CORRELATIONS: TableClause = table(
    "measure_correlations",
    *_columns(
        ("run_id", Integer),
        ("model", Text),
        ("layer", Text),
        ("measure_a", Text),
        ("measure_b", Text),
        ("n", Integer),
        ("pearson", Double),
        ("spearman", Double),
    ),
)

RATING_SUMMARY: TableClause = table(
    "rating_summary",
    *_columns(
        ("unit_id", Integer),
        ("n_ratings", Integer),
        ("n_yes", Integer),
        ("share_yes", Double),
        ("consensus", Boolean),
        ("top_name", Text),
        ("human_agreement", Double),
    ),
)

#: `rating_layer_summary`: the paper's Table 1 per layer, with standard errors.
RATING_LAYER_SUMMARY: TableClause = table(
    "rating_layer_summary",
    *_columns(
        ("model", Text),
        ("layer", Text),
        ("layer_position", Integer),
        ("n_units", Integer),
        ("n_ratings", Integer),
        ("share_yes", Double),
        ("share_yes_se", Double),
        ("share_consensus", Double),
        ("share_consensus_se", Double),
        ("human_agreement", Double),
        ("human_agreement_se", Double),
        ("match_most_active", Double),
        ("match_most_active_se", Double),
        ("match_ccmas", Double),
        ("match_ccmas_se", Double),
    ),
)

DISSECTION_SUMMARY: TableClause = table(
    "dissection_summary",
    *_columns(
        ("run_id", Integer),
        ("model", Text),
        ("layer", Text),
        ("layer_position", Integer),
        ("n_units", Integer),
        ("n_detectors", Integer),
        ("n_unique_concepts", Integer),
    ),
)

#: `run_status`: every run with the status it reads as (`interrupted` when its owner is gone).
RUN_STATUS: TableClause = table(
    "run_status",
    *_columns(
        ("run_id", Integer),
        ("kind", Text),
        ("label", Text),
        ("status", Text),
        ("recorded_status", Text),
        ("owner_active", Boolean),
        ("owner_host", Text),
        ("owner_pid", Integer),
        ("owner_started_at", DateTime(timezone=True)),
        ("model_id", Integer),
        ("dataset_id", Integer),
        ("parent_id", Integer),
        ("params", JSONB),
        ("started_at", DateTime(timezone=True)),
        ("finished_at", DateTime(timezone=True)),
        ("duration_s", Double),
        ("code_version", Text),
        ("h5_path", Text),
        ("error", Text),
        ("stats", JSONB),
    ),
)

#: `unit_importance`: per unit and ablation run, what removing the unit did, beside its measures.
UNIT_IMPORTANCE: TableClause = table(
    "unit_importance",
    *_columns(
        ("run_id", Integer),
        ("extract_run_id", Integer),
        ("score_run_id", Integer),
        ("model", Text),
        ("layer", Text),
        ("layer_kind", Text),
        ("layer_position", Integer),
        ("unit", Integer),
        ("unit_id", Integer),
        ("replaced_by", Text),
        ("replacement", Double),
        ("n_images", Integer),
        ("accuracy", Double),
        ("accuracy_change", Double),
        ("most_hurt_class", Text),
        ("most_hurt_class_index", Integer),
        ("most_hurt_change", Double),
    ),
    *(
        column(name, type_)
        for c in SELECTIVE_CLASSES
        for name, type_ in ((c, Text), (f"{c}_index", Integer), (f"{c}_change", Double))
    ),
    *(
        column(m.name, Boolean if m.kind == "bool" else Double)
        for m in UNIT_MEASURES
        if m.kind != "class"
    ),
)

#: `selectivity_vs_importance`: per ablation run, layer and measure, Spearman and Pearson
#: correlations of the measure with the drop on the unit's selective class and overall.
SELECTIVITY_VS_IMPORTANCE: TableClause = table(
    "selectivity_vs_importance",
    *_columns(
        ("run_id", Integer),
        ("score_run_id", Integer),
        ("model", Text),
        ("layer", Text),
        ("layer_position", Integer),
        ("measure", Text),
        ("class_column", Text),
        ("n", Integer),
        ("mean_class_drop", Double),
        ("spearman_class_drop", Double),
        ("pearson_class_drop", Double),
        ("n_overall", Integer),
        ("spearman_overall_drop", Double),
        ("pearson_overall_drop", Double),
    ),
)

#: `layer_baselines`: per trained scoring run, layer and criterion: detectors trained,
#: with random weights, and by chance (mean ± sd over label permutations).
LAYER_BASELINES: TableClause = table(
    "layer_baselines",
    *_columns(
        ("score_run_id", Integer),
        ("model", Text),
        ("layer", Text),
        ("layer_position", Integer),
        ("criterion", Text),
        ("n_units", Integer),
        ("trained", Integer),
        ("random_run_id", Integer),
        ("random_model", Text),
        ("random", Integer),
        ("chance_run_id", Integer),
        ("chance_repeats", Integer),
        ("chance_mean", Double),
        ("chance_sd", Double),
    ),
)

#: Every view declared here (the tests check each against the database).
VIEWS: tuple[TableClause, ...] = (
    UNIT_CATALOGUE,
    MISLEADING_DETECTORS,
    LAYER_DETECTORS,
    LAYER_SUMMARY,
    MEASURE_CORRELATIONS,
    RATING_SUMMARY,
    RATING_LAYER_SUMMARY,
    DISSECTION_SUMMARY,
    RUN_STATUS,
    UNIT_IMPORTANCE,
    SELECTIVITY_VS_IMPORTANCE,
    LAYER_BASELINES,
)

#: The few columns of tables that a command reading only views shows beside them (`unitcat
#: runs`: a run's model, dataset and parent's kind), declared here so that it need not import
#: the ORM schema (tests check them against it).
MODEL_NAME: TableClause = table("model", column("id", Integer), column("name", Text))
DATASET_NAME: TableClause = table("dataset", column("id", Integer), column("name", Text))
RUN_KIND: TableClause = table("run", column("id", Integer), column("kind", Text))

#: The schema's tables by name (`RUN` is `schema.Run.__table__`), imported on first use
#: (`__getattr__`): the ORM schema costs a command that reads only views (`unitcat runs`,
#: `unitcat query`) about as much time as importing SQLAlchemy itself.
_SCHEMA_TABLES: dict[str, str] = {
    "RUN": "Run",
    "MODEL": "Model",
    "LAYER": "Layer",
    "UNIT": "Unit",
    "DATASET": "Dataset",
    "IMAGE_CLASS": "ImageClass",
    "CLASS_GROUP": "ClassGroup",
    "UNIT_METRICS": "UnitMetrics",
    "UNIT_CLASS_STATS": "UnitClassStats",
    "UNIT_GROUP_METRICS": "UnitGroupMetrics",
    "UNIT_TOP_IMAGE": "UnitTopImage",
    "CONCEPT": "Concept",
    "DISSECTION": "Dissection",
    "AM_PANEL": "AMPanel",
    "PARTICIPANT": "Participant",
    "RATING": "Rating",
    "UNIT_ABLATION": "UnitAblation",
    "UNIT_ABLATION_CLASS": "UnitAblationClass",
    "CLASS_ABLATION_CURVE": "ClassAblationCurve",
    "CHANCE_METRICS": "ChanceMetrics",
}


def __getattr__(name: str) -> Table:
    if name not in _SCHEMA_TABLES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from catalogue.db import schema

    found: Table = getattr(schema, _SCHEMA_TABLES[name]).__table__
    globals()[name] = found
    return found
