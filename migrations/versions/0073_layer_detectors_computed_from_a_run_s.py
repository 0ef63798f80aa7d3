"""layer_detectors computed from a run's own rows

Views dropped and created: layer_baselines, layer_detectors, with the SQL that catalogue.db.views
generated when this revision was written (literal SQL: never edit it; a changed
view is a new revision).

Revision ID: 0073
Revises: 0072
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0073"
down_revision: str | None = "0072"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The views as revision 0072 left them, name -> SELECT in creation order:
#: dropped by upgrade, restored by downgrade.
PREVIOUS_VIEWS: dict[str, str] = {
    "layer_detectors": """
SELECT
    (c.summary ->> 'run_id')::integer AS run_id,
    c.summary ->> 'model' AS model,
    c.summary ->> 'layer' AS layer,
    (c.summary ->> 'layer_position')::integer AS layer_position,
    (c.summary ->> 'n_units')::integer AS n_units,
    (c.summary ->> 'n_constant')::integer AS n_constant,
    (c.summary ->> 'n_precision')::integer AS n_precision,
    (c.summary ->> 'n_ccmas')::integer AS n_ccmas,
    (c.summary ->> 'n_localist')::integer AS n_localist,
    (c.summary ->> 'n_iou')::integer AS n_iou,
    (c.summary ->> 'n_misleading')::integer AS n_misleading,
    (c.summary ->> 'n_detector_bar')::integer AS n_detector_bar,
    (c.summary ->> 'median_max_informedness')::double precision AS median_max_informedness,
    (c.summary ->> 'median_false_alarm_rate')::double precision AS median_false_alarm_rate,
    (c.summary ->> 'median_recall_at_mi')::double precision AS median_recall_at_mi
FROM layer_detectors_cache c
UNION ALL
SELECT live.*
FROM run r
CROSS JOIN LATERAL (
    SELECT
        run_id,
        model,
        layer,
        layer_position,
        count(*)::integer AS n_units,
        count(*) FILTER (WHERE constant IS TRUE)::integer AS n_constant,
        count(*) FILTER (WHERE constant IS NOT TRUE AND precision > 0.75)::integer AS n_precision,
        count(*) FILTER (WHERE constant IS NOT TRUE AND ccmas > 0.9)::integer AS n_ccmas,
        count(*) FILTER (WHERE constant IS NOT TRUE AND localist IS TRUE)::integer AS n_localist,
        count(*) FILTER (WHERE constant IS NOT TRUE AND best_iou > 0.04)::integer AS n_iou,
        count(*) FILTER (WHERE constant IS NOT TRUE AND precision > 0.75 AND false_alarm_rate > 0.9)::integer AS n_misleading,
        count(*) FILTER (WHERE constant IS NOT TRUE AND detector_bar > 0.5)::integer AS n_detector_bar,
        percentile_cont(0.5) WITHIN GROUP (ORDER BY max_informedness) FILTER (WHERE constant IS NOT TRUE) AS median_max_informedness,
        percentile_cont(0.5) WITHIN GROUP (ORDER BY false_alarm_rate) FILTER (WHERE constant IS NOT TRUE) AS median_false_alarm_rate,
        percentile_cont(0.5) WITHIN GROUP (ORDER BY recall_at_mi) FILTER (WHERE constant IS NOT TRUE) AS median_recall_at_mi
    FROM unit_catalogue
    WHERE run_id = r.id
    GROUP BY run_id, model, layer, layer_position
) live
WHERE EXISTS (SELECT 1 FROM unit_metrics um WHERE um.run_id = r.id)
    AND NOT EXISTS (SELECT 1 FROM layer_detectors_cache c WHERE c.run_id = r.id)
""",
    "layer_baselines": """
