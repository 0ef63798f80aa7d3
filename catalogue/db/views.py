"""The SQL views as they should be now, generated from the registries of `catalogue.measures`.

The views are the catalogue's query surface (psql, pandas, the UI) and their
column names are a contract (docs/DESIGN.md). Their SQL is built here from
`UNIT_MEASURES` (a column per measure, class indices turned into names) and
`CRITERIA` (a `layer_detectors` count per criterion with a `count_column`, the
`misleading_detectors` filter, the dissection cut-off of `is_detector` and
`dissection_summary`, the rating consensus share), so no threshold is written
in this module. Constant (dead) units (`NOT_CONSTANT`) are left out of the
detector views, counts, medians, summaries and correlations: their scores
describe the class sizes, not the unit. `layer_detectors.n_constant` counts
them, and `layer_summary_select` / `measure_correlations_select` give the
same SELECTs with them included (the UI's switch).

A migration never imports this module. Each revision carries, as literal SQL,
the views it created when it was written (module constants `VIEWS`, name ->
SELECT in creation order, and `PREVIOUS_VIEWS`, the SQL of the views it
replaces, for its downgrade); a new measure or threshold must not change what an
old revision creates. A change here is therefore a new revision:

1. Change the registry in `catalogue/measures.py` (a measure, a criterion, a threshold).
2. `pytest tests/test_migrations.py` fails and names the views that now differ
   from the head revision's.
3. `python -m catalogue.db.views --revision "what changed" --write` writes
   `migrations/versions/<next>_<slug>.py` (`catalogue.db.view_revision`): it
   drops the changed views and the views that read them (their head SQL copied
   into `PREVIOUS_VIEWS` for the downgrade) and creates them from the SQL
   generated now. Without `--write` it prints the revision instead.
4. Read the revision, run the tests (the stepwise migration test takes it up and
   down over a catalogue that holds data) and commit it. A new measure also
   needs its `unit_metrics` column: `alembic revision --autogenerate` for the
   table first, then step 3.

`python -m catalogue.db.views [VIEW ...]` prints the CREATE VIEW statements of
the current definitions (all views, or the named ones), e.g. for psql.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace

from catalogue.db import summaries, twoafc_views
from catalogue.db.importance_views import (
    layer_baselines_select,
    selectivity_vs_importance_select,
    unit_importance_select,
)
from catalogue.db.view_revision import make_revision
from catalogue.measures import (
    CORRELATED_BESIDE,
    CORRELATED_MEASURES,
    CRITERIA,
    IMPORTANCE_CLASS,
    IOU_ABOVE,
    NOT_CONSTANT,
    RATING_CONSENSUS_SHARE,
    RATING_MIN_RATERS,
    REASONS_BY_MEASURE,
    SUMMARISED_MEASURES,
    UNIT_MEASURES,
    Condition,
    Criterion,
    Measure,
)


@dataclass(frozen=True)
class View:
    """One view: its name, its SELECT, the views it reads (dropped and recreated with it),
    and the SQL that recomputes what is cached from it (run by a revision that replaces it)."""

    name: str
    select: str
    reads: tuple[str, ...] = ()
    refresh: str | None = None


def _class_name_join(alias: str, column: str) -> str:
    return (
        f"LEFT JOIN image_class {alias} ON {alias}.dataset_id = r.dataset_id "
        f"AND {alias}.class_index = um.{column}"
    )


def _measure_select(measures: Sequence[Measure]) -> str:
    """Every measure column; class columns become names, with the index beside them; a
    measure that can be undefined has its reason beside it, as text."""
    parts: list[str] = []
    for m in measures:
        if m.kind == "class":
            alias = f"c_{m.name}"
            parts.append(f"{alias}.name AS {m.name}")
            parts.append(f"um.{m.name} AS {m.name}_index")
        else:
            parts.append(f"um.{m.name}")
        reason = REASONS_BY_MEASURE.get(m.name)
        if reason is not None:
            parts.append(f"{reason.sql_case('um')} AS {reason.column}")
    return ",\n    ".join(parts)


_SQL_TYPES = {"float": "double precision", "bool": "boolean", "class": "integer"}


def _unscored_select(measures: Sequence[Measure]) -> str:
    """The measure columns of a unit never scored: NULLs of the scored columns' types."""
    parts: list[str] = []
    for m in measures:
        if m.kind == "class":
            parts.append(f"NULL::text AS {m.name}")
            parts.append(f"NULL::integer AS {m.name}_index")
        else:
            parts.append(f"NULL::{_SQL_TYPES[m.kind]} AS {m.name}")
        reason = REASONS_BY_MEASURE.get(m.name)
        if reason is not None:
            parts.append(f"NULL::text AS {reason.column}")
    return ",\n    ".join(parts)


