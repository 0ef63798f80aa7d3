"""Catalogue tables and views.

The tables of catalogue.db.schema at the first release and the views of
catalogue.db.views.VIEWS_V1.

Revision ID: 0001
Revises:
Create Date: 2026-11-25 01:34:15.743856
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from catalogue.db.views import VIEWS_V1, create_statements, drop_statements

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


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
    for statement in create_statements(VIEWS_V1):
        op.execute(statement)


def downgrade() -> None:
    for statement in drop_statements(VIEWS_V1):
        op.execute(statement)
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