WITH trained AS (
    SELECT ld.run_id AS score_run_id, ld.model, ld.layer, ld.layer_position, ld.n_units,
           v.criterion, v.n
    FROM layer_detectors ld
    JOIN run r ON r.id = ld.run_id
    CROSS JOIN LATERAL (VALUES
        ('precision', ld.n_precision),
        ('ccmas', ld.n_ccmas),
        ('localist', ld.n_localist),
        ('iou', ld.n_iou),
        ('misleading', ld.n_misleading),
        ('detector_bar', ld.n_detector_bar)
    ) AS v(criterion, n)
    WHERE r.baseline_of IS NULL
),
random_run AS (
    SELECT DISTINCT ON (r.baseline_of)
        r.baseline_of AS score_run_id, r.id AS run_id, r.model_id, r.params
    FROM run r
    WHERE r.kind = 'score' AND r.status = 'done' AND r.baseline_of IS NOT NULL
    ORDER BY r.baseline_of, r.finished_at DESC NULLS LAST, r.id DESC
),
random_counts AS (
    SELECT rr.score_run_id, rr.run_id, ld.model, ld.layer, v.criterion, v.n
    FROM random_run rr
    JOIN layer_detectors ld ON ld.run_id = rr.run_id
    CROSS JOIN LATERAL (VALUES
        ('precision', ld.n_precision),
        ('ccmas', ld.n_ccmas),
        ('localist', ld.n_localist),
        ('iou', ld.n_iou),
        ('misleading', ld.n_misleading),
        ('detector_bar', ld.n_detector_bar)
    ) AS v(criterion, n)
),
chance_run AS (
    SELECT DISTINCT ON (r.baseline_of)
        r.baseline_of AS score_run_id, r.id AS run_id, r.model_id, r.params
    FROM run r
    WHERE r.kind = 'chance' AND r.status = 'done' AND r.baseline_of IS NOT NULL
    ORDER BY r.baseline_of, r.finished_at DESC NULLS LAST, r.id DESC
),
chance_per_repeat AS (
    SELECT cr.score_run_id, cr.run_id, l.name AS layer, cm.repeat,
        count(*) FILTER (WHERE cm.precision > 0.75 AND cm.constant IS NOT TRUE)::double precision AS precision,
        count(*) FILTER (WHERE cm.ccmas > 0.9 AND cm.constant IS NOT TRUE)::double precision AS ccmas,
        count(*) FILTER (WHERE cm.localist IS TRUE AND cm.constant IS NOT TRUE)::double precision AS localist,
        NULL::double precision AS iou,
        count(*) FILTER (WHERE cm.precision > 0.75 AND cm.false_alarm_rate > 0.9 AND cm.constant IS NOT TRUE)::double precision AS misleading,
        count(*) FILTER (WHERE cm.detector_bar > 0.5 AND cm.constant IS NOT TRUE)::double precision AS detector_bar
    FROM chance_run cr
    JOIN chance_metrics cm ON cm.run_id = cr.run_id
    JOIN unit u ON u.id = cm.unit_id
    JOIN layer l ON l.id = u.layer_id
    GROUP BY cr.score_run_id, cr.run_id, l.name, cm.repeat
),
chance_counts AS (
    SELECT p.score_run_id, p.run_id, p.layer, v.criterion,
           count(*)::integer AS repeats, avg(v.n) AS mean, stddev_samp(v.n) AS sd
    FROM chance_per_repeat p
    CROSS JOIN LATERAL (VALUES
        ('precision', p.precision),
        ('ccmas', p.ccmas),
        ('localist', p.localist),
        ('iou', p.iou),
        ('misleading', p.misleading),
        ('detector_bar', p.detector_bar)
    ) AS v(criterion, n)
    GROUP BY p.score_run_id, p.run_id, p.layer, v.criterion
)
SELECT
    t.score_run_id,
    t.model,
    t.layer,
    t.layer_position,
    t.criterion,
    t.n_units,
    t.n AS trained,
    rc.run_id AS random_run_id,
    rc.model AS random_model,
    rc.n AS random,
    cc.run_id AS chance_run_id,
    cc.repeats AS chance_repeats,
    cc.mean AS chance_mean,
    cc.sd AS chance_sd
FROM trained t
LEFT JOIN random_counts rc
    ON rc.score_run_id = t.score_run_id AND rc.layer = t.layer AND rc.criterion = t.criterion
LEFT JOIN chance_counts cc
    ON cc.score_run_id = t.score_run_id AND cc.layer = t.layer AND cc.criterion = t.criterion
""",
}

#: The views this revision creates, name -> SELECT in creation order.
VIEWS: dict[str, str] = {
    "layer_detectors": """
