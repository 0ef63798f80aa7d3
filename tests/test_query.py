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
    assert precision.startswith(":green[:material/check_circle:] ")
    assert precision.endswith(f"({CRITERIA_BY_KEY['precision'].source}) — monarch butterfly")
    assert verdict_line(_verdict(record, "misleading")).startswith(":orange[:material/warning:]")
    assert verdict_line(_verdict({}, "iou")).startswith(":gray[:material/remove:]")


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
            literal = sum(c.test(r) is True for r in rows if r["layer"] == layer)
            assert counts.loc[layer, c.key] == literal, (c.key, layer)
    assert counts.loc["conv5", "misleading"] == counts.loc["fc6", "misleading"] == 1

    report = run_report(engine, "toynet", catalogue.score_run)
    engine.dispose()
    for row in report.layers:
        for c in CRITERIA:
            if c.count_column:
                assert row[c.count_column] == counts.loc[row["layer"], c.key], c.key
    assert report.n_misleading == len(report.misleading) == 2  # conv5.1 and fc6.3
    assert {(r["layer"], r["unit"]) for r in report.misleading} == {("conv5", 1), ("fc6", 3)}
    assert all(r["precision"] > 0.75 for r in report.worst_precision_detectors)


def test_the_headline_query_returns_the_misleading_units(catalogue: UICatalogue) -> None:
    assert HEADLINE_SQL.endswith(f"WHERE {CRITERIA_BY_KEY['misleading'].sql()}")
    engine = create_engine(catalogue.url, poolclass=NullPool)
    with engine.connect() as conn:
        rows = conn.execute(text(HEADLINE_SQL)).all()
    engine.dispose()
    # one row per unit and scoring run: conv5.1, and fc6.3 in both runs
    assert sorted((r.layer, r.unit) for r in rows) == sorted((la, u) for la, u, _ in MISLEADING)
