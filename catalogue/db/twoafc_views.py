"""The SQL of the 2-AFC views, generated from the thresholds of `catalogue.measures`.

`catalogue.db.views` assembles every view; the 2-AFC study's are kept here:

- `twoafc_participant_check`: per study and participant, their answers to the main and
  to the catch trials and whether they pass: at least `TWOAFC_CATCH_PASS_SHARE` of the
  catch trials they answered were answered correctly (IMI's exclusion criterion,
  Zimmermann et al. 2023, applied per study). A participant who has answered no catch
  trial yet does not pass: their answers count once a catch trial shows they attend.
- `twoafc_unit_accuracy`: per unit, over the main trials of every study answered by
  participants who pass: responses, correct ones, the share correct (the unit's human
  2-AFC accuracy), the two-sided 95 % Wilson score interval of that share, the people
  behind it, and the responses left out (of participants who do not pass). Grouped by
  the unit id alone, so a query of `unit_catalogue` that reads none of its columns does
  not compute it (PostgreSQL removes the join).
- `twoafc_unit_summary`: the same with the unit's model, layer and index.

Why Wilson: the interval of a proportion from n answers that stays inside [0, 1] and
keeps close to its nominal coverage for the small n of a study (about 30 answers per
unit in IMI) and for shares near 0 or 1, where the normal approximation fails (Brown,
Cai & DasGupta 2001). With k of n correct, z = Φ⁻¹(0.975):
(k + z²/2 ± z·sqrt(k(n − k)/n + z²/4)) / (n + z²).
"""

from __future__ import annotations

from catalogue.measures import TWOAFC_CATCH_PASS_SHARE, TWOAFC_INTERVAL_Z

#: The name `measure_correlations` gives the overall accuracy drop of an ablated unit.
ABLATION_DROP = "ablation_drop"

#: `unit_catalogue`'s 2-AFC columns, from `twoafc_unit_accuracy` joined as `h2`.
UNIT_CATALOGUE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("human_2afc_accuracy", "h2.accuracy"),
    ("human_2afc_n", "h2.n_responses"),
    ("human_2afc_ci_low", "h2.ci_low"),
    ("human_2afc_ci_high", "h2.ci_high"),
)


def unit_catalogue_columns() -> str:
    return ",\n    ".join(f"{source} AS {name}" for name, source in UNIT_CATALOGUE_COLUMNS)


def unit_catalogue_join(unit_id: str) -> str:
    return f"LEFT JOIN twoafc_unit_accuracy h2 ON h2.unit_id = {unit_id}"


def participant_check_select(pass_share: float = TWOAFC_CATCH_PASS_SHARE) -> str:
    correct = "count(*) FILTER (WHERE t.catch AND r.chose_max)"
    catch = "count(*) FILTER (WHERE t.catch)"
    return f"""
SELECT
    s.id AS study_id,
    s.name AS study,
    r.participant_id,
    p.code AS participant,
    a.task,
    count(*) FILTER (WHERE NOT t.catch)::integer AS n_main,
    count(*) FILTER (WHERE NOT t.catch AND r.chose_max)::integer AS n_main_correct,
    {catch}::integer AS n_catch,
    {correct}::integer AS n_catch_correct,
    ({correct}::numeric / nullif({catch}, 0))::double precision AS catch_share,
    coalesce({correct}::numeric / nullif({catch}, 0) >= {pass_share!r}, false) AS passed
FROM twoafc_response r
JOIN twoafc_trial t ON t.id = r.trial_id
JOIN twoafc_study s ON s.id = t.study_id
JOIN participant p ON p.id = r.participant_id
LEFT JOIN twoafc_assignment a ON a.study_id = t.study_id AND a.participant_id = r.participant_id
GROUP BY s.id, s.name, r.participant_id, p.code, a.task
"""


def _wilson(k: str, n: str, z: float, sign: str) -> str:
    """One bound of the Wilson score interval of k successes in n > 0 trials."""
    z2 = z * z
    k, n = f"({k})::double precision", f"({n})::double precision"
    return (
        f"({k} + {z2 / 2!r} {sign} {z!r} * sqrt({k} * ({n} - {k}) / {n} + {z2 / 4!r}))"
        f" / ({n} + {z2!r})"
    )


def unit_accuracy_select(z: float = TWOAFC_INTERVAL_Z) -> str:
    n = "count(*) FILTER (WHERE c.passed)"
    k = "count(*) FILTER (WHERE c.passed AND r.chose_max)"
    low = f"greatest(0.0, {_wilson(k, n, z, '-')})"
    high = f"least(1.0, {_wilson(k, n, z, '+')})"
    return f"""
SELECT
    t.unit_id,
    {n}::integer AS n_responses,
    {k}::integer AS n_correct,
    ({k}::numeric / nullif({n}, 0))::double precision AS accuracy,
    CASE WHEN {n} > 0 THEN {low} END AS ci_low,
    CASE WHEN {n} > 0 THEN {high} END AS ci_high,
    count(DISTINCT r.participant_id) FILTER (WHERE c.passed)::integer AS n_participants,
    count(*) FILTER (WHERE NOT c.passed)::integer AS n_excluded
FROM twoafc_response r
JOIN twoafc_trial t ON t.id = r.trial_id
JOIN twoafc_participant_check c
    ON c.study_id = t.study_id AND c.participant_id = r.participant_id
WHERE NOT t.catch
GROUP BY t.unit_id
"""


UNIT_SUMMARY = """
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
"""


def ablation_drop_long(not_constant: str) -> str:
    """`measure_correlations`' long rows of the ablation measure: per scoring run and unit,
    the overall accuracy drop when the unit is removed, from the newest ablation run that
    names the scoring run (`unit_importance`)."""
    return f"""SELECT ui.score_run_id AS run_id, ui.model, ui.layer, ui.unit_id,
           '{ABLATION_DROP}' AS measure, -ui.accuracy_change AS value
    FROM (
        SELECT DISTINCT ON (score_run_id, unit_id) *
        FROM unit_importance
        WHERE score_run_id IS NOT NULL
        ORDER BY score_run_id, unit_id, run_id DESC
    ) ui
    WHERE {not_constant}
      AND ui.accuracy_change IS NOT NULL AND ui.accuracy_change <> 'NaN'::double precision"""
