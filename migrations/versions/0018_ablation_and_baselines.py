"""Ablation, class-ablation curves, chance metrics, run.baseline_of and the chance run kind

Tables: unit_ablation (per unit and ablation run: overall accuracy change and the
change for the unit's precision, max-informedness, CCMAS and detector-bar classes),
unit_ablation_class (the most-hurt classes), class_ablation_curve (Bau et al. 2020),
chance_metrics (every measure against permuted labels, per repeat). The run table
gains baseline_of (the run a random-weights or chance run is a baseline of) and
the run kind 'chance'. Downgrading deletes chance runs.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "class_ablation_curve",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("layer_id", sa.Integer(), nullable=False),
        sa.Column("class_index", sa.Integer(), nullable=False),
        sa.Column("ranking", sa.Text(), nullable=False),
        sa.Column("k", sa.Integer(), nullable=False),
        sa.Column("units", sa.ARRAY(sa.Integer()), nullable=False),
        sa.Column("class_accuracy", sa.Double(), nullable=True),
        sa.Column("other_accuracy", sa.Double(), nullable=True),
        sa.ForeignKeyConstraint(
            ["layer_id"],
            ["layer.id"],
            name=op.f("fk_class_ablation_curve_layer_id_layer"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["run.id"],
            name=op.f("fk_class_ablation_curve_run_id_run"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "run_id",
            "layer_id",
            "class_index",
            "ranking",
            "k",
            name=op.f("pk_class_ablation_curve"),
        ),
    )
    op.create_table(
        "chance_metrics",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("repeat", sa.Integer(), nullable=False),
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
        sa.Column("constant", sa.Boolean(), nullable=True),
        sa.Column("detector_bar", sa.Double(), nullable=True),
        sa.Column("detector_bar_class", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"], ["run.id"], name=op.f("fk_chance_metrics_run_id_run"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"],
            ["unit.id"],
            name=op.f("fk_chance_metrics_unit_id_unit"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", "unit_id", "repeat", name=op.f("pk_chance_metrics")),
    )
    op.create_index(op.f("ix_chance_metrics_unit_id"), "chance_metrics", ["unit_id"], unique=False)
    op.create_table(
        "unit_ablation",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("score_run_id", sa.Integer(), nullable=True),
        sa.Column("replacement", sa.Double(), nullable=False),
        sa.Column("n_images", sa.Integer(), nullable=False),
        sa.Column("accuracy", sa.Double(), nullable=True),
        sa.Column("accuracy_change", sa.Double(), nullable=True),
        sa.Column("precision_class", sa.Integer(), nullable=True),
        sa.Column("precision_class_change", sa.Double(), nullable=True),
        sa.Column("mi_class", sa.Integer(), nullable=True),
        sa.Column("mi_class_change", sa.Double(), nullable=True),
        sa.Column("ccmas_class", sa.Integer(), nullable=True),
        sa.Column("ccmas_class_change", sa.Double(), nullable=True),
        sa.Column("detector_bar_class", sa.Integer(), nullable=True),
        sa.Column("detector_bar_class_change", sa.Double(), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"], ["run.id"], name=op.f("fk_unit_ablation_run_id_run"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["score_run_id"],
            ["run.id"],
            name=op.f("fk_unit_ablation_score_run_id_run"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["unit.id"], name=op.f("fk_unit_ablation_unit_id_unit"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", "unit_id", name=op.f("pk_unit_ablation")),
    )
    op.create_index(op.f("ix_unit_ablation_unit_id"), "unit_ablation", ["unit_id"], unique=False)
    op.create_table(
        "unit_ablation_class",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("class_index", sa.Integer(), nullable=False),
        sa.Column("accuracy_change", sa.Double(), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["run.id"],
            name=op.f("fk_unit_ablation_class_run_id_run"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"],
            ["unit.id"],
            name=op.f("fk_unit_ablation_class_unit_id_unit"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", "unit_id", "rank", name=op.f("pk_unit_ablation_class")),
    )
    op.create_index(
        op.f("ix_unit_ablation_class_unit_id"), "unit_ablation_class", ["unit_id"], unique=False
    )
    op.add_column("run", sa.Column("baseline_of", sa.Integer(), nullable=True))
    op.create_index(op.f("ix_run_baseline_of"), "run", ["baseline_of"], unique=False)
    op.create_foreign_key(
        op.f("fk_run_baseline_of_run"), "run", "run", ["baseline_of"], ["id"], ondelete="SET NULL"
    )
    op.drop_constraint(op.f("ck_run_kind"), "run", type_="check")
    op.create_check_constraint(
        op.f("ck_run_kind"),
        "run",
        "kind IN ('extract', 'score', 'dissect', 'am', 'ablate', 'chance')",
    )


def downgrade() -> None:
    op.execute("DELETE FROM run WHERE kind = 'chance'")
    op.drop_constraint(op.f("ck_run_kind"), "run", type_="check")
    op.create_check_constraint(
        op.f("ck_run_kind"), "run", "kind IN ('extract', 'score', 'dissect', 'am', 'ablate')"
    )
    op.drop_constraint(op.f("fk_run_baseline_of_run"), "run", type_="foreignkey")
    op.drop_index(op.f("ix_run_baseline_of"), table_name="run")
    op.drop_column("run", "baseline_of")
    op.drop_index(op.f("ix_unit_ablation_class_unit_id"), table_name="unit_ablation_class")
    op.drop_table("unit_ablation_class")
    op.drop_index(op.f("ix_unit_ablation_unit_id"), table_name="unit_ablation")
    op.drop_table("unit_ablation")
    op.drop_index(op.f("ix_chance_metrics_unit_id"), table_name="chance_metrics")
    op.drop_table("chance_metrics")
    op.drop_table("class_ablation_curve")
