"""constant units and detector_bar in the views

Views dropped and created: layer_detectors, layer_summary, measure_correlations, misleading_detectors, unit_catalogue, with the SQL that catalogue.db.views
generated when this revision was written (literal SQL: never edit it; a changed
view is a new revision).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The views as revision 0010 left them, name -> SELECT in creation order:
#: dropped by upgrade, restored by downgrade.
PREVIOUS_VIEWS: dict[str, str] = {
    "unit_catalogue": """
SELECT
    um.run_id,
    m.name AS model,
    m.architecture,
    l.name AS layer,
    l.kind AS layer_kind,
    l.position AS layer_position,
    u.unit_index AS unit,
    u.id AS unit_id,
    d.name AS dataset,
    um.n_images,
    um.localist,
    c_localist_class.name AS localist_class,
    um.localist_class AS localist_class_index,
    um.precision,
    c_precision_class.name AS precision_class,
    um.precision_class AS precision_class_index,
    um.top60_threshold,
    um.classes_in_top100,
    um.ccmas,
    c_ccmas_class.name AS ccmas_class,
    um.ccmas_class AS ccmas_class_index,
    um.recall_at_p100,
    um.recall_at_p95,
    um.max_informedness,
    c_mi_class.name AS mi_class,
    um.mi_class AS mi_class_index,
    um.mi_threshold,
    um.recall_at_mi,
    um.specificity_at_mi,
    um.false_alarm_rate,
    um.frac_zero,
    um.mean_activation,
    um.max_activation,
    um.class_selectivity_index,
    best.concept AS best_concept,
    best.category AS best_concept_category,
    best.iou AS best_iou,
    best.iou > 0.04 AS is_detector,
    rs.n_ratings,
    rs.share_yes,
    rs.consensus AS rating_consensus,
    rs.top_name AS rating_top_name
FROM unit u
JOIN layer l ON l.id = u.layer_id
JOIN model m ON m.id = l.model_id
LEFT JOIN unit_metrics um ON um.unit_id = u.id
LEFT JOIN run r ON r.id = um.run_id
LEFT JOIN dataset d ON d.id = r.dataset_id
LEFT JOIN image_class c_localist_class ON c_localist_class.dataset_id = r.dataset_id AND c_localist_class.class_index = um.localist_class
LEFT JOIN image_class c_precision_class ON c_precision_class.dataset_id = r.dataset_id AND c_precision_class.class_index = um.precision_class
LEFT JOIN image_class c_ccmas_class ON c_ccmas_class.dataset_id = r.dataset_id AND c_ccmas_class.class_index = um.ccmas_class
LEFT JOIN image_class c_mi_class ON c_mi_class.dataset_id = r.dataset_id AND c_mi_class.class_index = um.mi_class
LEFT JOIN LATERAL (
    SELECT c.name AS concept, c.category, dn.iou
    FROM dissection dn
    JOIN concept c ON c.id = dn.concept_id
    WHERE dn.unit_id = u.id
    ORDER BY dn.iou DESC, dn.run_id DESC, c.id
    LIMIT 1
) best ON true
LEFT JOIN LATERAL (
    SELECT
        count(*)::integer AS n_ratings,
        avg(rt.answer::integer)::double precision AS share_yes,
        CASE WHEN count(*) >= 5 THEN avg(rt.answer::integer) >= 0.8 END AS consensus,
        (SELECT n.name FROM rating r2, unnest(r2.names) AS n(name)
         WHERE r2.unit_id = u.id AND r2.answer
         GROUP BY n.name ORDER BY count(*) DESC, n.name LIMIT 1) AS top_name
    FROM rating rt
    WHERE rt.unit_id = u.id
    HAVING count(*) > 0
) rs ON true
""",
    "misleading_detectors": """
SELECT *
FROM unit_catalogue
WHERE precision > 0.75 AND false_alarm_rate > 0.9
""",
    "layer_summary": """
