"""ablation importance and baseline views

Views dropped and created: layer_baselines, selectivity_vs_importance, unit_importance, with the SQL that catalogue.db.views
generated when this revision was written (literal SQL: never edit it; a changed
view is a new revision).

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The views as revision 0018 left them, name -> SELECT in creation order:
#: dropped by upgrade, restored by downgrade.
PREVIOUS_VIEWS: dict[str, str] = {}

#: The views this revision creates, name -> SELECT in creation order.
VIEWS: dict[str, str] = {
    "unit_importance": """
SELECT
    ua.run_id,
    ar.parent_id AS extract_run_id,
    ua.score_run_id,
    m.name AS model,
    l.name AS layer,
    l.kind AS layer_kind,
    l.position AS layer_position,
    u.unit_index AS unit,
    u.id AS unit_id,
    ar.params ->> 'value' AS replaced_by,
    ua.replacement,
    ua.n_images,
    ua.accuracy,
    ua.accuracy_change,
    c_hurt.name AS most_hurt_class,
    hurt.class_index AS most_hurt_class_index,
    hurt.accuracy_change AS most_hurt_change,
    c_precision_class.name AS precision_class,
    ua.precision_class AS precision_class_index,
    ua.precision_class_change,
    c_mi_class.name AS mi_class,
    ua.mi_class AS mi_class_index,
    ua.mi_class_change,
    c_ccmas_class.name AS ccmas_class,
    ua.ccmas_class AS ccmas_class_index,
    ua.ccmas_class_change,
    c_detector_bar_class.name AS detector_bar_class,
    ua.detector_bar_class AS detector_bar_class_index,
    ua.detector_bar_class_change,
    um.localist,
    um.precision,
    um.top60_threshold,
    um.classes_in_top100,
    um.ccmas,
    um.recall_at_p100,
    um.recall_at_p95,
    um.max_informedness,
    um.mi_threshold,
    um.recall_at_mi,
    um.specificity_at_mi,
    um.false_alarm_rate,
    um.frac_zero,
    um.mean_activation,
    um.max_activation,
    um.class_selectivity_index,
    um.constant,
    um.detector_bar
FROM unit_ablation ua
JOIN run ar ON ar.id = ua.run_id
JOIN unit u ON u.id = ua.unit_id
JOIN layer l ON l.id = u.layer_id
JOIN model m ON m.id = l.model_id
LEFT JOIN unit_ablation_class hurt
    ON hurt.run_id = ua.run_id AND hurt.unit_id = ua.unit_id AND hurt.rank = 1
LEFT JOIN image_class c_hurt
    ON c_hurt.dataset_id = ar.dataset_id AND c_hurt.class_index = hurt.class_index
LEFT JOIN image_class c_precision_class ON c_precision_class.dataset_id = ar.dataset_id AND c_precision_class.class_index = ua.precision_class
LEFT JOIN image_class c_mi_class ON c_mi_class.dataset_id = ar.dataset_id AND c_mi_class.class_index = ua.mi_class
LEFT JOIN image_class c_ccmas_class ON c_ccmas_class.dataset_id = ar.dataset_id AND c_ccmas_class.class_index = ua.ccmas_class
LEFT JOIN image_class c_detector_bar_class ON c_detector_bar_class.dataset_id = ar.dataset_id AND c_detector_bar_class.class_index = ua.detector_bar_class
LEFT JOIN unit_metrics um ON um.run_id = ua.score_run_id AND um.unit_id = ua.unit_id
""",
    "selectivity_vs_importance": """
WITH long AS (
    SELECT ui.run_id, ui.score_run_id, ui.model, ui.layer, ui.layer_position,
           v.measure, v.class_column, v.value,
           -v.class_change AS class_drop, -ui.accuracy_change AS overall_drop
    FROM unit_importance ui
    CROSS JOIN LATERAL (VALUES
        ('precision', 'precision_class', ui.precision, ui.precision_class_change),
        ('ccmas', 'ccmas_class', ui.ccmas, ui.ccmas_class_change),
        ('max_informedness', 'mi_class', ui.max_informedness, ui.mi_class_change),
        ('recall_at_mi', 'mi_class', ui.recall_at_mi, ui.mi_class_change),
        ('specificity_at_mi', 'mi_class', ui.specificity_at_mi, ui.mi_class_change),
        ('false_alarm_rate', 'mi_class', ui.false_alarm_rate, ui.mi_class_change),
        ('recall_at_p100', 'precision_class', ui.recall_at_p100, ui.precision_class_change),
        ('recall_at_p95', 'precision_class', ui.recall_at_p95, ui.precision_class_change),
        ('classes_in_top100', 'precision_class', ui.classes_in_top100, ui.precision_class_change),
        ('class_selectivity_index', 'precision_class', ui.class_selectivity_index, ui.precision_class_change),
        ('detector_bar', 'detector_bar_class', ui.detector_bar, ui.detector_bar_class_change)
    ) AS v(measure, class_column, value, class_change)
    WHERE v.value IS NOT NULL AND v.value <> 'NaN'::double precision
      AND ui.constant IS NOT TRUE
),
by_class AS (
    SELECT run_id, score_run_id, model, layer, layer_position, measure, class_column,
        value, class_drop AS drop,
        rank() OVER (PARTITION BY run_id, layer, measure ORDER BY value)
          + (count(*) OVER (PARTITION BY run_id, layer, measure, value) - 1) / 2.0 AS rank_value,
        rank() OVER (PARTITION BY run_id, layer, measure ORDER BY class_drop)
          + (count(*) OVER (PARTITION BY run_id, layer, measure, class_drop) - 1) / 2.0 AS rank_drop
    FROM long
    WHERE class_drop IS NOT NULL AND class_drop <> 'NaN'::double precision
),
by_overall AS (
    SELECT run_id, score_run_id, model, layer, layer_position, measure, class_column,
        value, overall_drop AS drop,
        rank() OVER (PARTITION BY run_id, layer, measure ORDER BY value)
          + (count(*) OVER (PARTITION BY run_id, layer, measure, value) - 1) / 2.0 AS rank_value,
        rank() OVER (PARTITION BY run_id, layer, measure ORDER BY overall_drop)
          + (count(*) OVER (PARTITION BY run_id, layer, measure, overall_drop) - 1) / 2.0 AS rank_drop
    FROM long
    WHERE overall_drop IS NOT NULL AND overall_drop <> 'NaN'::double precision
),
class_corr AS (
    SELECT run_id, score_run_id, model, layer, layer_position, measure, class_column,
           count(*)::integer AS n,
           avg(drop) AS mean_class_drop,
           corr(rank_value::double precision, rank_drop::double precision) AS spearman_class_drop,
           corr(value, drop) AS pearson_class_drop
    FROM by_class
    GROUP BY run_id, score_run_id, model, layer, layer_position, measure, class_column
),
overall_corr AS (
    SELECT run_id, layer, measure,
           count(*)::integer AS n_overall,
           corr(rank_value::double precision, rank_drop::double precision)
               AS spearman_overall_drop,
           corr(value, drop) AS pearson_overall_drop
    FROM by_overall
    GROUP BY run_id, layer, measure
)
SELECT c.run_id, c.score_run_id, c.model, c.layer, c.layer_position, c.measure,
       c.class_column, c.n, c.mean_class_drop, c.spearman_class_drop, c.pearson_class_drop,
       o.n_overall, o.spearman_overall_drop, o.pearson_overall_drop
FROM class_corr c
LEFT JOIN overall_corr o ON o.run_id = c.run_id AND o.layer = c.layer AND o.measure = c.measure
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
