"""The SQL of the importance and baseline views, generated from the registries.

`catalogue.db.views` assembles every view; these three are kept here:

- `unit_importance`: per unit and ablation run, the overall accuracy change, the most-hurt
  class and the change for each of the unit's selective classes (`SELECTIVE_CLASSES`),
  beside every measure from the scoring run that named those classes;
- `selectivity_vs_importance`: per ablation run, layer and measure, the Spearman (and
  Pearson) correlation of the measure with the accuracy drop on the class
  `IMPORTANCE_CLASS` pairs it with, and with the overall drop (Morcos et al. 2018);
- `layer_baselines`: per trained scoring run, layer and criterion (`CRITERIA` with a
  count column), detectors trained, with random weights and by chance (mean ± sd).

Constant (dead) units (`NOT_CONSTANT`) are left out of the correlations and of every
count, as `layer_detectors` leaves them out: their scores describe the class sizes, not
the unit. `unit_importance` keeps them (their ablation changes nothing, which is a fact).
"""

from __future__ import annotations

from collections.abc import Sequence

from catalogue.measures import NOT_CONSTANT, SELECTIVE_CLASSES, Criterion, Measure


def unit_importance_select(measures: Sequence[Measure]) -> str:
    """Per unit and ablation run: what removing the unit did, beside its measures from the
    scoring run that named its selective classes."""
    selective = ",\n    ".join(
        f"c_{c}.name AS {c},\n    ua.{c} AS {c}_index,\n    ua.{c}_change"
        for c in SELECTIVE_CLASSES
    )
    joins = "\n".join(
        f"LEFT JOIN image_class c_{c} ON c_{c}.dataset_id = ar.dataset_id "
        f"AND c_{c}.class_index = ua.{c}"
        for c in SELECTIVE_CLASSES
    )
    beside = ",\n    ".join(f"um.{m.name}" for m in measures if m.kind != "class")
    return f"""
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
    {selective},
    {beside}
FROM unit_ablation ua
JOIN run ar ON ar.id = ua.run_id
JOIN unit u ON u.id = ua.unit_id
JOIN layer l ON l.id = u.layer_id
JOIN model m ON m.id = l.model_id
LEFT JOIN unit_ablation_class hurt
    ON hurt.run_id = ua.run_id AND hurt.unit_id = ua.unit_id AND hurt.rank = 1
LEFT JOIN image_class c_hurt
    ON c_hurt.dataset_id = ar.dataset_id AND c_hurt.class_index = hurt.class_index
{joins}
LEFT JOIN unit_metrics um ON um.run_id = ua.score_run_id AND um.unit_id = ua.unit_id
"""


def _average_rank(partition: str, value: str) -> str:
    """The rank of `value` in its partition, ties sharing the mean of their positions."""
    return (
        f"rank() OVER (PARTITION BY {partition} ORDER BY {value})\n"
        f"          + (count(*) OVER (PARTITION BY {partition}, {value}) - 1) / 2.0"
    )


def selectivity_vs_importance_select(importance_class: dict[str, str]) -> str:
    """Morcos et al. (2018)'s question per layer: does a more selective unit matter more? The
    Spearman (and Pearson) correlation over units of each selectivity measure with the drop
    in accuracy (baseline minus ablated) on the unit's selective class, and overall."""
    rows = ",\n        ".join(
        f"('{measure}', '{column}', ui.{measure}, ui.{column}_change)"
        for measure, column in importance_class.items()
    )
    keys = "run_id, layer, measure"

    def ranked(drop: str, name: str) -> str:
        return f"""{name} AS (
    SELECT run_id, score_run_id, model, layer, layer_position, measure, class_column,
        value, {drop} AS drop,
        {_average_rank(keys, "value")} AS rank_value,
        {_average_rank(keys, drop)} AS rank_drop
    FROM long
    WHERE {drop} IS NOT NULL AND {drop} <> 'NaN'::double precision
)"""

    return f"""
WITH long AS (
    SELECT ui.run_id, ui.score_run_id, ui.model, ui.layer, ui.layer_position,
           v.measure, v.class_column, v.value,
           -v.class_change AS class_drop, -ui.accuracy_change AS overall_drop
    FROM unit_importance ui
    CROSS JOIN LATERAL (VALUES
        {rows}
    ) AS v(measure, class_column, value, class_change)
    WHERE v.value IS NOT NULL AND v.value <> 'NaN'::double precision
      AND {NOT_CONSTANT.sql("ui")}
),
{ranked("class_drop", "by_class")},
{ranked("overall_drop", "by_overall")},
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
"""


def layer_baselines_select(criteria: Sequence[Criterion], measures: Sequence[Measure]) -> str:
    """Per layer of a trained scoring run and criterion: its detectors, those of the same
    network with random weights, and by chance (labels permuted) as mean ± sd over repeats,
    constant units left out of all three. A criterion on a column that chance scoring has no value for (the dissection IoU) has no
    chance count."""
    counted = [c for c in criteria if c.count_column]
    unpivot = ",\n        ".join(f"('{c.key}', ld.{c.count_column})" for c in counted)
    columns = {m.name for m in measures}
    chance_counts = ",\n        ".join(
        f"count(*) FILTER (WHERE {c.sql('cm')} AND {NOT_CONSTANT.sql('cm')})"
        f"::double precision AS {c.key}"
        if set(c.columns) <= columns
        else f"NULL::double precision AS {c.key}"
        for c in counted
    )
    chance_unpivot = ",\n        ".join(f"('{c.key}', p.{c.key})" for c in counted)

    def latest(kind: str) -> str:
        return f"""SELECT DISTINCT ON (r.baseline_of)
        r.baseline_of AS score_run_id, r.id AS run_id, r.model_id, r.params
    FROM run r
    WHERE r.kind = '{kind}' AND r.status = 'done' AND r.baseline_of IS NOT NULL
    ORDER BY r.baseline_of, r.finished_at DESC NULLS LAST, r.id DESC"""

    return f"""
WITH trained AS (
    SELECT ld.run_id AS score_run_id, ld.model, ld.layer, ld.layer_position, ld.n_units,
           v.criterion, v.n
    FROM layer_detectors ld
    JOIN run r ON r.id = ld.run_id
    CROSS JOIN LATERAL (VALUES
        {unpivot}
    ) AS v(criterion, n)
    WHERE r.baseline_of IS NULL
),
random_run AS (
    {latest("score")}
),
random_counts AS (
    SELECT rr.score_run_id, rr.run_id, ld.model, ld.layer, v.criterion, v.n
    FROM random_run rr
    JOIN layer_detectors ld ON ld.run_id = rr.run_id
    CROSS JOIN LATERAL (VALUES
        {unpivot}
    ) AS v(criterion, n)
),
chance_run AS (
    {latest("chance")}
),
chance_per_repeat AS (
    SELECT cr.score_run_id, cr.run_id, l.name AS layer, cm.repeat,
        {chance_counts}
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
        {chance_unpivot}
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
"""