SELECT
    uc.run_id,
    uc.model,
    uc.layer,
    uc.layer_position,
    v.measure,
    count(v.value)::integer AS n,
    avg(v.value) AS mean,
    stddev_samp(v.value) AS sd,
    min(v.value) AS min,
    percentile_cont(0.25) WITHIN GROUP (ORDER BY v.value) AS q1,
    percentile_cont(0.5) WITHIN GROUP (ORDER BY v.value) AS median,
    percentile_cont(0.75) WITHIN GROUP (ORDER BY v.value) AS q3,
    max(v.value) AS max
FROM unit_catalogue uc
CROSS JOIN LATERAL (VALUES
        ('localist', uc.localist::integer::double precision),
        ('precision', uc.precision),
        ('top60_threshold', uc.top60_threshold),
        ('classes_in_top100', uc.classes_in_top100),
        ('ccmas', uc.ccmas),
        ('recall_at_p100', uc.recall_at_p100),
        ('recall_at_p95', uc.recall_at_p95),
        ('max_informedness', uc.max_informedness),
        ('mi_threshold', uc.mi_threshold),
        ('recall_at_mi', uc.recall_at_mi),
        ('specificity_at_mi', uc.specificity_at_mi),
        ('false_alarm_rate', uc.false_alarm_rate),
        ('frac_zero', uc.frac_zero),
        ('mean_activation', uc.mean_activation),
        ('max_activation', uc.max_activation),
        ('class_selectivity_index', uc.class_selectivity_index)
) AS v(measure, value)
WHERE uc.run_id IS NOT NULL
GROUP BY uc.run_id, uc.model, uc.layer, uc.layer_position, v.measure
""",
    "measure_correlations": """
WITH long AS (
    SELECT uc.run_id, uc.model, uc.layer, uc.unit_id, v.measure, v.value
    FROM unit_catalogue uc
    CROSS JOIN LATERAL (VALUES
        ('precision', uc.precision),
        ('classes_in_top100', uc.classes_in_top100),
        ('ccmas', uc.ccmas),
        ('recall_at_p100', uc.recall_at_p100),
        ('recall_at_p95', uc.recall_at_p95),
        ('max_informedness', uc.max_informedness),
        ('recall_at_mi', uc.recall_at_mi),
        ('specificity_at_mi', uc.specificity_at_mi),
        ('false_alarm_rate', uc.false_alarm_rate),
        ('class_selectivity_index', uc.class_selectivity_index),
        ('frac_zero', uc.frac_zero),
        ('mean_activation', uc.mean_activation)
    ) AS v(measure, value)
    WHERE uc.run_id IS NOT NULL AND v.value IS NOT NULL AND v.value <> 'NaN'::double precision
),
pairs AS (
    SELECT a.run_id, a.model, a.layer, a.measure AS measure_a, b.measure AS measure_b,
           a.value AS value_a, b.value AS value_b
    FROM long a
    JOIN long b ON b.run_id = a.run_id AND b.unit_id = a.unit_id AND a.measure < b.measure
),
ranked AS (
    -- average ranks (ties share the mean of their positions), over pairwise-complete units
    SELECT p.*,
        rank() OVER (PARTITION BY run_id, layer, measure_a, measure_b ORDER BY value_a)
          + (count(*) OVER (PARTITION BY run_id, layer, measure_a, measure_b, value_a) - 1) / 2.0
          AS rank_a,
        rank() OVER (PARTITION BY run_id, layer, measure_a, measure_b ORDER BY value_b)
          + (count(*) OVER (PARTITION BY run_id, layer, measure_a, measure_b, value_b) - 1) / 2.0
          AS rank_b
    FROM pairs p
)
SELECT run_id, model, layer, measure_a, measure_b,
       count(*)::integer AS n,
       corr(value_a, value_b) AS pearson,
       corr(rank_a::double precision, rank_b::double precision) AS spearman
FROM ranked
GROUP BY run_id, model, layer, measure_a, measure_b
""",
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

#: The views this revision creates, name -> SELECT in creation order.
VIEWS: dict[str, str] = {
    "unit_catalogue": """
