"""The Rate page's 2-AFC protocol driven by a simulated participant (AppTest on the real
app) against a real scored catalogue: what they see, and what lands in the database."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from streamlit.testing.v1 import AppTest

from catalogue.pipeline.twoafc.study import build_study
from catalogue.query.twoafc import find_study, study_trials
from catalogue.twoafc.design import DesignOptions
from tests.markdown_text import as_read
from tests.twoafc_fixtures import TwoAFCTemplate

APP = Path(__file__).resolve().parents[1] / "ui" / "app.py"
PAGE = "app_pages/rate.py"
TIMEOUT = 60


@pytest.fixture
def study(engine: Engine, twoafc_template: TwoAFCTemplate) -> str:
    """A study of conv5 in the test's database (`engine`, a clone of `twoafc_template`)."""
    c = twoafc_template.catalogue
    build_study(
        engine, c.score_run, [("conv5", None)], name="page",
        options=DesignOptions(task_size=2, catch_trials=1, seed=3),
    )  # fmt: skip
    return "page"


def _open(participant: str | None = None, *, study_mode: bool = False) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.query_params["protocol"] = "2afc"
    at.query_params["study_name"] = "page"
    if study_mode:
        at.query_params["study"] = "1"
    if participant is not None:
        at.query_params["participant"] = participant
    at.switch_page(PAGE)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _click(at: AppTest, key: str) -> None:
    at.button(key=key).click().run()
    assert not at.exception, [e.value for e in at.exception]


def _responses(engine: Engine, code: str) -> list:
    with engine.connect() as conn:
        return conn.execute(
            text(
                "SELECT t.task, t.position, t.max_query_first, r.chose_max, r.confidence, "
                "r.rt_ms, r.source FROM twoafc_response r JOIN twoafc_trial t ON t.id = r.trial_id "
                "JOIN participant p ON p.id = r.participant_id WHERE p.code = :c ORDER BY r.id"
            ),
            {"c": code},
        ).all()


def test_a_participant_answers_resumes_and_finishes(engine: Engine, study: str) -> None:
    at = _open(study_mode=True)
    assert at.title[0].value == "Image study"
    at.text_input(key="twoafc_code_input").input("p-app")
    _click(at, "twoafc_start_button")
    trials = [t for t in study_trials(engine, find_study(engine, study).id) if t.task == 1]
    assert len(trials) == 3  # 2 units and a catch trial
    assert "Trial 1 of 3" in at.get("progress")[0].proto.text
    # nothing names the model, layer, unit or study
    shown = " ".join(str(m.value) for m in (*at.markdown, *at.caption, *at.title))
    for word in ("afcnet", "conv5", "class", "page"):
        assert word not in shown
    _click(at, "twoafc_upper_3")
    _click(at, "twoafc_lower_1")
    rows = _responses(engine, "p-app")
    assert [(r.task, r.position) for r in rows] == [(1, 1), (1, 2)]
    # upper is the strongly activating query exactly when it is shown first
    assert [r.chose_max for r in rows] == [trials[0].max_query_first, not trials[1].max_query_first]
    assert [r.confidence for r in rows] == [3, 1]
    assert all(r.rt_ms is not None and r.rt_ms >= 0 and r.source == "ui" for r in rows)
    assert any(s.value in ("Right.",) for s in at.success) or any(
        e.value == "Not this time." for e in at.error
    )
    again = _open("p-app", study_mode=True)  # a reload: the code from the URL, the next trial
    assert "Trial 3 of 3" in again.get("progress")[0].proto.text
    _click(again, "twoafc_upper_2")
    assert "you are done" in again.success[-1].value
    assert len(_responses(engine, "p-app")) == 3


def test_the_next_participant_gets_the_next_task(engine: Engine, study: str) -> None:
    for code in ("first", "second"):
        at = _open()
        at.text_input(key="twoafc_code_input").input(code)
        _click(at, "twoafc_start_button")
        _click(at, "twoafc_upper_1")
    assert [r.task for r in _responses(engine, "first")] == [1]
    assert [r.task for r in _responses(engine, "second")] == [2]


def test_an_unknown_study_is_named_and_the_am_page_links_the_studies(
    engine: Engine, study: str
) -> None:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.query_params["protocol"] = "2afc"
    at.query_params["study_name"] = "nope"
    at.switch_page(PAGE)
    at.run()
    assert "no 2-AFC study named 'nope'" in as_read(at.info[0].value)
    am = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    am.switch_page(PAGE)
    am.run()
    assert not am.exception
    assert am.title[0].value == "Rate AM panels"


def _answer_all(engine: Engine, codes: tuple[str, ...]) -> None:
    from catalogue.pipeline.twoafc.study import enrol, progress, record_response

    study = find_study(engine, "page")
    for i, code in enumerate(codes):
        who = enrol(engine, study, code)
        for j, t in enumerate(progress(engine, who).trials):
            record_response(engine, who, t, chose_max=t.catch or (i + j) % 3 != 0, confidence=2)


def test_the_unit_and_measures_pages_show_the_2afc_answers(engine: Engine, study: str) -> None:
    _answer_all(engine, ("a1", "a2", "a3", "a4"))
    trial = next(t for t in study_trials(engine, find_study(engine, study).id) if not t.catch)
    with engine.connect() as conn:
        run_id = conn.execute(text("SELECT score_run_id FROM twoafc_study")).scalar_one()
        n = conn.execute(
            text("SELECT n_responses FROM twoafc_unit_accuracy WHERE unit_id = :u"),
            {"u": trial.unit_id},
        ).scalar_one()
    unit = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    unit.query_params["unit_id"] = str(trial.unit_id)
    unit.query_params["run_id"] = str(run_id)
    unit.switch_page("app_pages/unit.py")
    unit.run()
    assert not unit.exception, [e.value for e in unit.exception]
    assert "Human 2-AFC (natural exemplars)" in [s.value for s in unit.subheader]
    metrics = {m.label: m.value for m in unit.metric}
    assert metrics["Answers counted"] == str(n) and n == 2  # two people's task showed it
    assert any(f"trial {trial.position} (batch 0)" in e.label for e in unit.expander)
    measures = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    measures.query_params["run_id"] = str(run_id)
    measures.query_params["layer"] = "conv5"
    measures.switch_page("app_pages/measures.py")
    measures.run()
    assert not measures.exception, [e.value for e in measures.exception]
    assert "Does selectivity predict human 2-AFC accuracy?" in [s.value for s in measures.subheader]
    table = next(d for d in measures.dataframe if "predictor" in d.value.columns)
    frame = table.value
    assert list(frame["predictor"])[:3] == ["Top-60 precision", "CCMAS", "Max informedness"]
    assert set(frame["units"]) <= {4} and frame["units"].iloc[0] == 4
