"""The SQL views: the catalogue's query surface (psql, pandas, the UI).

View SQL lives here and the migrations refer to it by version, so that an old
migration keeps creating the views it created then. A new version of a view is a
new entry in a new `VIEWS_Vn` mapping plus a migration that switches to it.

Column names are a contract (DESIGN.md): keep them stable.
"""

from __future__ import annotations

from catalogue.measures import (
    CCMAS_DETECTOR,
    CORRELATED_MEASURES,
    IOU_DETECTOR,
    MISLEADING_FALSE_ALARM,
    PRECISION_DETECTOR,
    SUMMARISED_MEASURES,
    UNIT_MEASURES,
)


def _class_name_join(alias: str, column: str) -> str:
    return (
        f"LEFT JOIN image_class {alias} ON {alias}.dataset_id = r.dataset_id "
        f"AND {alias}.class_index = um.{column}"
    )


def _measure_select() -> str:
    """Every measure column; class columns become names, with the index beside them."""
    parts: list[str] = []
    for m in UNIT_MEASURES:
        if m.kind == "class":
            alias = f"c_{m.name}"
            parts.append(f"{alias}.name AS {m.name}")
            parts.append(f"um.{m.name} AS {m.name}_index")
        else:
            parts.append(f"um.{m.name}")
    return ",\n    ".join(parts)


def _class_joins() -> str:
    return "\n".join(
        _class_name_join(f"c_{m.name}", m.name) for m in UNIT_MEASURES if m.kind == "class"
    )


_UNIT_CATALOGUE_V1 = f"""
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
    {_measure_select()},
    best.concept AS best_concept,
    best.category AS best_concept_category,
    best.iou AS best_iou,
    best.iou > {IOU_DETECTOR} AS is_detector,
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
{_class_joins()}
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
        avg(rt.answer::integer) >= 0.8 AS consensus,
        (SELECT n.name FROM rating r2, unnest(r2.names) AS n(name)
         WHERE r2.unit_id = u.id AND r2.answer
         GROUP BY n.name ORDER BY count(*) DESC, n.name LIMIT 1) AS top_name
    FROM rating rt
    WHERE rt.unit_id = u.id
    HAVING count(*) > 0
) rs ON true
"""

_MISLEADING_DETECTORS_V1 = f"""
SELECT *
FROM unit_catalogue
WHERE precision > {PRECISION_DETECTOR} AND false_alarm_rate > {MISLEADING_FALSE_ALARM}
"""


def _unpivot(measures: tuple[str, ...]) -> str:
    rows = []
    for name in measures:
        value = f"uc.{name}::integer::double precision" if name == "localist" else f"uc.{name}"
        rows.append(f"('{name}', {value})")
    return ",\n        ".join(rows)


_LAYER_SUMMARY_V1 = f"""
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
        {_unpivot(SUMMARISED_MEASURES)}
) AS v(measure, value)
WHERE uc.run_id IS NOT NULL
GROUP BY uc.run_id, uc.model, uc.layer, uc.layer_position, v.measure
"""

_MEASURE_CORRELATIONS_V1 = f"""
WITH long AS (
    SELECT uc.run_id, uc.model, uc.layer, uc.unit_id, v.measure, v.value
    FROM unit_catalogue uc
    CROSS JOIN LATERAL (VALUES
        {_unpivot(CORRELATED_MEASURES)}
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
"""

_RATING_SUMMARY_V1 = """
SELECT
    m.name AS model,
    l.name AS layer,
    l.position AS layer_position,
    u.unit_index AS unit,
    u.id AS unit_id,
    count(*)::integer AS n_ratings,
    sum(rt.answer::integer)::integer AS n_yes,
    avg(rt.answer::integer)::double precision AS share_yes,
    avg(rt.answer::integer) >= 0.8 AS consensus,
    ra.n_named,
    coalesce(ra.top_name,
        (SELECT n.name FROM rating r2, unnest(r2.names) AS n(name)
         WHERE r2.unit_id = u.id AND r2.answer
         GROUP BY n.name ORDER BY count(*) DESC, n.name LIMIT 1)) AS top_name,
    ra.human_agreement,
    ra.match_most_active,
    ra.match_ccmas,
    ra.mean_estimate,
    ra.used_wordnet
FROM rating rt
JOIN unit u ON u.id = rt.unit_id
JOIN layer l ON l.id = u.layer_id
JOIN model m ON m.id = l.model_id
LEFT JOIN unit_rating_analysis ra ON ra.unit_id = u.id
GROUP BY m.name, l.name, l.position, u.unit_index, u.id, ra.unit_id
"""

