"""Catalogue tables and views.

The tables of catalogue.db.schema at the first release, and the views as
catalogue.db.views generated them then, written out as literal SQL so that
this revision keeps creating them whatever the measures and criteria become.

Revision ID: 0001
Revises:
Create Date: 2026-11-25 01:34:15.743856
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The views this revision creates, name -> SELECT, in creation order (later ones read
#: earlier ones). Literal SQL: never edit it; a changed view is a new revision.
VIEWS: dict[str, str] = {
    "unit_catalogue": """
SELECT
    um.run_id,
    m.name AS model,
    m.architecture,
    l.name AS layer,
    l.kind AS layer_kind,
    l.position AS layer_position,
    u.unit_index AS unit,
    u.id AS unit_id,
    d.name AS dataset,
    um.n_images,
    um.localist,
    c_localist_class.name AS localist_class,
    um.localist_class AS localist_class_index,
    um.precision,
    c_precision_class.name AS precision_class,
    um.precision_class AS precision_class_index,
    um.top60_threshold,
    um.classes_in_top100,
    um.ccmas,
    c_ccmas_class.name AS ccmas_class,
    um.ccmas_class AS ccmas_class_index,
    um.recall_at_p100,
    um.recall_at_p95,
    um.max_informedness,
    c_mi_class.name AS mi_class,
    um.mi_class AS mi_class_index,
    um.mi_threshold,
    um.recall_at_mi,
    um.specificity_at_mi,
    um.false_alarm_rate,
    um.frac_zero,
    um.mean_activation,
    um.max_activation,
    um.class_selectivity_index,
    best.concept AS best_concept,
    best.category AS best_concept_category,
    best.iou AS best_iou,
    best.iou > 0.04 AS is_detector,
    rs.n_ratings,
    rs.share_yes,
    rs.consensus AS rating_consensus,
    rs.top_name AS rating_top_name
FROM unit u
JOIN layer l ON l.id = u.layer_id
JOIN model m ON m.id = l.model_id
LEFT JOIN unit_metrics um ON um.unit_id = u.id
LEFT JOIN run r ON r.id = um.run_id
LEFT JOIN dataset d ON d.id = r.dataset_id
LEFT JOIN image_class c_localist_class ON c_localist_class.dataset_id = r.dataset_id AND c_localist_class.class_index = um.localist_class
LEFT JOIN image_class c_precision_class ON c_precision_class.dataset_id = r.dataset_id AND c_precision_class.class_index = um.precision_class
LEFT JOIN image_class c_ccmas_class ON c_ccmas_class.dataset_id = r.dataset_id AND c_ccmas_class.class_index = um.ccmas_class
LEFT JOIN image_class c_mi_class ON c_mi_class.dataset_id = r.dataset_id AND c_mi_class.class_index = um.mi_class
LEFT JOIN LATERAL (
    SELECT c.name AS concept, c.category, dn.iou
    FROM dissection dn
    JOIN concept c ON c.id = dn.concept_id
    WHERE dn.unit_id = u.id
    ORDER BY dn.iou DESC, dn.run_id DESC, c.id
    LIMIT 1
) best ON true
LEFT JOIN LATERAL (
    SELECT
        count(*)::integer AS n_ratings,
        avg(rt.answer::integer)::double precision AS share_yes,
        avg(rt.answer::integer) >= 0.8 AS consensus,
        (SELECT n.name FROM rating r2, unnest(r2.names) AS n(name)
         WHERE r2.unit_id = u.id AND r2.answer
         GROUP BY n.name ORDER BY count(*) DESC, n.name LIMIT 1) AS top_name
    FROM rating rt
    WHERE rt.unit_id = u.id
    HAVING count(*) > 0
) rs ON true
""",
    "misleading_detectors": """
SELECT *
FROM unit_catalogue
WHERE precision > 0.75 AND false_alarm_rate > 0.9
""",
    "layer_summary": """
SELECT
    uc.run_id,
    uc.model,
    uc.layer,
    uc.layer_position,
    v.measure,
    count(v.value)::integer AS n,
    avg(v.value) AS mean,
    stddev_samp(v.value) AS sd,
    min(v.value) AS min,
    percentile_cont(0.25) WITHIN GROUP (ORDER BY v.value) AS q1,
    percentile_cont(0.5) WITHIN GROUP (ORDER BY v.value) AS median,
    percentile_cont(0.75) WITHIN GROUP (ORDER BY v.value) AS q3,
    max(v.value) AS max