def _class_joins(measures: Sequence[Measure]) -> str:
    return "\n".join(_class_name_join(f"c_{m.name}", m.name) for m in measures if m.kind == "class")


def _top_rated_name() -> str:
    return """(SELECT n.name FROM rating r2, unnest(r2.names) AS n(name)
         WHERE r2.unit_id = u.id AND r2.answer
         GROUP BY n.name ORDER BY count(*) DESC, n.name LIMIT 1)"""


def _consensus(consensus: float, min_raters: int) -> str:
    """Whether enough people said yes; NULL until `min_raters` people rated the panel."""
    return (
        f"CASE WHEN count(*) >= {int(min_raters)} THEN avg(rt.answer::integer) >= {consensus!r} END"
    )


def _unit_catalogue_tail(iou_above: Condition, consensus: float, min_raters: int) -> str:
    """Best dissection concept and rating summary, from the summaries kept by triggers
    (`catalogue.db.summaries`). avg(answer::integer) is sum / count in numeric, so the
    share and the consensus are computed from the counts exactly as from the ratings."""
    is_detector = replace(iou_above, column="iou").sql("best")
    share = "rs.n_yes::numeric / rs.n_ratings"
    return f"""bc.name AS best_concept,
    bc.category AS best_concept_category,
    best.iou AS best_iou,
    {is_detector} AS is_detector,
    rs.n_ratings,
    ({share})::double precision AS share_yes,
    CASE WHEN rs.n_ratings >= {int(min_raters)} THEN {share} >= {consensus!r} END AS rating_consensus,
    rs.top_name AS rating_top_name,
    {twoafc_views.unit_catalogue_columns()}"""


def _summary_joins(unit_id: str) -> str:
    return f"""LEFT JOIN unit_best_concept best ON best.unit_id = {unit_id}
LEFT JOIN concept bc ON bc.id = best.concept_id
LEFT JOIN unit_rating_stats rs ON rs.unit_id = {unit_id}
{twoafc_views.unit_catalogue_join(unit_id)}"""


def _unit_catalogue(
    measures: Sequence[Measure], iou_above: Condition, consensus: float, min_raters: int
) -> str:
    """One row per scored unit and scoring run, then one per unit never scored.

    The scored rows start from `unit_metrics` and reach everything else by left joins on
    unique keys, so PostgreSQL drops each join a query does not read from (a count of the
    headline query reads one partial index); every row's run and unit exist (the
    references `catalogue.db.summaries` keeps), so these left joins find what inner joins
    would. The unscored rows hold typed NULLs, so a condition on a measure removes them
    when the query is planned.
    """
    tail = _unit_catalogue_tail(iou_above, consensus, min_raters)
    return f"""
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
    {_measure_select(measures)},
    {tail}
FROM unit_metrics um
LEFT JOIN unit u ON u.id = um.unit_id
LEFT JOIN layer l ON l.id = u.layer_id
LEFT JOIN model m ON m.id = l.model_id
LEFT JOIN run r ON r.id = um.run_id
LEFT JOIN dataset d ON d.id = r.dataset_id
{_class_joins(measures)}
{_summary_joins("um.unit_id")}
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
    {_unscored_select(measures)},
    {tail}
FROM unit u
JOIN layer l ON l.id = u.layer_id
JOIN model m ON m.id = l.model_id
{_summary_joins("u.id")}
WHERE NOT EXISTS (SELECT 1 FROM unit_metrics scored WHERE scored.unit_id = u.id)
"""


def _misleading_detectors(misleading: Criterion) -> str:
    return f"""
SELECT *
FROM unit_catalogue
WHERE {misleading.sql()} AND {NOT_CONSTANT.sql()}
"""


def _scored_units(alias: str, include_constant: bool) -> str:
    """The WHERE clause of the per-layer views: scored units, constant ones left out."""
    where = f"{alias}.run_id IS NOT NULL"
    return where if include_constant else f"{where} AND {NOT_CONSTANT.sql(alias)}"