# The paper's Table 1, per layer: (a) share of yes, (b) share of units with >= 80% yes,
# (c-e) name agreement among consensus units, each with its standard error.
_RATING_LAYER_SUMMARY_V1 = """
SELECT
    model,
    layer,
    layer_position,
    count(*)::integer AS n_units,
    sum(n_ratings)::integer AS n_ratings,
    avg(share_yes) AS share_yes,
    stddev_samp(share_yes) / sqrt(count(*)) AS share_yes_se,
    avg(consensus::integer)::double precision AS share_consensus,
    sqrt(avg(consensus::integer) * (1 - avg(consensus::integer)) / count(*))::double precision
        AS share_consensus_se,
    avg(human_agreement) FILTER (WHERE consensus) AS human_agreement,
    stddev_samp(human_agreement) FILTER (WHERE consensus)
        / sqrt(nullif(count(human_agreement) FILTER (WHERE consensus), 0)) AS human_agreement_se,
    avg(match_most_active) FILTER (WHERE consensus) AS match_most_active,
    stddev_samp(match_most_active) FILTER (WHERE consensus)
        / sqrt(nullif(count(match_most_active) FILTER (WHERE consensus), 0)) AS match_most_active_se,
    avg(match_ccmas) FILTER (WHERE consensus) AS match_ccmas,
    stddev_samp(match_ccmas) FILTER (WHERE consensus)
        / sqrt(nullif(count(match_ccmas) FILTER (WHERE consensus), 0)) AS match_ccmas_se
FROM rating_summary
GROUP BY model, layer, layer_position
"""

_DISSECTION_SUMMARY_V1 = f"""
SELECT
    dn.run_id,
    m.name AS model,
    l.name AS layer,
    l.position AS layer_position,
    count(DISTINCT dn.unit_id)::integer AS n_units,
    count(DISTINCT dn.unit_id) FILTER (WHERE dn.rank = 1 AND dn.iou > {IOU_DETECTOR})::integer
        AS n_detectors,
    count(DISTINCT dn.concept_id) FILTER (WHERE dn.rank = 1 AND dn.iou > {IOU_DETECTOR})::integer
        AS n_unique_concepts
FROM dissection dn
JOIN unit u ON u.id = dn.unit_id
JOIN layer l ON l.id = u.layer_id
JOIN model m ON m.id = l.model_id
GROUP BY dn.run_id, m.name, l.name, l.position
"""

#: Views of schema revision 0001, in creation order (later ones read earlier ones).
VIEWS_V1: dict[str, str] = {
    "unit_catalogue": _UNIT_CATALOGUE_V1,
    "misleading_detectors": _MISLEADING_DETECTORS_V1,
    "layer_summary": _LAYER_SUMMARY_V1,
    "measure_correlations": _MEASURE_CORRELATIONS_V1,
    "rating_summary": _RATING_SUMMARY_V1,
    "rating_layer_summary": _RATING_LAYER_SUMMARY_V1,
    "dissection_summary": _DISSECTION_SUMMARY_V1,
}


def create_statements(views: dict[str, str]) -> list[str]:
    return [f"CREATE VIEW {name} AS {sql}" for name, sql in views.items()]


def drop_statements(views: dict[str, str]) -> list[str]:
    return [f"DROP VIEW IF EXISTS {name}" for name in reversed(list(views))]


# The paper's point in one table: how many "object detectors" each criterion finds
# in a layer, next to the signal-detection measures that show what they are worth.
_LAYER_DETECTORS_V2 = f"""
SELECT
    run_id,
    model,
    layer,
    layer_position,
    count(*)::integer AS n_units,
    count(*) FILTER (WHERE precision > {PRECISION_DETECTOR})::integer AS n_precision,
    count(*) FILTER (WHERE ccmas > {CCMAS_DETECTOR})::integer AS n_ccmas,
    count(*) FILTER (WHERE localist)::integer AS n_localist,
    count(*) FILTER (WHERE best_iou > {IOU_DETECTOR})::integer AS n_iou,
    count(*) FILTER (WHERE precision > {PRECISION_DETECTOR}
                     AND false_alarm_rate > {MISLEADING_FALSE_ALARM})::integer AS n_misleading,
    percentile_cont(0.5) WITHIN GROUP (ORDER BY max_informedness) AS median_max_informedness,
    percentile_cont(0.5) WITHIN GROUP (ORDER BY false_alarm_rate) AS median_false_alarm_rate,
    percentile_cont(0.5) WITHIN GROUP (ORDER BY recall_at_mi) AS median_recall_at_mi
FROM unit_catalogue
WHERE run_id IS NOT NULL
GROUP BY run_id, model, layer, layer_position
"""

#: Views added by schema revision 0002.
VIEWS_V2: dict[str, str] = {"layer_detectors": _LAYER_DETECTORS_V2}
