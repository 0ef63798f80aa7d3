"""Run owners, the `interrupted` status, class groups versioned per run.

- `run.owner_host`, `owner_pid`, `owner_started_at`: the process that runs (or last
  ran) the run, with its start time so that a recycled pid is not taken for it.
- `run.status` may be `interrupted` (stopped by Ctrl-C or SIGTERM).
- `class_group.version`: a group redefined with other members becomes a new row, so
  an earlier run's `unit_group_metrics` keep joining to the members it used.
  Existing groups are version 1. The downgrade keeps every version, renaming the
  older ones `name (vN)`, because `(dataset_id, name)` is unique again below.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("run", sa.Column("owner_host", sa.Text(), nullable=True))
    op.add_column("run", sa.Column("owner_pid", sa.Integer(), nullable=True))
    op.add_column("run", sa.Column("owner_started_at", sa.DateTime(timezone=True), nullable=True))
    op.drop_constraint(op.f("ck_run_status"), "run", type_="check")
    op.create_check_constraint(
        op.f("ck_run_status"), "run", "status IN ('running', 'done', 'failed', 'interrupted')"
    )
    op.add_column(
        "class_group", sa.Column("version", sa.Integer(), server_default="1", nullable=False)
    )
    op.add_column(
        "class_group",
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
    )
    op.drop_constraint(op.f("uq_class_group_dataset_id_name"), "class_group", type_="unique")
    op.create_unique_constraint(
        op.f("uq_class_group_dataset_id_name_version"),
        "class_group",
        ["dataset_id", "name", "version"],
    )


def downgrade() -> None:
    op.execute(
        """
        UPDATE class_group g SET name = g.name || ' (v' || g.version || ')'
        WHERE g.version < (SELECT max(h.version) FROM class_group h
                           WHERE h.dataset_id = g.dataset_id AND h.name = g.name)
        """
    )
    op.drop_constraint(
        op.f("uq_class_group_dataset_id_name_version"), "class_group", type_="unique"
    )
    op.create_unique_constraint(
        op.f("uq_class_group_dataset_id_name"), "class_group", ["dataset_id", "name"]
    )
    op.drop_column("class_group", "created_at")
    op.drop_column("class_group", "version")
    op.execute(
        "UPDATE run SET status = 'failed', error = coalesce(error, 'interrupted') "
        "WHERE status = 'interrupted'"
    )
    op.drop_constraint(op.f("ck_run_status"), "run", type_="check")
    op.create_check_constraint(
        op.f("ck_run_status"), "run", "status IN ('running', 'done', 'failed')"
    )
    op.drop_column("run", "owner_started_at")
    op.drop_column("run", "owner_pid")
    op.drop_column("run", "owner_host")
