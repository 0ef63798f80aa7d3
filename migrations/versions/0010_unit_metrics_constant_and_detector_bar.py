"""unit_metrics: constant (dead) units and Gale et al.'s detector bar

Adds three measures of docs/DESIGN.md to unit_metrics: `constant` (every scored
activation equal), `detector_bar` (the highest min(TP/n_c, TP/(TP+FP)) over
classes and thresholds) and `detector_bar_class`, with an index on
`detector_bar` for the Search preset.

Rows scored before this revision get what their stored measures prove:
`constant` is true where every activation was 0 (frac_zero = 1) and false where
some were 0 and some not; otherwise (no zeros, e.g. a constant 2.5) it stays
NULL, as does `detector_bar`: re-score the run for the exact values.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("unit_metrics", sa.Column("constant", sa.Boolean(), nullable=True))
    op.add_column("unit_metrics", sa.Column("detector_bar", sa.Double(), nullable=True))
    op.add_column("unit_metrics", sa.Column("detector_bar_class", sa.Integer(), nullable=True))
    op.create_index(
        op.f("ix_unit_metrics_detector_bar"), "unit_metrics", ["detector_bar"], unique=False
    )
    op.execute(
        "UPDATE unit_metrics SET constant = CASE WHEN frac_zero = 1 THEN true "
        "WHEN frac_zero > 0 AND frac_zero < 1 THEN false END"
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_unit_metrics_detector_bar"), table_name="unit_metrics")
    op.drop_column("unit_metrics", "detector_bar_class")
    op.drop_column("unit_metrics", "detector_bar")
    op.drop_column("unit_metrics", "constant")