SELECT
    (c.summary ->> 'run_id')::integer AS run_id,
    c.summary ->> 'model' AS model,
    c.summary ->> 'layer' AS layer,
    (c.summary ->> 'layer_position')::integer AS layer_position,
    (c.summary ->> 'n_units')::integer AS n_units,
    (c.summary ->> 'n_constant')::integer AS n_constant,
    (c.summary ->> 'n_precision')::integer AS n_precision,
    (c.summary ->> 'n_ccmas')::integer AS n_ccmas,
    (c.summary ->> 'n_localist')::integer AS n_localist,
    (c.summary ->> 'n_iou')::integer AS n_iou,
    (c.summary ->> 'n_misleading')::integer AS n_misleading,
    (c.summary ->> 'n_detector_bar')::integer AS n_detector_bar,
    (c.summary ->> 'median_max_informedness')::double precision AS median_max_informedness,
    (c.summary ->> 'median_false_alarm_rate')::double precision AS median_false_alarm_rate,
    (c.summary ->> 'median_recall_at_mi')::double precision AS median_recall_at_mi
FROM layer_detectors_cache c
UNION ALL
SELECT live.*
FROM run r
CROSS JOIN LATERAL (
    SELECT
        s.run_id,
        m.name AS model,
        l.name AS layer,
        l.position AS layer_position,
        s.n_units,
        s.n_constant,
        s.n_precision, s.n_ccmas, s.n_localist, s.n_iou, s.n_misleading, s.n_detector_bar,
        s.median_max_informedness, s.median_false_alarm_rate, s.median_recall_at_mi
    FROM (
        SELECT
            run_id,
            layer_id,
            count(*)::integer AS n_units,
            count(*) FILTER (WHERE constant IS TRUE)::integer AS n_constant,
            count(*) FILTER (WHERE constant IS NOT TRUE AND precision > 0.75)::integer AS n_precision,
            count(*) FILTER (WHERE constant IS NOT TRUE AND ccmas > 0.9)::integer AS n_ccmas,
            count(*) FILTER (WHERE constant IS NOT TRUE AND localist IS TRUE)::integer AS n_localist,
            count(*) FILTER (WHERE constant IS NOT TRUE AND best_iou > 0.04)::integer AS n_iou,
            count(*) FILTER (WHERE constant IS NOT TRUE AND precision > 0.75 AND false_alarm_rate > 0.9)::integer AS n_misleading,
            count(*) FILTER (WHERE constant IS NOT TRUE AND detector_bar > 0.5)::integer AS n_detector_bar,
            percentile_cont(0.5) WITHIN GROUP (ORDER BY max_informedness) FILTER (WHERE constant IS NOT TRUE) AS median_max_informedness,
            percentile_cont(0.5) WITHIN GROUP (ORDER BY false_alarm_rate) FILTER (WHERE constant IS NOT TRUE) AS median_false_alarm_rate,
            percentile_cont(0.5) WITHIN GROUP (ORDER BY recall_at_mi) FILTER (WHERE constant IS NOT TRUE) AS median_recall_at_mi
        FROM (
            SELECT
                um.*,
                (SELECT u.layer_id FROM unit u WHERE u.id = um.unit_id) AS layer_id,
                (SELECT best.iou FROM unit_best_concept best WHERE best.unit_id = um.unit_id)
                    AS best_iou
            FROM unit_metrics um
            WHERE um.run_id = r.id
        ) units
        GROUP BY run_id, layer_id
    ) s
    JOIN layer l ON l.id = s.layer_id
    JOIN model m ON m.id = l.model_id
) live
WHERE EXISTS (SELECT 1 FROM unit_metrics um WHERE um.run_id = r.id)
    AND NOT EXISTS (SELECT 1 FROM layer_detectors_cache c WHERE c.run_id = r.id)
""",
    "layer_baselines": """
