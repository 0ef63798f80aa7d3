"""run.provenance and run.imported_from

- `run.provenance` (jsonb, `{}` for runs made before): what made a run's numbers —
  unitcat's version and commit, Python, torch, torchvision, numpy, h5py and PostgreSQL
  versions, CPU model and counts, GPUs, torch threads and determinism settings, seeds,
  the dataset's fingerprint — recorded when the run is made (`catalogue.provenance`).
- `run.imported_from` (jsonb, NULL for a run made in this catalogue): the dump an
  imported run came from — the exporting catalogue, its host, the run's id there, when
  it was exported and imported (`catalogue.share`).

Revision ID: 0062
Revises: 0061
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0062"
down_revision: str | None = "0061"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "run",
        sa.Column(
            "provenance",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="{}",
            nullable=False,
        ),
    )
    op.add_column(
        "run",
        sa.Column("imported_from", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    )


def downgrade() -> None:
    op.drop_column("run", "imported_from")
    op.drop_column("run", "provenance")
