"""The layer_detectors view: object detectors per criterion and layer.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from collections.abc import Sequence

from alembic import op

from catalogue.db.views import VIEWS_V2, create_statements, drop_statements

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for statement in create_statements(VIEWS_V2):
        op.execute(statement)


def downgrade() -> None:
    for statement in drop_statements(VIEWS_V2):
        op.execute(statement)