FROM unit_catalogue uc
CROSS JOIN LATERAL (VALUES
        ('localist', uc.localist::integer::double precision),
        ('precision', uc.precision),
        ('top60_threshold', uc.top60_threshold),
        ('classes_in_top100', uc.classes_in_top100),
        ('ccmas', uc.ccmas),
        ('recall_at_p100', uc.recall_at_p100),
        ('recall_at_p95', uc.recall_at_p95),
        ('max_informedness', uc.max_informedness),
        ('mi_threshold', uc.mi_threshold),
        ('recall_at_mi', uc.recall_at_mi),
        ('specificity_at_mi', uc.specificity_at_mi),
        ('false_alarm_rate', uc.false_alarm_rate),
        ('frac_zero', uc.frac_zero),
        ('mean_activation', uc.mean_activation),
        ('max_activation', uc.max_activation),
        ('class_selectivity_index', uc.class_selectivity_index)
) AS v(measure, value)
WHERE uc.run_id IS NOT NULL
GROUP BY uc.run_id, uc.model, uc.layer, uc.layer_position, v.measure
""",
    "measure_correlations": """
WITH long AS (
    SELECT uc.run_id, uc.model, uc.layer, uc.unit_id, v.measure, v.value
    FROM unit_catalogue uc
    CROSS JOIN LATERAL (VALUES
        ('precision', uc.precision),
        ('classes_in_top100', uc.classes_in_top100),
        ('ccmas', uc.ccmas),
        ('recall_at_p100', uc.recall_at_p100),
        ('recall_at_p95', uc.recall_at_p95),
        ('max_informedness', uc.max_informedness),
        ('recall_at_mi', uc.recall_at_mi),
        ('specificity_at_mi', uc.specificity_at_mi),
        ('false_alarm_rate', uc.false_alarm_rate),
        ('class_selectivity_index', uc.class_selectivity_index),
        ('frac_zero', uc.frac_zero),
        ('mean_activation', uc.mean_activation)
    ) AS v(measure, value)
    WHERE uc.run_id IS NOT NULL AND v.value IS NOT NULL AND v.value <> 'NaN'::double precision
),
pairs AS (
    SELECT a.run_id, a.model, a.layer, a.measure AS measure_a, b.measure AS measure_b,
           a.value AS value_a, b.value AS value_b
    FROM long a
    JOIN long b ON b.run_id = a.run_id AND b.unit_id = a.unit_id AND a.measure < b.measure
),
ranked AS (
    -- average ranks (ties share the mean of their positions), over pairwise-complete units
    SELECT p.*,
        rank() OVER (PARTITION BY run_id, layer, measure_a, measure_b ORDER BY value_a)
          + (count(*) OVER (PARTITION BY run_id, layer, measure_a, measure_b, value_a) - 1) / 2.0
          AS rank_a,
        rank() OVER (PARTITION BY run_id, layer, measure_a, measure_b ORDER BY value_b)
          + (count(*) OVER (PARTITION BY run_id, layer, measure_a, measure_b, value_b) - 1) / 2.0
          AS rank_b
    FROM pairs p
)
SELECT run_id, model, layer, measure_a, measure_b,
       count(*)::integer AS n,
       corr(value_a, value_b) AS pearson,
       corr(rank_a::double precision, rank_b::double precision) AS spearman
FROM ranked
GROUP BY run_id, model, layer, measure_a, measure_b
""",
    "rating_summary": """
SELECT
    m.name AS model,
    l.name AS layer,
    l.position AS layer_position,
    u.unit_index AS unit,
    u.id AS unit_id,
    count(*)::integer AS n_ratings,
    sum(rt.answer::integer)::integer AS n_yes,
    avg(rt.answer::integer)::double precision AS share_yes,
    avg(rt.answer::integer) >= 0.8 AS consensus,
    ra.n_named,
    coalesce(ra.top_name,
        (SELECT n.name FROM rating r2, unnest(r2.names) AS n(name)
         WHERE r2.unit_id = u.id AND r2.answer
         GROUP BY n.name ORDER BY count(*) DESC, n.name LIMIT 1)) AS top_name,
    ra.human_agreement,
    ra.match_most_active,
    ra.match_ccmas,
    ra.mean_estimate,
    ra.used_wordnet
