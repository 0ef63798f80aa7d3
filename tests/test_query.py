"""The read side generated from the detector criteria (`catalogue.measures.CRITERIA`):
Search presets, Unit-page verdicts, Layers-page counts and the pipeline report.

Expected values come from the criteria's definitions written out as plain
comparisons on values read with plain SQL, or from the UI test catalogue's design
(tests/ui_fixtures.py), never from the code under test.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.pool import NullPool
from sqlalchemy.sql import ClauseElement

from catalogue.errors import InputError
from catalogue.measures import CRITERIA, CRITERIA_BY_KEY, Condition, Criterion
from catalogue.query.layers import detector_criteria, layer_detector_counts
from catalogue.query.report import HEADLINE_SQL, run_report
from catalogue.query.search import PRESETS, UnitFilter, filter_conditions
from catalogue.query.units import Verdict, detector_verdicts
from catalogue.query.views import UNIT_CATALOGUE
from tests.ui_fixtures import FC6_3, MISLEADING, UICatalogue
from ui.display import criterion_short_label, verdict_line


def _sql(clause: ClauseElement) -> str:
    return str(clause.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))


# ----------------------------------------------------------------------- presets


def test_every_criterion_has_a_preset_with_its_condition() -> None:
    by_criterion = {p.criterion.key: p for p in PRESETS.values()}
    assert set(by_criterion) == {c.key for c in CRITERIA}
    for c in CRITERIA:
        preset = by_criterion[c.key]
        assert preset.label == c.label
        assert c.source in preset.description
        assert _sql(preset.condition(UNIT_CATALOGUE)) == _sql(c.core(UNIT_CATALOGUE.c))
    # the names links use (?preset=…) stay as they were, the headline first
    assert list(PRESETS) == [
        "misleading",
        "precision",
        "ccmas",
        "localist",
        "dissection",
        "interpretable",
        "detector_bar",
    ]


def test_an_unknown_preset_is_refused_with_the_choices() -> None:
    with pytest.raises(InputError, match="no preset 'nope'; choose one of misleading"):
        filter_conditions(UnitFilter(preset="nope"))


# ---------------------------------------------------------------------- verdicts


def _verdict(record: dict[str, Any], key: str) -> Verdict:
    (found,) = [v for v in detector_verdicts(record) if v.criterion.key == key]
    return found


def test_every_criterion_gives_a_verdict() -> None:
    verdicts = detector_verdicts({})
    assert [v.criterion for v in verdicts] == list(CRITERIA)
    assert all(v.holds is None for v in verdicts)  # nothing measured: no verdict


def test_a_unit_failing_precision_gets_false_with_its_value() -> None:
    record = {"precision": 0.5, "precision_class": "dog", "false_alarm_rate": 0.95}
    verdict = _verdict(record, "precision")
    assert verdict.holds is False
    assert verdict.values == {"precision": 0.5}
    assert verdict.subject == "dog"
    misleading = _verdict(record, "misleading")
    assert misleading.holds is False  # not a precision detector, however many false alarms
    assert misleading.values == {"precision": 0.5, "false_alarm_rate": 0.95}


def test_verdicts_on_the_papers_unit_and_on_missing_values() -> None:
    record = {**FC6_3, "precision_class": "monarch butterfly", "ccmas": math.nan}
    assert _verdict(record, "precision").holds is True  # .776
    assert _verdict(record, "misleading").holds is True  # and a false-alarm rate of .902
    assert _verdict(record, "ccmas").holds is None  # NaN: undefined, not False
    assert _verdict(record, "iou").holds is None  # not dissected
    assert _verdict({"localist": False}, "localist").holds is False
    assert _verdict({"rating_consensus": True, "rating_top_name": "sky"}, "consensus").holds


def test_verdict_lines_flag_misleading_detectors_with_a_warning() -> None:
    record = {**FC6_3, "precision_class": "monarch butterfly"}
    precision = verdict_line(_verdict(record, "precision"))
    assert precision == (
        ":green[:material/check_circle:] Top-60 precision > 0.75 (Zhou et al. 2015) — "
        "**passes**: precision = 0.776 > 0.75 — monarch butterfly"
    )
    assert verdict_line(_verdict(record, "misleading")) == (
        ":orange[:material/warning:] Precision > 0.75 but false-alarm rate > 0.9 "
        "(Gale et al. 2020) — **holds: a doubtful detector**: precision = 0.776 > 0.75 and "
        "false_alarm_rate = 0.902 > 0.9 — monarch butterfly"
    )
    assert verdict_line(_verdict({}, "iou")) == (
        ":gray[:material/remove:] Dissection IoU > 0.04 (Bau, Zhou et al. 2017) — "
        "**not measured**: best_iou not measured"
    )


def test_a_unit_that_fails_precision_gets_no_green_check_and_its_values() -> None:
    """Two cases: a unit with precision .33 and informedness .23, and one with 84.7 %
    false alarms: each verdict names the rule, the threshold, the value and pass/fail."""
    record = {
        "precision": 0.33,
        "precision_class": "sandal",
        "ccmas": 0.41,
        "false_alarm_rate": 0.847,
        "max_informedness": 0.23,
        "localist": False,
        "detector_bar": 0.38,
        "detector_bar_class": "sandal",
    }
    lines = {v.criterion.key: verdict_line(v) for v in detector_verdicts(record)}
    assert lines["precision"] == (
        ":red[:material/cancel:] Top-60 precision > 0.75 (Zhou et al. 2015) — **fails**: "
        "precision = 0.33, not > 0.75"
    )
    assert lines["misleading"].startswith(":gray[:material/cancel:] ")
    assert (
        "**does not hold**: precision = 0.33, not > 0.75 and false_alarm_rate = 0.847, not > 0.9"
        in (lines["misleading"])
    )
    assert lines["detector_bar"].endswith("**fails**: detector_bar = 0.38, not > 0.5")
    assert not any(":green[" in line for line in lines.values())


# ------------------------------------------------------------------ layer counts


def test_layer_criteria_are_the_registry_and_the_chosen_informedness_cut_off() -> None:
    criteria = detector_criteria(0.65)
    assert criteria[: len(CRITERIA)] == list(CRITERIA)
    (extra,) = criteria[len(CRITERIA) :]
    assert extra.conditions == (Condition("max_informedness", ">", 0.65),)
    assert criterion_short_label(extra) == "max informedness > 0.65"
    for bad in (math.nan, math.inf):
        with pytest.raises(InputError, match="finite"):
            detector_criteria(bad)


def test_short_labels_are_built_from_the_conditions() -> None:
    made_up = Criterion(
        "x",
        "X",
        "nobody",
        "",
        (
            Condition("ccmas", ">=", 0.5),
            Condition("best_iou", "<", 0.25),
            Condition("localist", "is true"),
        ),
    )
    assert criterion_short_label(made_up) == "CCMAS >= 0.5 & IoU < 0.25 & localist"
    for c in CRITERIA:
        label = criterion_short_label(c)
        assert label.count("&") == len(c.conditions) - 1
        for condition in c.conditions:
            if condition.value is not None:
                assert f"{condition.value:g}" in label


def test_layer_counts_agree_with_each_criterion_applied_to_the_stored_values(
    catalogue: UICatalogue,
) -> None:
    engine = create_engine(catalogue.url, poolclass=NullPool)
    counts = layer_detector_counts(engine, catalogue.score_run, mi_cutoff=0.6).set_index("layer")
    with engine.connect() as conn:
        rows = [
            dict(r)
            for r in conn.execute(
                text("SELECT * FROM unit_catalogue WHERE run_id = :r"), {"r": catalogue.score_run}
            ).mappings()
        ]
    for c in detector_criteria(0.6):
        for layer in ("conv5", "fc6"):
            live = [r for r in rows if r["layer"] == layer and not r["constant"]]
            literal = sum(c.test(r) is True for r in live)
            assert counts.loc[layer, c.key] == literal, (c.key, layer)
    assert counts["n_constant"].to_dict() == {"conv5": 1, "fc6": 0}  # conv5.5 is dead
    assert counts["n_units"].to_dict() == {"conv5": 6, "fc6": 8}
    assert counts.loc["conv5", "misleading"] == counts.loc["fc6", "misleading"] == 1

    report = run_report(engine, "toynet", catalogue.score_run)
    with engine.connect() as conn:
        dissected = set(conn.execute(text("SELECT layer FROM dissection_summary")).scalars())
    engine.dispose()
    for row in report.layers:
        for c in CRITERIA:
            if c.key == "iou" and row["layer"] not in dissected:
                assert row[c.count_column] is None  # shown as "—", not as 0 detectors
            elif c.count_column:
                assert row[c.count_column] == counts.loc[row["layer"], c.key], c.key
    assert report.n_misleading == len(report.misleading) == 2  # conv5.1 and fc6.3
    assert {(r["layer"], r["unit"]) for r in report.misleading} == {("conv5", 1), ("fc6", 3)}
    assert all(r["precision"] > 0.75 for r in report.worst_precision_detectors)


def test_the_headline_query_returns_the_misleading_units(catalogue: UICatalogue) -> None:
    assert HEADLINE_SQL.endswith(
        f"WHERE {CRITERIA_BY_KEY['misleading'].sql()} AND constant IS NOT TRUE"
    )
    engine = create_engine(catalogue.url, poolclass=NullPool)
    with engine.connect() as conn:
        rows = conn.execute(text(HEADLINE_SQL)).all()
    engine.dispose()
    # one row per unit and scoring run: conv5.1, and fc6.3 in both runs
    assert sorted((r.layer, r.unit) for r in rows) == sorted((la, u) for la, u, _ in MISLEADING)


# ------------------------------------------------------------------ constant units


def test_views_leave_constant_units_out_of_counts_summaries_and_correlations(engine) -> None:
    """Two constant units that would pass precision and the misleading rule: the views
    count them apart (n_constant) and leave them out of every count, median, summary and
    correlation; the read API puts them back when asked."""
    import numpy as np

    from catalogue.query.layers import layer_summary, measure_correlations
    from catalogue.query.search import search_units
    from tests.catalogue_builders import register_toy, write_scores

    model, dataset = register_toy(engine, layers=(("fc6", "fc", 6),))
    precision = [0.8, 0.2, 0.9, 0.4, 0.95, 0.95]
    false_alarms = [0.95, 0.5, 0.3, 0.7, 0.99, 0.99]
    constant = [False, False, False, False, True, True]
    run = write_scores(
        engine,
        model,
        dataset,
        "fc6",
        {
            "precision": precision,
            "false_alarm_rate": false_alarms,
            "detector_bar": [0.6, 0.2, 0.7, 0.1, 0.9, 0.9],
            "constant": constant,
        },
    )
    live = ~np.array(constant)
    with engine.connect() as conn:
        row = conn.execute(text("SELECT * FROM layer_detectors")).mappings().one()
        summary = conn.execute(
            text("SELECT n, max FROM layer_summary WHERE measure = 'precision'")
        ).one()
        pair = conn.execute(
            text(
                "SELECT n, pearson FROM measure_correlations "
                "WHERE measure_a = 'false_alarm_rate' AND measure_b = 'precision'"
            )
        ).one()
        misleading = conn.execute(text("SELECT unit FROM misleading_detectors")).scalars().all()
    assert (row["n_units"], row["n_constant"]) == (6, 2)
    assert (row["n_precision"], row["n_misleading"], row["n_detector_bar"]) == (2, 1, 2)
    assert row["median_false_alarm_rate"] == pytest.approx(np.median(np.array(false_alarms)[live]))
    assert tuple(summary) == (4, 0.9)
    literal = np.corrcoef(np.array(false_alarms)[live], np.array(precision)[live])[0, 1]
    assert pair.n == 4 and pair.pearson == pytest.approx(literal)
    assert misleading == [0]

    everything = layer_summary(engine, run, ["precision"], include_constant=True)
    assert (int(everything["n"].iloc[0]), everything["max"].iloc[0]) == (6, 0.95)
    assert layer_summary(engine, run, ["precision"])["n"].iloc[0] == 4
    pairs = measure_correlations(engine, run, "fc6", include_constant=True)
    pairs = pairs.set_index(["measure_a", "measure_b"]).loc[("false_alarm_rate", "precision")]
    assert pairs["n"] == 6
    assert pairs["pearson"] == pytest.approx(np.corrcoef(false_alarms, precision)[0, 1])
    counts = layer_detector_counts(engine, run, include_constant=True)
    assert (counts["precision"].iloc[0], counts["misleading"].iloc[0]) == (4, 3)
    assert layer_detector_counts(engine, run)["precision"].iloc[0] == 2
    preset = search_units(engine, UnitFilter(preset="misleading"))
    assert preset.frame["unit"].tolist() == [0] and preset.n_constant_left_out == 2
