"""2-AFC accuracy in unit_catalogue and measure_correlations

Views dropped and created: layer_baselines, layer_detectors, layer_summary, measure_correlations, misleading_detectors, twoafc_participant_check, twoafc_unit_accuracy, twoafc_unit_summary, unit_catalogue, with the SQL that catalogue.db.views
generated when this revision was written (literal SQL: never edit it; a changed
view is a new revision).

Revision ID: 0061
Revises: 0060
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0061"
down_revision: str | None = "0060"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The views as revision 0060 left them, name -> SELECT in creation order:
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
    um.unit_id,
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
    bc.name AS best_concept,
    bc.category AS best_concept_category,
    best.iou AS best_iou,
    best.iou > 0.04 AS is_detector,
    rs.n_ratings,
    (rs.n_yes::numeric / rs.n_ratings)::double precision AS share_yes,
    CASE WHEN rs.n_ratings >= 5 THEN rs.n_yes::numeric / rs.n_ratings >= 0.8 END AS rating_consensus,
    rs.top_name AS rating_top_name
FROM unit_metrics um
LEFT JOIN unit u ON u.id = um.unit_id
LEFT JOIN layer l ON l.id = u.layer_id
LEFT JOIN model m ON m.id = l.model_id
LEFT JOIN run r ON r.id = um.run_id
LEFT JOIN dataset d ON d.id = r.dataset_id
LEFT JOIN image_class c_localist_class ON c_localist_class.dataset_id = r.dataset_id AND c_localist_class.class_index = um.localist_class
LEFT JOIN image_class c_precision_class ON c_precision_class.dataset_id = r.dataset_id AND c_precision_class.class_index = um.precision_class
LEFT JOIN image_class c_ccmas_class ON c_ccmas_class.dataset_id = r.dataset_id AND c_ccmas_class.class_index = um.ccmas_class
LEFT JOIN image_class c_mi_class ON c_mi_class.dataset_id = r.dataset_id AND c_mi_class.class_index = um.mi_class
LEFT JOIN image_class c_detector_bar_class ON c_detector_bar_class.dataset_id = r.dataset_id AND c_detector_bar_class.class_index = um.detector_bar_class
LEFT JOIN unit_best_concept best ON best.unit_id = um.unit_id
LEFT JOIN concept bc ON bc.id = best.concept_id
LEFT JOIN unit_rating_stats rs ON rs.unit_id = um.unit_id
UNION ALL
SELECT
    NULL::integer AS run_id,
    m.name AS model,
    m.architecture,
    l.name AS layer,
    l.kind AS layer_kind,
    l.position AS layer_position,
    u.unit_index AS unit,
    u.id AS unit_id,
    NULL::text AS dataset,
    NULL::integer AS n_images,
    NULL::boolean AS localist,
    NULL::text AS localist_class,
    NULL::integer AS localist_class_index,
    NULL::double precision AS precision,
    NULL::text AS precision_class,
    NULL::integer AS precision_class_index,
    NULL::double precision AS top60_threshold,
    NULL::double precision AS classes_in_top100,
    NULL::double precision AS ccmas,
    NULL::text AS ccmas_class,
    NULL::integer AS ccmas_class_index,
    NULL::double precision AS recall_at_p100,
    NULL::double precision AS recall_at_p95,
    NULL::double precision AS max_informedness,
    NULL::text AS mi_class,
    NULL::integer AS mi_class_index,
    NULL::double precision AS mi_threshold,
    NULL::double precision AS recall_at_mi,
    NULL::double precision AS specificity_at_mi,
    NULL::double precision AS false_alarm_rate,
    NULL::double precision AS frac_zero,
    NULL::double precision AS mean_activation,
    NULL::double precision AS max_activation,
    NULL::double precision AS class_selectivity_index,
    NULL::boolean AS constant,
    NULL::double precision AS detector_bar,
    NULL::text AS detector_bar_class,
    NULL::integer AS detector_bar_class_index,
    bc.name AS best_concept,
    bc.category AS best_concept_category,
    best.iou AS best_iou,
    best.iou > 0.04 AS is_detector,
    rs.n_ratings,
    (rs.n_yes::numeric / rs.n_ratings)::double precision AS share_yes,
    CASE WHEN rs.n_ratings >= 5 THEN rs.n_yes::numeric / rs.n_ratings >= 0.8 END AS rating_consensus,
    rs.top_name AS rating_top_name
FROM unit u
JOIN layer l ON l.id = u.layer_id
JOIN model m ON m.id = l.model_id
LEFT JOIN unit_best_concept best ON best.unit_id = u.id
LEFT JOIN concept bc ON bc.id = best.concept_id
LEFT JOIN unit_rating_stats rs ON rs.unit_id = u.id
WHERE NOT EXISTS (SELECT 1 FROM unit_metrics scored WHERE scored.unit_id = u.id)
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
    "twoafc_participant_check": """