SELECT
    um.run_id,
    m.name AS model,
    m.architecture,
    l.name AS layer,
    l.kind AS layer_kind,
    l.position AS layer_position,
    u.unit_index AS unit,
    u.id AS unit_id,
    d.name AS dataset,
    um.n_images,
    um.localist,
    c_localist_class.name AS localist_class,
    um.localist_class AS localist_class_index,
    um.precision,
    c_precision_class.name AS precision_class,
    um.precision_class AS precision_class_index,
    um.top60_threshold,
    um.classes_in_top100,
    um.ccmas,
    c_ccmas_class.name AS ccmas_class,
    um.ccmas_class AS ccmas_class_index,
    um.recall_at_p100,
    um.recall_at_p95,
    um.max_informedness,
    c_mi_class.name AS mi_class,
    um.mi_class AS mi_class_index,
    um.mi_threshold,
    um.recall_at_mi,
    um.specificity_at_mi,
    um.false_alarm_rate,
    um.frac_zero,
    um.mean_activation,
    um.max_activation,
    um.class_selectivity_index,
    um.constant,
    um.detector_bar,
    c_detector_bar_class.name AS detector_bar_class,
    um.detector_bar_class AS detector_bar_class_index,
    best.concept AS best_concept,
    best.category AS best_concept_category,
    best.iou AS best_iou,
    best.iou > 0.04 AS is_detector,
    rs.n_ratings,
    rs.share_yes,
    rs.consensus AS rating_consensus,
    rs.top_name AS rating_top_name
FROM unit u
JOIN layer l ON l.id = u.layer_id
JOIN model m ON m.id = l.model_id
LEFT JOIN unit_metrics um ON um.unit_id = u.id
LEFT JOIN run r ON r.id = um.run_id
LEFT JOIN dataset d ON d.id = r.dataset_id
LEFT JOIN image_class c_localist_class ON c_localist_class.dataset_id = r.dataset_id AND c_localist_class.class_index = um.localist_class
LEFT JOIN image_class c_precision_class ON c_precision_class.dataset_id = r.dataset_id AND c_precision_class.class_index = um.precision_class
LEFT JOIN image_class c_ccmas_class ON c_ccmas_class.dataset_id = r.dataset_id AND c_ccmas_class.class_index = um.ccmas_class
LEFT JOIN image_class c_mi_class ON c_mi_class.dataset_id = r.dataset_id AND c_mi_class.class_index = um.mi_class
LEFT JOIN image_class c_detector_bar_class ON c_detector_bar_class.dataset_id = r.dataset_id AND c_detector_bar_class.class_index = um.detector_bar_class
LEFT JOIN LATERAL (
    SELECT c.name AS concept, c.category, dn.iou
    FROM dissection dn
    JOIN concept c ON c.id = dn.concept_id
    WHERE dn.unit_id = u.id
    ORDER BY dn.iou DESC, dn.run_id DESC, c.id
    LIMIT 1
) best ON true
LEFT JOIN LATERAL (
    SELECT
        count(*)::integer AS n_ratings,
        avg(rt.answer::integer)::double precision AS share_yes,
        CASE WHEN count(*) >= 5 THEN avg(rt.answer::integer) >= 0.8 END AS consensus,
        (SELECT n.name FROM rating r2, unnest(r2.names) AS n(name)
         WHERE r2.unit_id = u.id AND r2.answer
         GROUP BY n.name ORDER BY count(*) DESC, n.name LIMIT 1) AS top_name
    FROM rating rt
    WHERE rt.unit_id = u.id
    HAVING count(*) > 0
) rs ON true
""",
    "misleading_detectors": """
SELECT *
FROM unit_catalogue
WHERE precision > 0.75 AND false_alarm_rate > 0.9 AND constant IS NOT TRUE
""",
    "layer_summary": """
