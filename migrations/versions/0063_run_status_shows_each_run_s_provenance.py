"""run_status shows each run's provenance and where an imported run came from

Views dropped and created: run_status, with the SQL that catalogue.db.views
generated when this revision was written (literal SQL: never edit it; a changed
view is a new revision).

Revision ID: 0063
Revises: 0062
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0063"
down_revision: str | None = "0062"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The views as revision 0062 left them, name -> SELECT in creation order:
#: dropped by upgrade, restored by downgrade.
PREVIOUS_VIEWS: dict[str, str] = {
    "run_status": """
WITH held AS (
    SELECT DISTINCT l.classid::bigint AS hi, l.objid::bigint AS lo
    FROM pg_locks l
    WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
)
SELECT
    r.id AS run_id,
    r.kind,
    r.label,
    CASE
        WHEN h.hi IS NOT NULL THEN 'running'
        WHEN r.status = 'running' THEN 'interrupted'
        ELSE r.status
    END AS status,
    r.status AS recorded_status,
    h.hi IS NOT NULL AS owner_active,
    r.owner_host,
    r.owner_pid,
    r.owner_started_at,
    r.model_id,
    r.dataset_id,
    r.parent_id,
    r.params,
    r.started_at,
    r.finished_at,
    r.duration_s,
    r.code_version,
    r.h5_path,
    r.error,
    r.stats
FROM run r
LEFT JOIN held h
    ON h.hi = CASE WHEN r.key ~ '^[0-9a-f]{16}'
                   THEN ('x' || lpad(substr(r.key, 1, 8), 16, '0'))::bit(64)::bigint END
   AND h.lo = CASE WHEN r.key ~ '^[0-9a-f]{16}'
                   THEN ('x' || lpad(substr(r.key, 9, 8), 16, '0'))::bit(64)::bigint END
""",
}

#: The views this revision creates, name -> SELECT in creation order.
VIEWS: dict[str, str] = {
    "run_status": """
WITH held AS (
    SELECT DISTINCT l.classid::bigint AS hi, l.objid::bigint AS lo
    FROM pg_locks l
    WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
)
SELECT
    r.id AS run_id,
    r.kind,
    r.label,
    CASE
        WHEN h.hi IS NOT NULL THEN 'running'
        WHEN r.status = 'running' THEN 'interrupted'
        ELSE r.status
    END AS status,
    r.status AS recorded_status,
    h.hi IS NOT NULL AS owner_active,
    r.owner_host,
    r.owner_pid,
    r.owner_started_at,
    r.model_id,
    r.dataset_id,
    r.parent_id,
    r.params,
    r.started_at,
    r.finished_at,
    r.duration_s,
    r.code_version,
    r.h5_path,
    r.error,
    r.stats,
    r.provenance,
    r.imported_from
FROM run r
LEFT JOIN held h
    ON h.hi = CASE WHEN r.key ~ '^[0-9a-f]{16}'
                   THEN ('x' || lpad(substr(r.key, 1, 8), 16, '0'))::bit(64)::bigint END
   AND h.lo = CASE WHEN r.key ~ '^[0-9a-f]{16}'
                   THEN ('x' || lpad(substr(r.key, 9, 8), 16, '0'))::bit(64)::bigint END
""",
}

#: Recomputes what is cached from these views, after they are created (both ways).
REFRESH: tuple[str, ...] = ()


def upgrade() -> None:
    for name in reversed(PREVIOUS_VIEWS):
        op.execute(f"DROP VIEW {name}")
    for name, select in VIEWS.items():
        op.execute(f"CREATE VIEW {name} AS {select}")
    for statement in REFRESH:
        op.execute(statement)


def downgrade() -> None:
    for name in reversed(VIEWS):
        op.execute(f"DROP VIEW {name}")
    for name, select in PREVIOUS_VIEWS.items():
        op.execute(f"CREATE VIEW {name} AS {select}")
    for statement in REFRESH:
        op.execute(statement)