def _unpivot(measures: Sequence[str]) -> str:
    rows = []
    for name in measures:
        value = f"uc.{name}::integer::double precision" if name == "localist" else f"uc.{name}"
        rows.append(f"('{name}', {value})")
    return ",\n        ".join(rows)


def layer_summary_select(
    summarised: Sequence[str] = SUMMARISED_MEASURES, *, include_constant: bool = False
) -> str:
    """The `layer_summary` SELECT (with constant units when `include_constant`)."""
    return f"""
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
        {_unpivot(summarised)}
) AS v(measure, value)
WHERE {_scored_units("uc", include_constant)}
GROUP BY uc.run_id, uc.model, uc.layer, uc.layer_position, v.measure
"""


def measure_correlations_select(
    correlated: Sequence[str] = CORRELATED_MEASURES,
    *,
    include_constant: bool = False,
    beside: Sequence[str] = CORRELATED_BESIDE,
) -> str:
    """The `measure_correlations` SELECT (with constant units when `include_constant`):
    every pair of `correlated` and `beside` (per-unit values that are not measures:
    `unit_catalogue` columns, and the ablation drop from `unit_importance`)."""
    ablation = twoafc_views.ABLATION_DROP
    columns = [*correlated, *(m for m in beside if m != ablation)]
    not_constant = "TRUE" if include_constant else NOT_CONSTANT.sql("ui")
    dropped = (
        f"\n    UNION ALL\n    {twoafc_views.ablation_drop_long(not_constant)}"
        if ablation in beside
        else ""
    )
    return f"""
WITH long AS (
    SELECT uc.run_id, uc.model, uc.layer, uc.unit_id, v.measure, v.value
    FROM unit_catalogue uc
    CROSS JOIN LATERAL (VALUES
        {_unpivot(columns)}
    ) AS v(measure, value)
    WHERE {_scored_units("uc", include_constant)}
      AND v.value IS NOT NULL AND v.value <> 'NaN'::double precision{dropped}
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


def _rating_summary(consensus: float, min_raters: int) -> str:
    return f"""
SELECT
    m.name AS model,
    l.name AS layer,
    l.position AS layer_position,
    u.unit_index AS unit,
    u.id AS unit_id,
    count(*)::integer AS n_ratings,
    sum(rt.answer::integer)::integer AS n_yes,
    avg(rt.answer::integer)::double precision AS share_yes,
    {_consensus(consensus, min_raters)} AS consensus,
    ra.n_named,
    coalesce(ra.top_name,
        {_top_rated_name()}) AS top_name,
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


# The paper's Table 1, per layer: (a) share of yes, (b) share of units with a consensus
# (over the units rated by enough people to state one),
# (c-e) name agreement among consensus units, each with its standard error (Gale et al. 2020).
_RATING_LAYER_SUMMARY = """
SELECT
    model,
    layer,
    layer_position,
    count(*)::integer AS n_units,
    sum(n_ratings)::integer AS n_ratings,
    avg(share_yes) AS share_yes,
    stddev_samp(share_yes) / sqrt(count(*)) AS share_yes_se,
    avg(consensus::integer)::double precision AS share_consensus,
    sqrt(avg(consensus::integer) * (1 - avg(consensus::integer))
        / nullif(count(consensus), 0))::double precision AS share_consensus_se,
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


def _dissection_summary(iou_above: Condition) -> str:
    detector = replace(iou_above, column="iou").sql("dn")
    return f"""
SELECT
    dn.run_id,
    m.name AS model,
    l.name AS layer,
    l.position AS layer_position,
    count(DISTINCT dn.unit_id)::integer AS n_units,
    count(DISTINCT dn.unit_id) FILTER (WHERE dn.rank = 1 AND {detector})::integer
        AS n_detectors,
    count(DISTINCT dn.concept_id) FILTER (WHERE dn.rank = 1 AND {detector})::integer
        AS n_unique_concepts