WITH trained AS (
    SELECT ld.run_id AS score_run_id, ld.model, ld.layer, ld.layer_position, ld.n_units,
           v.criterion, v.n
    FROM layer_detectors ld
    JOIN run r ON r.id = ld.run_id
    CROSS JOIN LATERAL (VALUES
        ('precision', ld.n_precision),
        ('ccmas', ld.n_ccmas),
        ('localist', ld.n_localist),
        ('iou', ld.n_iou),
        ('misleading', ld.n_misleading),
        ('detector_bar', ld.n_detector_bar)
    ) AS v(criterion, n)
    WHERE r.baseline_of IS NULL
),
random_run AS (
    SELECT DISTINCT ON (r.baseline_of)
        r.baseline_of AS score_run_id, r.id AS run_id, r.model_id, r.params
    FROM run r
    WHERE r.kind = 'score' AND r.status = 'done' AND r.baseline_of IS NOT NULL
    ORDER BY r.baseline_of, r.finished_at DESC NULLS LAST, r.id DESC
),
random_counts AS (
    SELECT rr.score_run_id, rr.run_id, ld.model, ld.layer, v.criterion, v.n
    FROM random_run rr
    JOIN layer_detectors ld ON ld.run_id = rr.run_id
    CROSS JOIN LATERAL (VALUES
        ('precision', ld.n_precision),
        ('ccmas', ld.n_ccmas),
        ('localist', ld.n_localist),
        ('iou', ld.n_iou),
        ('misleading', ld.n_misleading),
        ('detector_bar', ld.n_detector_bar)
    ) AS v(criterion, n)
),
chance_run AS (
    SELECT DISTINCT ON (r.baseline_of)
        r.baseline_of AS score_run_id, r.id AS run_id, r.model_id, r.params
    FROM run r
    WHERE r.kind = 'chance' AND r.status = 'done' AND r.baseline_of IS NOT NULL
    ORDER BY r.baseline_of, r.finished_at DESC NULLS LAST, r.id DESC
),
chance_per_repeat AS (
    SELECT cr.score_run_id, cr.run_id, l.name AS layer, cm.repeat,
        count(*) FILTER (WHERE cm.precision > 0.75 AND cm.constant IS NOT TRUE)::double precision AS precision,
        count(*) FILTER (WHERE cm.ccmas > 0.9 AND cm.constant IS NOT TRUE)::double precision AS ccmas,
        count(*) FILTER (WHERE cm.localist IS TRUE AND cm.constant IS NOT TRUE)::double precision AS localist,
        NULL::double precision AS iou,
        count(*) FILTER (WHERE cm.precision > 0.75 AND cm.false_alarm_rate > 0.9 AND cm.constant IS NOT TRUE)::double precision AS misleading,
        count(*) FILTER (WHERE cm.detector_bar > 0.5 AND cm.constant IS NOT TRUE)::double precision AS detector_bar
    FROM chance_run cr
    JOIN chance_metrics cm ON cm.run_id = cr.run_id
    JOIN unit u ON u.id = cm.unit_id
    JOIN layer l ON l.id = u.layer_id
    GROUP BY cr.score_run_id, cr.run_id, l.name, cm.repeat
),
chance_counts AS (
    SELECT p.score_run_id, p.run_id, p.layer, v.criterion,
           count(*)::integer AS repeats, avg(v.n) AS mean, stddev_samp(v.n) AS sd
    FROM chance_per_repeat p
    CROSS JOIN LATERAL (VALUES
        ('precision', p.precision),
        ('ccmas', p.ccmas),
        ('localist', p.localist),
        ('iou', p.iou),
        ('misleading', p.misleading),
        ('detector_bar', p.detector_bar)
    ) AS v(criterion, n)
    GROUP BY p.score_run_id, p.run_id, p.layer, v.criterion
)
SELECT
    t.score_run_id,
    t.model,
    t.layer,
    t.layer_position,
    t.criterion,
    t.n_units,
    t.n AS trained,
    rc.run_id AS random_run_id,
    rc.model AS random_model,
    rc.n AS random,
    cc.run_id AS chance_run_id,
    cc.repeats AS chance_repeats,
    cc.mean AS chance_mean,
    cc.sd AS chance_sd
FROM trained t
LEFT JOIN random_counts rc
    ON rc.score_run_id = t.score_run_id AND rc.layer = t.layer AND rc.criterion = t.criterion
LEFT JOIN chance_counts cc
    ON cc.score_run_id = t.score_run_id AND cc.layer = t.layer AND cc.criterion = t.criterion
""",
}

#: Recomputes what is cached from these views, after they are created (both ways).
REFRESH: tuple[str, ...] = (
    """DO $$ BEGIN IF to_regprocedure('refresh_layer_detectors(integer[])') IS NOT NULL THEN PERFORM refresh_layer_detectors(NULL); END IF; END $$""",
)


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