FROM rating rt
JOIN unit u ON u.id = rt.unit_id
JOIN layer l ON l.id = u.layer_id
JOIN model m ON m.id = l.model_id
LEFT JOIN unit_rating_analysis ra ON ra.unit_id = u.id
GROUP BY m.name, l.name, l.position, u.unit_index, u.id, ra.unit_id
""",
    "rating_layer_summary": """
SELECT
    model,
    layer,
    layer_position,
    count(*)::integer AS n_units,
    sum(n_ratings)::integer AS n_ratings,
    avg(share_yes) AS share_yes,
    stddev_samp(share_yes) / sqrt(count(*)) AS share_yes_se,
    avg(consensus::integer)::double precision AS share_consensus,
    sqrt(avg(consensus::integer) * (1 - avg(consensus::integer)) / count(*))::double precision
        AS share_consensus_se,
    avg(human_agreement) FILTER (WHERE consensus) AS human_agreement,
    stddev_samp(human_agreement) FILTER (WHERE consensus)
        / sqrt(nullif(count(human_agreement) FILTER (WHERE consensus), 0)) AS human_agreement_se,
    avg(match_most_active) FILTER (WHERE consensus) AS match_most_active,
    stddev_samp(match_most_active) FILTER (WHERE consensus)
        / sqrt(nullif(count(match_most_active) FILTER (WHERE consensus), 0)) AS match_most_active_se,
    avg(match_ccmas) FILTER (WHERE consensus) AS match_ccmas,
    stddev_samp(match_ccmas) FILTER (WHERE consensus)
        / sqrt(nullif(count(match_ccmas) FILTER (WHERE consensus), 0)) AS match_ccmas_se
FROM rating_summary
GROUP BY model, layer, layer_position
""",
    "dissection_summary": """
SELECT
    dn.run_id,
    m.name AS model,
    l.name AS layer,
    l.position AS layer_position,
    count(DISTINCT dn.unit_id)::integer AS n_units,
    count(DISTINCT dn.unit_id) FILTER (WHERE dn.rank = 1 AND dn.iou > 0.04)::integer
        AS n_detectors,
    count(DISTINCT dn.concept_id) FILTER (WHERE dn.rank = 1 AND dn.iou > 0.04)::integer
        AS n_unique_concepts