FROM dissection dn
JOIN unit u ON u.id = dn.unit_id
JOIN layer l ON l.id = u.layer_id
JOIN model m ON m.id = l.model_id
GROUP BY dn.run_id, m.name, l.name, l.position
"""


#: The columns of `unit_catalogue` whose changes the `layer_detectors` cache follows
#: (`catalogue.db.summaries`): a scoring run's measures, the best IoU, the unit's names.
_CACHE_FOLLOWS: frozenset[str] = frozenset(
    {"run_id", "model", "layer", "layer_position", "best_iou"} | {m.name for m in UNIT_MEASURES}
)


def _layer_detectors_live(criteria: Sequence[Criterion], run: str) -> str:
    """The per-layer counts and medians of the units of scoring run `run`.

    The same rows as grouping `unit_catalogue` by layer, but reached from the run's own
    `unit_metrics` rows: each row finds its layer and its best IoU by one index lookup
    (scalar subqueries, so the plan never scans every unit of the catalogue), the layer
    and model names are joined once per layer. A hash join of `unit_catalogue` read the
    whole `unit` and `unit_best_concept` tables for every run: a cost that grew with the
    catalogue, not the run (bench/db.py).
    """
    live = NOT_CONSTANT.sql()
    counts = [c for c in criteria if c.count_column]
    unfollowed = sorted({col for c in counts for col in c.columns} - _CACHE_FOLLOWS)
    if unfollowed:
        raise ValueError(
            f"layer_detectors would count {', '.join(unfollowed)}, which the triggers of "
            "catalogue.db.summaries do not follow; make them follow it first."
        )
    by_name = {m.name: m for m in UNIT_MEASURES}
    named = sorted(
        {
            col
            for c in counts
            for col in c.columns
            if col in by_name and by_name[col].kind == "class"
        }
    )
    if named:
        raise ValueError(f"layer_detectors cannot count on class columns ({', '.join(named)}).")
    count_sql = ",\n            ".join(
        f"count(*) FILTER (WHERE {live} AND {c.sql()})::integer AS {c.count_column}" for c in counts
    )
    medians = ",\n            ".join(
        f"percentile_cont(0.5) WITHIN GROUP (ORDER BY {m}) FILTER (WHERE {live}) AS median_{m}"
        for m in _LAYER_MEDIANS
    )
    return f"""SELECT
        s.run_id,
        m.name AS model,
        l.name AS layer,
        l.position AS layer_position,
        s.n_units,
        s.n_constant,
        {", ".join(f"s.{c.count_column}" for c in counts)},
        {", ".join(f"s.median_{m}" for m in _LAYER_MEDIANS)}
    FROM (
        SELECT
            run_id,
            layer_id,
            count(*)::integer AS n_units,
            count(*) FILTER (WHERE constant IS TRUE)::integer AS n_constant,
            {count_sql},
            {medians}
        FROM (
            SELECT
                um.*,
                (SELECT u.layer_id FROM unit u WHERE u.id = um.unit_id) AS layer_id,
                (SELECT best.iou FROM unit_best_concept best WHERE best.unit_id = um.unit_id)
                    AS best_iou
            FROM unit_metrics um
            WHERE um.run_id = {run}
        ) units
        GROUP BY run_id, layer_id
    ) s
    JOIN layer l ON l.id = s.layer_id
    JOIN model m ON m.id = l.model_id"""


_LAYER_MEDIANS: tuple[str, ...] = ("max_informedness", "false_alarm_rate", "recall_at_mi")


def _layer_detectors(criteria: Sequence[Criterion]) -> str:
    """The paper's point in one table: how many "object detectors" each criterion finds in
    a layer, next to the signal-detection measures that show what they are worth. Counts
    and medians are over the layer's units that are not constant (`n_constant` of them are).

    A scoring run's rows come from `layer_detectors_cache` (the rows this SELECT gave, kept
    by the triggers of `catalogue.db.summaries`) or, for a run with nothing cached (its
    rows changed in this transaction), are computed from `unit_catalogue`.
    """
    typed = [
        ("run_id", "integer"),
        ("model", "text"),
        ("layer", "text"),
        ("layer_position", "integer"),
        ("n_units", "integer"),
        ("n_constant", "integer"),
        *((c.count_column, "integer") for c in criteria if c.count_column),
        *((f"median_{m}", "double precision") for m in _LAYER_MEDIANS),
    ]
    cached = ",\n    ".join(
        f"c.summary ->> '{name}' AS {name}"
        if type_ == "text"
        else f"(c.summary ->> '{name}')::{type_} AS {name}"
        for name, type_ in typed
    )
    return f"""
SELECT
    {cached}
