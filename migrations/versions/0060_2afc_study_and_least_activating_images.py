"""The 2-AFC study's tables and each unit's least activating images

Tables: unit_bottom_image (per unit and scoring run, its least activating images, rank 1
= least active, beside unit_top_image), twoafc_study (a seeded set of trials built from
one scoring run), twoafc_trial (a unit's 9 + 9 reference images and two queries at
their place in a task; catch trials), twoafc_assignment (the task a participant was
dealt), twoafc_response (a participant's answer, confidence and response time).

Revision ID: 0060
Revises: 0019
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0060"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "twoafc_study",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("score_run_id", sa.Integer(), nullable=True),
        sa.Column(
            "params", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False
        ),
        sa.Column("n_tasks", sa.Integer(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["score_run_id"],
            ["run.id"],
            name=op.f("fk_twoafc_study_score_run_id_run"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_twoafc_study")),
        sa.UniqueConstraint("name", name=op.f("uq_twoafc_study_name")),
    )
    op.create_index(
        op.f("ix_twoafc_study_score_run_id"), "twoafc_study", ["score_run_id"], unique=False
    )
    op.create_table(
        "twoafc_assignment",
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("participant_id", sa.Integer(), nullable=False),
        sa.Column("task", sa.Integer(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["participant_id"],
            ["participant.id"],
            name=op.f("fk_twoafc_assignment_participant_id_participant"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["study_id"],
            ["twoafc_study.id"],
            name=op.f("fk_twoafc_assignment_study_id_twoafc_study"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("study_id", "participant_id", name=op.f("pk_twoafc_assignment")),
    )
    op.create_table(
        "twoafc_trial",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("task", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("catch", sa.Boolean(), nullable=False),
        sa.Column("batch", sa.Integer(), nullable=False),
        sa.Column("max_query_first", sa.Boolean(), nullable=False),
        sa.Column("max_query", sa.Integer(), nullable=False),
        sa.Column("max_query_key", sa.Text(), nullable=True),
        sa.Column("max_query_activation", sa.Double(), nullable=False),
        sa.Column("min_query", sa.Integer(), nullable=False),
        sa.Column("min_query_key", sa.Text(), nullable=True),
        sa.Column("min_query_activation", sa.Double(), nullable=False),
        sa.Column("max_references", sa.ARRAY(sa.Integer()), nullable=False),
        sa.Column("max_reference_keys", sa.ARRAY(sa.Text()), nullable=False),
        sa.Column("max_reference_activations", sa.ARRAY(sa.Double()), nullable=False),
        sa.Column("min_references", sa.ARRAY(sa.Integer()), nullable=False),
        sa.Column("min_reference_keys", sa.ARRAY(sa.Text()), nullable=False),
        sa.Column("min_reference_activations", sa.ARRAY(sa.Double()), nullable=False),
        sa.CheckConstraint(
            "cardinality(max_references) = cardinality(min_references) AND cardinality(max_references) = cardinality(max_reference_keys) AND cardinality(min_references) = cardinality(min_reference_keys)",
            name=op.f("ck_twoafc_trial_references"),
        ),
        sa.CheckConstraint(
            "max_query_activation > min_query_activation",
            name=op.f("ck_twoafc_trial_queries_ordered"),
        ),
        sa.CheckConstraint("task >= 1 AND position >= 1", name=op.f("ck_twoafc_trial_place")),
        sa.ForeignKeyConstraint(
            ["study_id"],
            ["twoafc_study.id"],
            name=op.f("fk_twoafc_trial_study_id_twoafc_study"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["unit.id"], name=op.f("fk_twoafc_trial_unit_id_unit"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_twoafc_trial")),
        sa.UniqueConstraint(
            "study_id", "task", "position", name=op.f("uq_twoafc_trial_study_id_task_position")
        ),
    )
    op.create_index(op.f("ix_twoafc_trial_unit_id"), "twoafc_trial", ["unit_id"], unique=False)
    op.create_table(
        "unit_bottom_image",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("image_index", sa.Integer(), nullable=False),
        sa.Column("image_key", sa.Text(), nullable=True),
        sa.Column("class_index", sa.Integer(), nullable=False),
        sa.Column("activation", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["run.id"], name=op.f("fk_unit_bottom_image_run_id_run"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"],
            ["unit.id"],
            name=op.f("fk_unit_bottom_image_unit_id_unit"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", "unit_id", "rank", name=op.f("pk_unit_bottom_image")),
    )
    op.create_index(
        op.f("ix_unit_bottom_image_unit_id"), "unit_bottom_image", ["unit_id"], unique=False
    )
    op.create_table(
        "twoafc_response",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("trial_id", sa.Integer(), nullable=False),
        sa.Column("participant_id", sa.Integer(), nullable=False),
        sa.Column("chose_max", sa.Boolean(), nullable=False),
        sa.Column("confidence", sa.SmallInteger(), nullable=True),
        sa.Column("rt_ms", sa.Double(), nullable=True),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("source IN ('ui', 'import')", name=op.f("ck_twoafc_response_source")),
        sa.CheckConstraint(
            "confidence IS NULL OR confidence BETWEEN 1 AND 3",
            name=op.f("ck_twoafc_response_confidence"),
        ),
        sa.CheckConstraint("rt_ms IS NULL OR rt_ms >= 0", name=op.f("ck_twoafc_response_rt_ms")),
        sa.ForeignKeyConstraint(
            ["participant_id"],
            ["participant.id"],
            name=op.f("fk_twoafc_response_participant_id_participant"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["trial_id"],
            ["twoafc_trial.id"],
            name=op.f("fk_twoafc_response_trial_id_twoafc_trial"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_twoafc_response")),
        sa.UniqueConstraint(
            "trial_id", "participant_id", name=op.f("uq_twoafc_response_trial_id_participant_id")
        ),
    )
    op.create_index(
        op.f("ix_twoafc_response_participant_id"),
        "twoafc_response",
        ["participant_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_twoafc_response_participant_id"), table_name="twoafc_response")
    op.drop_table("twoafc_response")
    op.drop_index(op.f("ix_unit_bottom_image_unit_id"), table_name="unit_bottom_image")
    op.drop_table("unit_bottom_image")
    op.drop_index(op.f("ix_twoafc_trial_unit_id"), table_name="twoafc_trial")
    op.drop_table("twoafc_trial")
    op.drop_table("twoafc_assignment")
    op.drop_index(op.f("ix_twoafc_study_score_run_id"), table_name="twoafc_study")
    op.drop_table("twoafc_study")