SELECT
    uc.run_id,
    uc.model,
    uc.layer,
    uc.layer_position,
    v.measure,
    count(v.value)::integer AS n,
    avg(v.value) AS mean,
    stddev_samp(v.value) AS sd,
    min(v.value) AS min,
    percentile_cont(0.25) WITHIN GROUP (ORDER BY v.value) AS q1,
    percentile_cont(0.5) WITHIN GROUP (ORDER BY v.value) AS median,
    percentile_cont(0.75) WITHIN GROUP (ORDER BY v.value) AS q3,
    max(v.value) AS max
FROM unit_catalogue uc
CROSS JOIN LATERAL (VALUES
        ('localist', uc.localist::integer::double precision),
        ('precision', uc.precision),
        ('top60_threshold', uc.top60_threshold),
        ('classes_in_top100', uc.classes_in_top100),
        ('ccmas', uc.ccmas),
        ('recall_at_p100', uc.recall_at_p100),
        ('recall_at_p95', uc.recall_at_p95),
        ('max_informedness', uc.max_informedness),
        ('mi_threshold', uc.mi_threshold),
        ('recall_at_mi', uc.recall_at_mi),
        ('specificity_at_mi', uc.specificity_at_mi),
        ('false_alarm_rate', uc.false_alarm_rate),
        ('frac_zero', uc.frac_zero),
        ('mean_activation', uc.mean_activation),
        ('max_activation', uc.max_activation),
        ('class_selectivity_index', uc.class_selectivity_index),
        ('detector_bar', uc.detector_bar)
) AS v(measure, value)
WHERE uc.run_id IS NOT NULL AND uc.constant IS NOT TRUE
GROUP BY uc.run_id, uc.model, uc.layer, uc.layer_position, v.measure
""",
    "measure_correlations": """
WITH long AS (
    SELECT uc.run_id, uc.model, uc.layer, uc.unit_id, v.measure, v.value
    FROM unit_catalogue uc
    CROSS JOIN LATERAL (VALUES
        ('precision', uc.precision),
        ('classes_in_top100', uc.classes_in_top100),
        ('ccmas', uc.ccmas),
        ('recall_at_p100', uc.recall_at_p100),
        ('recall_at_p95', uc.recall_at_p95),
        ('max_informedness', uc.max_informedness),
        ('recall_at_mi', uc.recall_at_mi),
        ('specificity_at_mi', uc.specificity_at_mi),
        ('false_alarm_rate', uc.false_alarm_rate),
        ('class_selectivity_index', uc.class_selectivity_index),
        ('frac_zero', uc.frac_zero),
        ('mean_activation', uc.mean_activation),
        ('detector_bar', uc.detector_bar)
    ) AS v(measure, value)
    WHERE uc.run_id IS NOT NULL AND uc.constant IS NOT TRUE
      AND v.value IS NOT NULL AND v.value <> 'NaN'::double precision
),
pairs AS (
    SELECT a.run_id, a.model, a.layer, a.measure AS measure_a, b.measure AS measure_b,
           a.value AS value_a, b.value AS value_b
    FROM long a
    JOIN long b ON b.run_id = a.run_id AND b.unit_id = a.unit_id AND a.measure < b.measure
),
ranked AS (
    -- average ranks (ties share the mean of their positions), over pairwise-complete units
    SELECT p.*,
        rank() OVER (PARTITION BY run_id, layer, measure_a, measure_b ORDER BY value_a)
          + (count(*) OVER (PARTITION BY run_id, layer, measure_a, measure_b, value_a) - 1) / 2.0
          AS rank_a,
        rank() OVER (PARTITION BY run_id, layer, measure_a, measure_b ORDER BY value_b)
          + (count(*) OVER (PARTITION BY run_id, layer, measure_a, measure_b, value_b) - 1) / 2.0
          AS rank_b
    FROM pairs p
)
SELECT run_id, model, layer, measure_a, measure_b,
       count(*)::integer AS n,
       corr(value_a, value_b) AS pearson,
       corr(rank_a::double precision, rank_b::double precision) AS spearman
FROM ranked
GROUP BY run_id, model, layer, measure_a, measure_b
""",
    "layer_detectors": """
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