SELECT
    s.id AS study_id,
    s.name AS study,
    r.participant_id,
    p.code AS participant,
    a.task,
    count(*) FILTER (WHERE NOT t.catch)::integer AS n_main,
    count(*) FILTER (WHERE NOT t.catch AND r.chose_max)::integer AS n_main_correct,
    count(*) FILTER (WHERE t.catch)::integer AS n_catch,
    count(*) FILTER (WHERE t.catch AND r.chose_max)::integer AS n_catch_correct,
    (count(*) FILTER (WHERE t.catch AND r.chose_max)::numeric / nullif(count(*) FILTER (WHERE t.catch), 0))::double precision AS catch_share,
    coalesce(count(*) FILTER (WHERE t.catch AND r.chose_max)::numeric / nullif(count(*) FILTER (WHERE t.catch), 0) >= 0.8, false) AS passed
FROM twoafc_response r
JOIN twoafc_trial t ON t.id = r.trial_id
JOIN twoafc_study s ON s.id = t.study_id
JOIN participant p ON p.id = r.participant_id
LEFT JOIN twoafc_assignment a ON a.study_id = t.study_id AND a.participant_id = r.participant_id
GROUP BY s.id, s.name, r.participant_id, p.code, a.task
""",
    "twoafc_unit_accuracy": """
SELECT
    t.unit_id,
    count(*) FILTER (WHERE c.passed)::integer AS n_responses,
    count(*) FILTER (WHERE c.passed AND r.chose_max)::integer AS n_correct,
    (count(*) FILTER (WHERE c.passed AND r.chose_max)::numeric / nullif(count(*) FILTER (WHERE c.passed), 0))::double precision AS accuracy,
    CASE WHEN count(*) FILTER (WHERE c.passed) > 0 THEN greatest(0.0, ((count(*) FILTER (WHERE c.passed AND r.chose_max))::double precision + 1.9207294103470627 - 1.959963984540054 * sqrt((count(*) FILTER (WHERE c.passed AND r.chose_max))::double precision * ((count(*) FILTER (WHERE c.passed))::double precision - (count(*) FILTER (WHERE c.passed AND r.chose_max))::double precision) / (count(*) FILTER (WHERE c.passed))::double precision + 0.9603647051735313)) / ((count(*) FILTER (WHERE c.passed))::double precision + 3.8414588206941254)) END AS ci_low,
    CASE WHEN count(*) FILTER (WHERE c.passed) > 0 THEN least(1.0, ((count(*) FILTER (WHERE c.passed AND r.chose_max))::double precision + 1.9207294103470627 + 1.959963984540054 * sqrt((count(*) FILTER (WHERE c.passed AND r.chose_max))::double precision * ((count(*) FILTER (WHERE c.passed))::double precision - (count(*) FILTER (WHERE c.passed AND r.chose_max))::double precision) / (count(*) FILTER (WHERE c.passed))::double precision + 0.9603647051735313)) / ((count(*) FILTER (WHERE c.passed))::double precision + 3.8414588206941254)) END AS ci_high,
    count(DISTINCT r.participant_id) FILTER (WHERE c.passed)::integer AS n_participants,
    count(*) FILTER (WHERE NOT c.passed)::integer AS n_excluded
FROM twoafc_response r
JOIN twoafc_trial t ON t.id = r.trial_id
JOIN twoafc_participant_check c
    ON c.study_id = t.study_id AND c.participant_id = r.participant_id
WHERE NOT t.catch
GROUP BY t.unit_id
""",
    "twoafc_unit_summary": """
SELECT
    m.name AS model,
    l.name AS layer,
    l.position AS layer_position,
    u.unit_index AS unit,
    h2.unit_id,
    h2.n_responses,
    h2.n_correct,
    h2.accuracy,
    h2.ci_low,
    h2.ci_high,
    h2.n_participants,
    h2.n_excluded
FROM twoafc_unit_accuracy h2
JOIN unit u ON u.id = h2.unit_id
JOIN layer l ON l.id = u.layer_id
JOIN model m ON m.id = l.model_id
""",
    "unit_catalogue": """
SELECT
    um.run_id,
    m.name AS model,
    m.architecture,
    l.name AS layer,
    l.kind AS layer_kind,
    l.position AS layer_position,
    u.unit_index AS unit,
    um.unit_id,
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
    bc.name AS best_concept,
    bc.category AS best_concept_category,
    best.iou AS best_iou,
    best.iou > 0.04 AS is_detector,
    rs.n_ratings,
    (rs.n_yes::numeric / rs.n_ratings)::double precision AS share_yes,
    CASE WHEN rs.n_ratings >= 5 THEN rs.n_yes::numeric / rs.n_ratings >= 0.8 END AS rating_consensus,
    rs.top_name AS rating_top_name,
    h2.accuracy AS human_2afc_accuracy,
    h2.n_responses AS human_2afc_n,
    h2.ci_low AS human_2afc_ci_low,
    h2.ci_high AS human_2afc_ci_high