FROM dissection dn
JOIN unit u ON u.id = dn.unit_id
JOIN layer l ON l.id = u.layer_id
JOIN model m ON m.id = l.model_id
GROUP BY dn.run_id, m.name, l.name, l.position
""",
}


def upgrade() -> None:
    op.create_table(
        "concept",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("probe", sa.Text(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("category", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_concept")),
        sa.UniqueConstraint(
            "probe", "category", "name", name=op.f("uq_concept_probe_category_name")
        ),
    )
    op.create_table(
        "dataset",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column("n_classes", sa.Integer(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dataset")),
        sa.UniqueConstraint("name", name=op.f("uq_dataset_name")),
    )
    op.create_table(
        "model",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("architecture", sa.Text(), nullable=False),
        sa.Column("weights", sa.Text(), nullable=True),
        sa.Column("checksum", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model")),
        sa.UniqueConstraint("name", name=op.f("uq_model_name")),
    )
    op.create_table(
        "participant",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("list_index", sa.Integer(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_participant")),
        sa.UniqueConstraint("code", name=op.f("uq_participant_code")),
    )
    op.create_table(
        "class_group",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["dataset.id"],
            name=op.f("fk_class_group_dataset_id_dataset"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_class_group")),
        sa.UniqueConstraint("dataset_id", "name", name=op.f("uq_class_group_dataset_id_name")),
    )
    op.create_table(
        "image_class",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("class_index", sa.Integer(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["dataset.id"],
            name=op.f("fk_image_class_dataset_id_dataset"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_image_class")),
        sa.UniqueConstraint(
            "dataset_id", "class_index", name=op.f("uq_image_class_dataset_id_class_index")
        ),
        sa.UniqueConstraint("dataset_id", "key", name=op.f("uq_image_class_dataset_id_key")),
    )
    op.create_table(
        "layer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("n_units", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("output_shape", sa.ARRAY(sa.Integer()), nullable=True),
        sa.CheckConstraint("kind IN ('conv', 'fc')", name=op.f("ck_layer_kind")),
        sa.ForeignKeyConstraint(
            ["model_id"], ["model.id"], name=op.f("fk_layer_model_id_model"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_layer")),
        sa.UniqueConstraint("model_id", "name", name=op.f("uq_layer_model_id_name")),
    )
    op.create_table(
        "run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("label", sa.Text(), nullable=True),
        sa.Column("model_id", sa.Integer(), nullable=True),
        sa.Column("dataset_id", sa.Integer(), nullable=True),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column(
            "params", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False
        ),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column(
            "started_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("duration_s", sa.Double(), nullable=True),
        sa.Column("code_version", sa.Text(), nullable=True),
        sa.Column("h5_path", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column(
            "stats", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False
        ),
        sa.CheckConstraint(
            "kind IN ('extract', 'score', 'dissect', 'am', 'ablate')", name=op.f("ck_run_kind")
        ),
        sa.CheckConstraint("status IN ('running', 'done', 'failed')", name=op.f("ck_run_status")),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["dataset.id"],
            name=op.f("fk_run_dataset_id_dataset"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["model_id"], ["model.id"], name=op.f("fk_run_model_id_model"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["run.id"], name=op.f("fk_run_parent_id_run"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_run")),
        sa.UniqueConstraint("kind", "key", name=op.f("uq_run_kind_key")),
    )
    op.create_index(op.f("ix_run_model_id"), "run", ["model_id"], unique=False)
    op.create_table(
        "class_group_member",
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("class_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["class_id"],
            ["image_class.id"],
            name=op.f("fk_class_group_member_class_id_image_class"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["class_group.id"],
            name=op.f("fk_class_group_member_group_id_class_group"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("group_id", "class_id", name=op.f("pk_class_group_member")),
    )
    op.create_table(
        "unit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("layer_id", sa.Integer(), nullable=False),
        sa.Column("unit_index", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["layer_id"], ["layer.id"], name=op.f("fk_unit_layer_id_layer"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_unit")),
        sa.UniqueConstraint("layer_id", "unit_index", name=op.f("uq_unit_layer_id_unit_index")),
    )
    op.create_table(
        "am_panel",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("method", sa.Text(), nullable=False),
        sa.Column(
            "params", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False
        ),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("activations", sa.ARRAY(sa.Double()), nullable=False),
        sa.Column("dataset_max", sa.Double(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["run.id"], name=op.f("fk_am_panel_run_id_run"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["unit.id"], name=op.f("fk_am_panel_unit_id_unit"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_am_panel")),
        sa.UniqueConstraint("run_id", "unit_id", name=op.f("uq_am_panel_run_id_unit_id")),
    )
    op.create_index(op.f("ix_am_panel_unit_id"), "am_panel", ["unit_id"], unique=False)
    op.create_table(
        "dissection",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("concept_id", sa.Integer(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("iou", sa.Double(), nullable=False),
        sa.Column("threshold", sa.Double(), nullable=False),
        sa.Column("is_detector", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["concept_id"],
            ["concept.id"],
            name=op.f("fk_dissection_concept_id_concept"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["run.id"], name=op.f("fk_dissection_run_id_run"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["unit.id"], name=op.f("fk_dissection_unit_id_unit"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", "unit_id", "concept_id", name=op.f("pk_dissection")),
    )
    op.create_index(op.f("ix_dissection_iou"), "dissection", ["iou"], unique=False)
    op.create_index(op.f("ix_dissection_unit_id"), "dissection", ["unit_id"], unique=False)
    op.create_table(
        "unit_class_stats",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("class_index", sa.Integer(), nullable=False),
        sa.Column("mean_activation", sa.Double(), nullable=True),
        sa.Column("frac_nonzero", sa.Double(), nullable=True),
        sa.Column("informedness", sa.Double(), nullable=True),
        sa.Column("informedness_threshold", sa.Double(), nullable=True),
        sa.Column("rank_by_informedness", sa.Integer(), nullable=True),
        sa.Column("rank_by_mean", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"], ["run.id"], name=op.f("fk_unit_class_stats_run_id_run"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"],
            ["unit.id"],
            name=op.f("fk_unit_class_stats_unit_id_unit"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "run_id", "unit_id", "class_index", name=op.f("pk_unit_class_stats")
        ),
    )
    op.create_index(
        op.f("ix_unit_class_stats_unit_id"), "unit_class_stats", ["unit_id"], unique=False
    )
    op.create_table(
        "unit_group_metrics",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("n_nonzero_in", sa.Double(), nullable=True),
        sa.Column("n_nonzero_out", sa.Double(), nullable=True),
        sa.Column("mu_in", sa.Double(), nullable=True),
        sa.Column("mu_out", sa.Double(), nullable=True),
        sa.Column("precision", sa.Double(), nullable=True),
        sa.Column("ccmas", sa.Double(), nullable=True),
        sa.Column("max_informedness", sa.Double(), nullable=True),
        sa.Column("mi_threshold", sa.Double(), nullable=True),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["class_group.id"],
            name=op.f("fk_unit_group_metrics_group_id_class_group"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["run.id"],
            name=op.f("fk_unit_group_metrics_run_id_run"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"],
            ["unit.id"],
            name=op.f("fk_unit_group_metrics_unit_id_unit"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "run_id", "unit_id", "group_id", name=op.f("pk_unit_group_metrics")
        ),
    )
    op.create_index(
        op.f("ix_unit_group_metrics_unit_id"), "unit_group_metrics", ["unit_id"], unique=False
    )
    op.create_table(
        "unit_metrics",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("n_images", sa.Integer(), nullable=False),
        sa.Column("localist", sa.Boolean(), nullable=True),
        sa.Column("localist_class", sa.Integer(), nullable=True),
        sa.Column("precision", sa.Double(), nullable=True),
        sa.Column("precision_class", sa.Integer(), nullable=True),
        sa.Column("top60_threshold", sa.Double(), nullable=True),
        sa.Column("classes_in_top100", sa.Double(), nullable=True),
        sa.Column("ccmas", sa.Double(), nullable=True),
        sa.Column("ccmas_class", sa.Integer(), nullable=True),
        sa.Column("recall_at_p100", sa.Double(), nullable=True),
        sa.Column("recall_at_p95", sa.Double(), nullable=True),
        sa.Column("max_informedness", sa.Double(), nullable=True),
        sa.Column("mi_class", sa.Integer(), nullable=True),
        sa.Column("mi_threshold", sa.Double(), nullable=True),
        sa.Column("recall_at_mi", sa.Double(), nullable=True),
        sa.Column("specificity_at_mi", sa.Double(), nullable=True),
        sa.Column("false_alarm_rate", sa.Double(), nullable=True),
        sa.Column("frac_zero", sa.Double(), nullable=True),
        sa.Column("mean_activation", sa.Double(), nullable=True),
        sa.Column("max_activation", sa.Double(), nullable=True),
        sa.Column("class_selectivity_index", sa.Double(), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"], ["run.id"], name=op.f("fk_unit_metrics_run_id_run"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["unit.id"], name=op.f("fk_unit_metrics_unit_id_unit"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", "unit_id", name=op.f("pk_unit_metrics")),
    )
    op.create_index(op.f("ix_unit_metrics_ccmas"), "unit_metrics", ["ccmas"], unique=False)
    op.create_index(
        op.f("ix_unit_metrics_false_alarm_rate"), "unit_metrics", ["false_alarm_rate"], unique=False
    )
    op.create_index(
        op.f("ix_unit_metrics_max_informedness"), "unit_metrics", ["max_informedness"], unique=False
    )
    op.create_index(op.f("ix_unit_metrics_precision"), "unit_metrics", ["precision"], unique=False)
    op.create_index(
        op.f("ix_unit_metrics_recall_at_p95"), "unit_metrics", ["recall_at_p95"], unique=False
    )
    op.create_index(op.f("ix_unit_metrics_unit_id"), "unit_metrics", ["unit_id"], unique=False)
    op.create_table(
        "unit_rating_analysis",
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("score_run_id", sa.Integer(), nullable=True),
        sa.Column("n_named", sa.Integer(), nullable=False),
        sa.Column("top_name", sa.Text(), nullable=True),
        sa.Column("human_agreement", sa.Double(), nullable=True),
        sa.Column("match_most_active", sa.Double(), nullable=True),
        sa.Column("match_ccmas", sa.Double(), nullable=True),
        sa.Column("mean_estimate", sa.Double(), nullable=True),
        sa.Column("used_wordnet", sa.Boolean(), nullable=False),
        sa.Column(
            "computed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["score_run_id"],
            ["run.id"],
            name=op.f("fk_unit_rating_analysis_score_run_id_run"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"],
            ["unit.id"],
            name=op.f("fk_unit_rating_analysis_unit_id_unit"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("unit_id", name=op.f("pk_unit_rating_analysis")),
    )
    op.create_table(
        "unit_top_image",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("image_index", sa.Integer(), nullable=False),
        sa.Column("image_key", sa.Text(), nullable=True),
        sa.Column("class_index", sa.Integer(), nullable=False),
        sa.Column("activation", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["run.id"], name=op.f("fk_unit_top_image_run_id_run"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"],
            ["unit.id"],
            name=op.f("fk_unit_top_image_unit_id_unit"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", "unit_id", "rank", name=op.f("pk_unit_top_image")),
    )
    op.create_index(op.f("ix_unit_top_image_unit_id"), "unit_top_image", ["unit_id"], unique=False)
    op.create_table(
        "rating",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("participant_id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("panel_id", sa.Integer(), nullable=True),
        sa.Column("answer", sa.Boolean(), nullable=False),
        sa.Column("estimate", sa.String(length=8), nullable=True),
        sa.Column("names", sa.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "estimate IS NULL OR estimate IN ('0-20', '20-40', '40-60', '60-80', '80-100')",
            name=op.f("ck_rating_estimate"),
        ),
        sa.CheckConstraint("source IN ('ui', 'import')", name=op.f("ck_rating_source")),
        sa.CheckConstraint(
            "answer OR (estimate IS NULL AND cardinality(names) = 0)",
            name=op.f("ck_rating_no_details"),
        ),
        sa.CheckConstraint("cardinality(names) <= 2", name=op.f("ck_rating_at_most_two_names")),
        sa.ForeignKeyConstraint(
            ["panel_id"],
            ["am_panel.id"],
            name=op.f("fk_rating_panel_id_am_panel"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["participant_id"],
            ["participant.id"],
            name=op.f("fk_rating_participant_id_participant"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["unit.id"], name=op.f("fk_rating_unit_id_unit"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rating")),
        sa.UniqueConstraint(
            "participant_id", "unit_id", name=op.f("uq_rating_participant_id_unit_id")
        ),
    )
    op.create_index(op.f("ix_rating_unit_id"), "rating", ["unit_id"], unique=False)
    for name, select in VIEWS.items():
        op.execute(f"CREATE VIEW {name} AS {select}")


def downgrade() -> None:
    for name in reversed(VIEWS):
        op.execute(f"DROP VIEW {name}")
    op.drop_index(op.f("ix_rating_unit_id"), table_name="rating")
    op.drop_table("rating")
    op.drop_index(op.f("ix_unit_top_image_unit_id"), table_name="unit_top_image")
    op.drop_table("unit_top_image")
    op.drop_table("unit_rating_analysis")
    op.drop_index(op.f("ix_unit_metrics_unit_id"), table_name="unit_metrics")
    op.drop_index(op.f("ix_unit_metrics_recall_at_p95"), table_name="unit_metrics")
    op.drop_index(op.f("ix_unit_metrics_precision"), table_name="unit_metrics")
    op.drop_index(op.f("ix_unit_metrics_max_informedness"), table_name="unit_metrics")
    op.drop_index(op.f("ix_unit_metrics_false_alarm_rate"), table_name="unit_metrics")
    op.drop_index(op.f("ix_unit_metrics_ccmas"), table_name="unit_metrics")
    op.drop_table("unit_metrics")
    op.drop_index(op.f("ix_unit_group_metrics_unit_id"), table_name="unit_group_metrics")
    op.drop_table("unit_group_metrics")
    op.drop_index(op.f("ix_unit_class_stats_unit_id"), table_name="unit_class_stats")
    op.drop_table("unit_class_stats")
    op.drop_index(op.f("ix_dissection_unit_id"), table_name="dissection")
    op.drop_index(op.f("ix_dissection_iou"), table_name="dissection")
    op.drop_table("dissection")
    op.drop_index(op.f("ix_am_panel_unit_id"), table_name="am_panel")
    op.drop_table("am_panel")
    op.drop_table("unit")
    op.drop_table("class_group_member")
    op.drop_index(op.f("ix_run_model_id"), table_name="run")
    op.drop_table("run")
    op.drop_table("layer")
    op.drop_table("image_class")
    op.drop_table("class_group")
    op.drop_table("participant")
    op.drop_table("model")
    op.drop_table("dataset")
    op.drop_table("concept")
