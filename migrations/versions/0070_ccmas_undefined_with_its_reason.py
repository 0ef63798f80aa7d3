"""CCMAS never outside [-1, 1]: ccmas_undefined says why it is NULL

CCMAS assumes 0 means "silent" (the floor of a ReLU); in a layer whose activations
can be negative (logits) it is no measure of the units and can leave [-1, 1]. The
columns unit_metrics.ccmas_undefined and chance_metrics.ccmas_undefined (smallint)
hold why CCMAS is NULL for a unit: 1 the layer's activations can be negative, 2 one
class only, 3 no positive mean (every activation 0). Check constraints keep CCMAS in
[-1, 1] (unit_group_metrics too) and a reason only beside a NULL CCMAS.

Rows scored before: where the stored values of a scoring run's layer prove a negative
activation (a CCMAS outside [0, 1], which non-negative activations cannot give; a
negative mean, maximum, threshold, class mean, top or least activating image's
activation, or group mean), every unit's CCMAS of that layer (and of the chance runs
of the same activations, and their group CCMAS) becomes NULL with reason 1. A NULL
(or NaN) CCMAS elsewhere gets its reason from what the scorer left NULL for: one class
(no max informedness), every activation 0 (frac_zero = 1), else a non-positive
denominator with a non-zero activation, which only a negative activation gives
(reason 1). A NaN CCMAS (which SQL orders above every number, so it passed
CCMAS > .9) becomes NULL; its class NULL.
A downgrade drops the columns and constraints; the NULLed values stay NULL.

Revision ID: 0070
Revises: 0063
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0070"
down_revision: str | None = "0063"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: (run, layer) whose stored values prove a negative scored activation, and the chance
#: runs of the same activations (a chance run permutes the labels of its scoring run's).
SIGNED_LAYERS = """
WITH negative AS (
    SELECT um.run_id, u.layer_id
    FROM unit_metrics um JOIN unit u ON u.id = um.unit_id
    WHERE (um.ccmas <> 'NaN' AND (um.ccmas < 0 OR um.ccmas > 1))
       OR um.mean_activation < 0 OR um.max_activation < 0
       OR um.mi_threshold < 0 OR um.top60_threshold < 0
    UNION
    SELECT cm.run_id, u.layer_id
    FROM chance_metrics cm JOIN unit u ON u.id = cm.unit_id
    WHERE (cm.ccmas <> 'NaN' AND (cm.ccmas < 0 OR cm.ccmas > 1))
       OR cm.mean_activation < 0 OR cm.max_activation < 0
       OR cm.mi_threshold < 0 OR cm.top60_threshold < 0
    UNION
    SELECT s.run_id, u.layer_id
    FROM unit_class_stats s JOIN unit u ON u.id = s.unit_id
    WHERE s.mean_activation < 0 OR s.informedness_threshold < 0
    UNION
    SELECT t.run_id, u.layer_id
    FROM unit_top_image t JOIN unit u ON u.id = t.unit_id
    WHERE t.activation < 0
    UNION
    SELECT b.run_id, u.layer_id
    FROM unit_bottom_image b JOIN unit u ON u.id = b.unit_id
    WHERE b.activation < 0
    UNION
    SELECT g.run_id, u.layer_id
    FROM unit_group_metrics g JOIN unit u ON u.id = g.unit_id
    WHERE g.mu_in < 0 OR g.mu_out < 0 OR g.mi_threshold < 0
       OR (g.ccmas <> 'NaN' AND (g.ccmas < -1 OR g.ccmas > 1))
),
signed AS (
    SELECT run_id, layer_id FROM negative
    UNION
    SELECT r.id, n.layer_id FROM run r JOIN negative n ON n.run_id = r.baseline_of
    WHERE r.kind = 'chance'
    UNION
    SELECT r.baseline_of, n.layer_id FROM run r JOIN negative n ON n.run_id = r.id
    WHERE r.kind = 'chance' AND r.baseline_of IS NOT NULL
)
"""

REASON_OF_NULL = (
    "CASE WHEN max_informedness IS NULL OR max_informedness = 'NaN' THEN 2 "
    "WHEN frac_zero = 1 THEN 3 ELSE 1 END"
)


def upgrade() -> None:
    for table in ("unit_metrics", "chance_metrics"):
        op.add_column(table, sa.Column("ccmas_undefined", sa.SmallInteger(), nullable=True))
    for table in ("unit_metrics", "chance_metrics"):
        op.execute(
            f"""{SIGNED_LAYERS}
UPDATE {table} t SET ccmas = NULL, ccmas_class = NULL, ccmas_undefined = 1
FROM unit u, signed s
WHERE u.id = t.unit_id AND s.run_id = t.run_id AND s.layer_id = u.layer_id"""
        )
    op.execute(
        f"""{SIGNED_LAYERS}
UPDATE unit_group_metrics g SET ccmas = NULL
FROM unit u, signed s
WHERE u.id = g.unit_id AND s.run_id = g.run_id AND s.layer_id = u.layer_id"""
    )
    for table in ("unit_metrics", "chance_metrics"):
        op.execute(
            f"UPDATE {table} SET ccmas = NULL, ccmas_class = NULL, "
            f"ccmas_undefined = {REASON_OF_NULL} "
            "WHERE ccmas_undefined IS NULL AND (ccmas IS NULL OR ccmas = 'NaN')"
        )
    op.execute("UPDATE unit_group_metrics SET ccmas = NULL WHERE ccmas = 'NaN'")
    for table in ("unit_metrics", "chance_metrics", "unit_group_metrics"):
        op.create_check_constraint(op.f(f"ck_{table}_ccmas_range"), table, "ccmas BETWEEN -1 AND 1")
    for table in ("unit_metrics", "chance_metrics"):
        op.create_check_constraint(
            op.f(f"ck_{table}_ccmas_undefined"),
            table,
            "ccmas_undefined IS NULL OR (ccmas IS NULL AND ccmas_undefined IN (1, 2, 3))",
        )


def downgrade() -> None:
    for table in ("unit_metrics", "chance_metrics"):
        op.drop_constraint(op.f(f"ck_{table}_ccmas_undefined"), table, type_="check")
    for table in ("unit_metrics", "chance_metrics", "unit_group_metrics"):
        op.drop_constraint(op.f(f"ck_{table}_ccmas_range"), table, type_="check")
    for table in ("unit_metrics", "chance_metrics"):
        op.drop_column(table, "ccmas_undefined")
