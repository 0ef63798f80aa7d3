"""layer_detectors counted from the criteria registry

Views dropped and created: layer_detectors, with the SQL that catalogue.db.views
generated when this revision was written (literal SQL: never edit it; a changed
view is a new revision).

The counts are those of revision 0002 (`localist IS TRUE` counts what
`localist` counted); the text is now the criteria's own SQL.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The views as revision 0002 left them, name -> SELECT in creation order:
#: dropped by upgrade, restored by downgrade.
PREVIOUS_VIEWS: dict[str, str] = {
    "layer_detectors": """
SELECT
    run_id,
    model,
    layer,
    layer_position,
    count(*)::integer AS n_units,
    count(*) FILTER (WHERE precision > 0.75)::integer AS n_precision,
    count(*) FILTER (WHERE ccmas > 0.9)::integer AS n_ccmas,
    count(*) FILTER (WHERE localist)::integer AS n_localist,
    count(*) FILTER (WHERE best_iou > 0.04)::integer AS n_iou,
    count(*) FILTER (WHERE precision > 0.75
                     AND false_alarm_rate > 0.9)::integer AS n_misleading,
    percentile_cont(0.5) WITHIN GROUP (ORDER BY max_informedness) AS median_max_informedness,
    percentile_cont(0.5) WITHIN GROUP (ORDER BY false_alarm_rate) AS median_false_alarm_rate,
    percentile_cont(0.5) WITHIN GROUP (ORDER BY recall_at_mi) AS median_recall_at_mi
FROM unit_catalogue
WHERE run_id IS NOT NULL
GROUP BY run_id, model, layer, layer_position
""",
}

#: The views this revision creates, name -> SELECT in creation order.
VIEWS: dict[str, str] = {
    "layer_detectors": """
SELECT
    run_id,
    model,
    layer,
    layer_position,
    count(*)::integer AS n_units,
    count(*) FILTER (WHERE precision > 0.75)::integer AS n_precision,
    count(*) FILTER (WHERE ccmas > 0.9)::integer AS n_ccmas,
    count(*) FILTER (WHERE localist IS TRUE)::integer AS n_localist,
    count(*) FILTER (WHERE best_iou > 0.04)::integer AS n_iou,
    count(*) FILTER (WHERE precision > 0.75 AND false_alarm_rate > 0.9)::integer AS n_misleading,
    percentile_cont(0.5) WITHIN GROUP (ORDER BY max_informedness) AS median_max_informedness,
    percentile_cont(0.5) WITHIN GROUP (ORDER BY false_alarm_rate) AS median_false_alarm_rate,
    percentile_cont(0.5) WITHIN GROUP (ORDER BY recall_at_mi) AS median_recall_at_mi
FROM unit_catalogue
WHERE run_id IS NOT NULL
GROUP BY run_id, model, layer, layer_position
""",
}


def upgrade() -> None:
    for name in reversed(PREVIOUS_VIEWS):
        op.execute(f"DROP VIEW {name}")
    for name, select in VIEWS.items():
        op.execute(f"CREATE VIEW {name} AS {select}")


def downgrade() -> None:
    for name in reversed(VIEWS):
        op.execute(f"DROP VIEW {name}")
    for name, select in PREVIOUS_VIEWS.items():
        op.execute(f"CREATE VIEW {name} AS {select}")