FROM unit_metrics um
LEFT JOIN unit u ON u.id = um.unit_id
LEFT JOIN layer l ON l.id = u.layer_id
LEFT JOIN model m ON m.id = l.model_id
LEFT JOIN run r ON r.id = um.run_id
LEFT JOIN dataset d ON d.id = r.dataset_id
LEFT JOIN image_class c_localist_class ON c_localist_class.dataset_id = r.dataset_id AND c_localist_class.class_index = um.localist_class
LEFT JOIN image_class c_precision_class ON c_precision_class.dataset_id = r.dataset_id AND c_precision_class.class_index = um.precision_class
LEFT JOIN image_class c_ccmas_class ON c_ccmas_class.dataset_id = r.dataset_id AND c_ccmas_class.class_index = um.ccmas_class
LEFT JOIN image_class c_mi_class ON c_mi_class.dataset_id = r.dataset_id AND c_mi_class.class_index = um.mi_class
LEFT JOIN image_class c_detector_bar_class ON c_detector_bar_class.dataset_id = r.dataset_id AND c_detector_bar_class.class_index = um.detector_bar_class
LEFT JOIN unit_best_concept best ON best.unit_id = um.unit_id
LEFT JOIN concept bc ON bc.id = best.concept_id
LEFT JOIN unit_rating_stats rs ON rs.unit_id = um.unit_id
LEFT JOIN twoafc_unit_accuracy h2 ON h2.unit_id = um.unit_id
UNION ALL
SELECT
    NULL::integer AS run_id,
    m.name AS model,
    m.architecture,
    l.name AS layer,
    l.kind AS layer_kind,
    l.position AS layer_position,
    u.unit_index AS unit,
    u.id AS unit_id,
    NULL::text AS dataset,
    NULL::integer AS n_images,
    NULL::boolean AS localist,
    NULL::text AS localist_class,
    NULL::integer AS localist_class_index,
    NULL::double precision AS precision,
    NULL::text AS precision_class,
    NULL::integer AS precision_class_index,
    NULL::double precision AS top60_threshold,
    NULL::double precision AS classes_in_top100,
    NULL::double precision AS ccmas,
    NULL::text AS ccmas_class,
    NULL::integer AS ccmas_class_index,
    NULL::double precision AS recall_at_p100,
    NULL::double precision AS recall_at_p95,
    NULL::double precision AS max_informedness,
    NULL::text AS mi_class,
    NULL::integer AS mi_class_index,
    NULL::double precision AS mi_threshold,
    NULL::double precision AS recall_at_mi,
    NULL::double precision AS specificity_at_mi,
    NULL::double precision AS false_alarm_rate,
    NULL::double precision AS frac_zero,
    NULL::double precision AS mean_activation,
    NULL::double precision AS max_activation,
    NULL::double precision AS class_selectivity_index,
    NULL::boolean AS constant,
    NULL::double precision AS detector_bar,
    NULL::text AS detector_bar_class,
    NULL::integer AS detector_bar_class_index,
    bc.name AS best_concept,
    bc.category AS best_concept_category,
    best.iou AS best_iou,
    best.iou > 0.04 AS is_detector,
    rs.n_ratings,
    (rs.n_yes::numeric / rs.n_ratings)::double precision AS share_yes,
    CASE WHEN rs.n_ratings >= 5 THEN rs.n_yes::numeric / rs.n_ratings >= 0.8 END AS rating_consensus,
    rs.top_name AS rating_top_name,
    h2.accuracy AS human_2afc_accuracy,
    h2.n_responses AS human_2afc_n,
    h2.ci_low AS human_2afc_ci_low,
    h2.ci_high AS human_2afc_ci_high
FROM unit u
JOIN layer l ON l.id = u.layer_id
JOIN model m ON m.id = l.model_id
LEFT JOIN unit_best_concept best ON best.unit_id = u.id
LEFT JOIN concept bc ON bc.id = best.concept_id
LEFT JOIN unit_rating_stats rs ON rs.unit_id = u.id
LEFT JOIN twoafc_unit_accuracy h2 ON h2.unit_id = u.id
WHERE NOT EXISTS (SELECT 1 FROM unit_metrics scored WHERE scored.unit_id = u.id)
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
        ('detector_bar', uc.detector_bar),
        ('best_iou', uc.best_iou),
        ('human_2afc_accuracy', uc.human_2afc_accuracy)
    ) AS v(measure, value)
    WHERE uc.run_id IS NOT NULL AND uc.constant IS NOT TRUE
      AND v.value IS NOT NULL AND v.value <> 'NaN'::double precision
    UNION ALL
    SELECT ui.score_run_id AS run_id, ui.model, ui.layer, ui.unit_id,
           'ablation_drop' AS measure, -ui.accuracy_change AS value
    FROM (
        SELECT DISTINCT ON (score_run_id, unit_id) *
        FROM unit_importance
        WHERE score_run_id IS NOT NULL
        ORDER BY score_run_id, unit_id, run_id DESC
    ) ui
    WHERE ui.constant IS NOT TRUE
      AND ui.accuracy_change IS NOT NULL AND ui.accuracy_change <> 'NaN'::double precision
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