FROM layer_detectors_cache c
UNION ALL
SELECT live.*
FROM run r
CROSS JOIN LATERAL (
    {_layer_detectors_live(criteria, "r.id")}
) live
WHERE EXISTS (SELECT 1 FROM unit_metrics um WHERE um.run_id = r.id)
    AND NOT EXISTS (SELECT 1 FROM layer_detectors_cache c WHERE c.run_id = r.id)
"""


# Every run with the status it reads as, its provenance (`catalogue.provenance`) and, for an
# imported run, where it came from (`catalogue.share`): `running` while its owner's session holds the
# run's advisory lock (keyed by the run key's first 16 hex digits: classid the first 8,
# objid the next 8), `interrupted` when it is recorded as running but nobody holds the lock
# (its process or the server died); `catalogue.db.runs` explains why the lock is the lease.
_RUN_STATUS = """
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
"""


def build_views(
    measures: Sequence[Measure] = UNIT_MEASURES,
    criteria: Sequence[Criterion] = CRITERIA,
    *,
    iou_above: Condition = IOU_ABOVE,
    consensus_share: float = RATING_CONSENSUS_SHARE,
    min_raters: int = RATING_MIN_RATERS,
    summarised: Sequence[str] = SUMMARISED_MEASURES,
    correlated: Sequence[str] = CORRELATED_MEASURES,
    importance_class: dict[str, str] = IMPORTANCE_CLASS,
) -> dict[str, View]:
    """Every view, name -> View, in creation order (a view comes after the views it reads).

    The defaults are the registries; other arguments describe a registry that does
    not exist yet (the tests use them to write a revision for a changed threshold).
    """
    by_key = {c.key: c for c in criteria}
    views = (
        View("twoafc_participant_check", twoafc_views.participant_check_select()),
        View(
            "twoafc_unit_accuracy",
            twoafc_views.unit_accuracy_select(),
            ("twoafc_participant_check",),
        ),
        View("twoafc_unit_summary", twoafc_views.UNIT_SUMMARY, ("twoafc_unit_accuracy",)),
        View(
            "unit_catalogue",
            _unit_catalogue(measures, iou_above, consensus_share, min_raters),
            ("twoafc_unit_accuracy",),
        ),
        View(
            "misleading_detectors", _misleading_detectors(by_key["misleading"]), ("unit_catalogue",)
        ),
        View("layer_summary", layer_summary_select(summarised), ("unit_catalogue",)),
        View("unit_importance", unit_importance_select(measures)),
        View(
            "measure_correlations",
            measure_correlations_select(correlated),
            ("unit_catalogue", "unit_importance"),
        ),
        View("rating_summary", _rating_summary(consensus_share, min_raters)),
        View("rating_layer_summary", _RATING_LAYER_SUMMARY, ("rating_summary",)),
        View("dissection_summary", _dissection_summary(iou_above)),
        View(
            "layer_detectors",
            _layer_detectors(criteria),
            ("unit_catalogue",),
            refresh=summaries.REFRESH,
        ),
        View(
            "selectivity_vs_importance",
            selectivity_vs_importance_select(importance_class),
            ("unit_importance",),
        ),
        View("layer_baselines", layer_baselines_select(criteria, measures), ("layer_detectors",)),
        View("run_status", _RUN_STATUS),
    )
    return {v.name: v for v in views}


#: The current views, name -> View, in creation order.
VIEWS: dict[str, View] = build_views()


def create_statement(name: str, select: str) -> str:
    return f"CREATE VIEW {name} AS\n{select.strip()};"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m catalogue.db.views",
        description="Print the current view SQL, or write the revision that brings the views "
        "of the head migration up to it.",
    )
    parser.add_argument("views", nargs="*", help="views to print (default: all)")
    parser.add_argument("--revision", metavar="MESSAGE", help="make a new revision")
    parser.add_argument(
        "--write", action="store_true", help="with --revision: write it to migrations/versions"
    )
    args = parser.parse_args(argv)
    if args.revision is not None:
        print(make_revision(args.revision, VIEWS, write=args.write), end="")
        return 0
    unknown = sorted(set(args.views) - set(VIEWS))
    if unknown:
        parser.error(f"no view named {', '.join(unknown)}; views: {', '.join(VIEWS)}")
    for view in VIEWS.values():
        if not args.views or view.name in args.views:
            print(create_statement(view.name, view.select) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
