"""The Rate page driven by simulated participants (AppTest on the real app) against a real
catalogue with real PNG panels: what they see, and what lands in the database."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Engine, text
from streamlit.testing.v1 import AppTest

from catalogue.am import save_panel
from catalogue.config import get_settings
from catalogue.db.runs import recorded_run
from catalogue.pipeline.ratings import (
    StudyDesign,
    design_study,
    enrol,
    import_ratings,
    next_panel,
)
from catalogue.query.ratings import study_panels
from catalogue.ratings import ESTIMATE_BINS, estimate_label, parse_ratings_csv
from tests.catalogue_builders import register_toy

APP = Path(__file__).resolve().parents[1] / "ui" / "app.py"
PAGE = "app_pages/rate.py"
TIMEOUT = 60
PANELS = {"conv5": [0, 1, 2, 3], "fc6": [0, 1, 2]}  # 7 panels: 3 practice, a list of 4


@pytest.fixture
def own_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("UNITCAT_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def catalogue(engine: Engine, own_home: Path) -> StudyDesign:
    """The toy model with a real 2 × 2 PNG panel for each unit in PANELS, in one am run per layer."""
    model, _ = register_toy(engine)
    rng = np.random.default_rng(0)
    artifacts = get_settings().artifacts_dir
    for layer, units in PANELS.items():
        record = model.layer(layer)

        def write(conn, run_id, layer=layer, units=units, record=record) -> None:
            for u in units:
                relative = f"am/toy/{layer}/unit-{u}-run{run_id}.png"
                save_panel(rng.random((4, 3, 8, 8)), artifacts / relative, rows=2, cols=2)
                conn.execute(
                    text(
                        "INSERT INTO am_panel (run_id, unit_id, method, path, activations) "
                        "VALUES (:r, :u, 'test', :p, :a)"
                    ),
                    {"r": run_id, "u": int(record.unit_ids[u]), "p": relative, "a": [1.0] * 4},
                )

        with recorded_run(engine, "am", {"layer": layer}, model_id=model.id) as run:
            run.complete(write)
    return design_study(study_panels(engine))


@pytest.fixture
def app(database_url: str) -> Callable[..., AppTest]:
    """A fresh browser session on the Rate page (optionally with ?participant=CODE)."""

    def open_page(participant: str | None = None) -> AppTest:
        at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
        if participant is not None:
            at.query_params["participant"] = participant
        at.switch_page(PAGE)
        at.run()
        _ok(at)
        return at

    return open_page


def _ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def _heading(at: AppTest) -> str:
    return at.subheader[0].value if len(at.subheader) else ""


def _texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    parts += [i.value for i in at.info] + [w.value for w in at.warning]
    parts += [s.value for s in at.success] + [s.value for s in at.subheader]
    return "\n".join(str(p) for p in parts)


def _start(at: AppTest, code: str) -> None:
    at.text_input(key="rate_code_input").input(code)
    at.button(key="rate_start_button").click().run()
    _ok(at)


def _no(at: AppTest) -> None:
    at.button(key="rate_no").click().run()
    _ok(at)


def _yes(at: AppTest, estimate: str | None, names: str) -> None:
    at.button(key="rate_yes").click().run()
    _ok(at)
    assert "Q2. You answered ‘Yes’" in at.radio(key="rate_q2").label
    if estimate is not None:
        at.radio(key="rate_q2").set_value(estimate)
    at.text_input(key="rate_q3").input(names)
    at.button(key="rate_submit").click().run()
    _ok(at)


def _practise(at: AppTest) -> None:
    for k in range(3):
        assert _heading(at) == f"Practice trial {k + 1} of 3"
        assert "not stored" in _texts(at)
        if k == 1:
            _yes(at, "80-100", "fish, goldfish")
        else:
            _no(at)


def _ratings(engine: Engine, code: str) -> list:
    with engine.connect() as conn:
        return conn.execute(
            text(
                "SELECT r.unit_id, r.panel_id, r.answer, r.estimate, r.names, r.source "
                "FROM rating r JOIN participant p ON p.id = r.participant_id "
                "WHERE p.code = :c ORDER BY r.id"
            ),
            {"c": code},
        ).all()


def _expected_next(engine: Engine, design: StudyDesign, code: str):
    return next_panel(engine, design, enrol(engine, code, len(design.lists)))


def test_an_empty_catalogue_says_how_to_make_panels(
    app: Callable[..., AppTest], engine: Engine, own_home: Path
) -> None:
    at = app()
    assert "unitcat ingest am" in _texts(at)
    assert not [b for b in at.button if b.key and b.key.startswith("rate_")]


def test_a_participant_practises_rates_resumes_and_finishes(
    app: Callable[..., AppTest], engine: Engine, catalogue: StudyDesign
) -> None:
    design = catalogue
    own_list = design.lists[0]
    assert (len(design.practice), len(design.lists), len(own_list)) == (3, 1, 4)

    at = app()
    assert "Participant code" in at.text_input(key="rate_code_input").label
    _start(at, "alice")
    _practise(at)
    assert _ratings(engine, "alice") == []  # practice answers are not stored

    assert _heading(at) == "Panel 1 of 4"
    expected = _expected_next(engine, design, "alice")
    assert expected.panel_id == own_list[0]
    at.button(key="rate_yes").click().run()
    at.button(key="rate_submit").click().run()  # Q2 not answered: refused, nothing stored
    assert "choose a percentage" in _texts(at)
    assert _ratings(engine, "alice") == []
    at.radio(key="rate_q2").set_value("60-80")
    at.text_input(key="rate_q3").input("Dog, puppy")
    at.button(key="rate_submit").click().run()
    _ok(at)
    first = _ratings(engine, "alice")
    assert [tuple(r) for r in first] == [
        (expected.unit_id, expected.panel_id, True, "60-80", ["dog", "puppy"], "ui")
    ]

    assert _heading(at) == "Panel 2 of 4"
    _no(at)
    assert [r.unit_id for r in _ratings(engine, "alice")] == [
        design.panels[p].unit_id for p in own_list[:2]
    ]

    # a reload (a new session; the code comes back from the URL): no practice, panel 3
    again = app(participant="alice")
    assert _heading(again) == "Panel 3 of 4"
    assert "2 of 4 panels rated" in again.get("progress")[0].proto.text
    _yes(again, "0-20", "tree")
    _no(again)
    assert "Thank you, you are done" in _texts(again)
    assert "You rated 4 panels" in _texts(again)
    stored = _ratings(engine, "alice")
    assert [r.unit_id for r in stored] == [design.panels[p].unit_id for p in own_list]
    assert [(r.answer, r.estimate, r.names) for r in stored[2:]] == [
        (True, "0-20", ["tree"]),
        (False, None, []),
    ]

    finished = app(participant="alice")  # coming back after the end: still done, nothing new
    assert "Thank you, you are done" in _texts(finished)
    assert len(_ratings(engine, "alice")) == 4


def test_a_stale_second_tab_cannot_rate_a_panel_twice(
    app: Callable[..., AppTest], engine: Engine, catalogue: StudyDesign
) -> None:
    first_tab = app()
    _start(first_tab, "bob")
    _practise(first_tab)
    second_tab = app(participant="bob")  # no stored rating yet: practice again in this tab
    _practise(second_tab)
    assert _heading(first_tab) == _heading(second_tab) == "Panel 1 of 4"

    _yes(first_tab, "40-60", "car")
    _no(second_tab)  # the same panel, already answered in the first tab
    assert "already rated this panel" in _texts(second_tab)
    assert _heading(second_tab) == "Panel 2 of 4"
    stored = _ratings(engine, "bob")
    assert [(r.answer, r.estimate, r.names) for r in stored] == [(True, "40-60", ["car"])]


def test_several_participants_rate_independently(
    app: Callable[..., AppTest], engine: Engine, catalogue: StudyDesign
) -> None:
    design = catalogue
    # dora already has a rating (imported) of a unit outside the study: no practice for her
    import_ratings(
        engine,
        parse_ratings_csv(
            "participant,model,layer,unit,answer,estimate,names\ndora,toy,fc6,5,no,,\n"
        ),
    )
    answers = {"carol": ["yes", "no"], "dora": ["no", "no", "yes"], "erin": ["yes"]}
    for code, plan in answers.items():
        at = app()
        _start(at, code)
        if code != "dora":
            _practise(at)
        for k, answer in enumerate(plan):
            assert _heading(at) == f"Panel {k + 1} of 4"
            if answer == "yes":
                _yes(at, "80-100", f"{code} thing")
            else:
                _no(at)
    own_list = design.lists[0]
    for code, plan in answers.items():
        stored = [r for r in _ratings(engine, code) if r.unit_id in _list_units(design)]
        assert [r.unit_id for r in stored] == [
            design.panels[p].unit_id for p in own_list[: len(plan)]
        ]
        assert [r.answer for r in stored] == [a == "yes" for a in plan]
        assert all(r.names == [f"{code} thing"] for r in stored if r.answer)
        assert all(r.estimate == "80-100" for r in stored if r.answer)
    with engine.connect() as conn:
        per_pair = conn.execute(
            text(
                "SELECT max(n) FROM (SELECT count(*) AS n FROM rating GROUP BY participant_id, unit_id) t"
            )
        ).scalar_one()
        practice_units = [design.panels[p].unit_id for p in design.practice]
        practised = conn.execute(
            text("SELECT count(*) FROM rating WHERE unit_id = ANY(:u)"), {"u": practice_units}
        ).scalar_one()
    assert per_pair == 1
    assert practised == 0


def _list_units(design: StudyDesign) -> set[int]:
    return {design.panels[p].unit_id for lst in design.lists for p in lst}


# ---------------------------------------------------------------------------- study mode


def _study_app(
    monkeypatch: pytest.MonkeyPatch, *, server_wide: bool, page: str | None = None
) -> AppTest:
    if server_wide:
        monkeypatch.setenv("UNITCAT_STUDY", "1")  # what `unitcat ui --study` sets
    else:
        monkeypatch.delenv("UNITCAT_STUDY", raising=False)
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    if not server_wide:
        at.query_params["study"] = "1"  # a study link
    if page is not None:
        at.switch_page(page)
    at.run()
    _ok(at)
    return at


@pytest.mark.parametrize("server_wide", [True, False], ids=["unitcat-ui-study", "study-link"])
def test_study_mode_shows_the_rate_page_alone(
    database_url: str,
    catalogue: StudyDesign,
    monkeypatch: pytest.MonkeyPatch,
    server_wide: bool,
) -> None:
    at = _study_app(monkeypatch, server_wide=server_wide)
    assert [t.value for t in at.title] == ["Rate AM panels"]
    assert "Catalogue:" not in _texts(at)  # no sidebar of the catalogue
    assert not [b for b in at.button if b.key is None]  # no "Refresh data"
    _start(at, "zoe")
    assert _heading(at) == "Practice trial 1 of 3"
    # the only page this session serves is Rate (at every address of the app)
    with pytest.raises(ValueError, match=r"Known pages: \[('[^',]*/rate\.py'(, )?)+\]\.$"):
        at.switch_page("app_pages/search.py")


def test_the_chosen_answer_is_marked_and_the_bins_do_not_overlap(
    app: Callable[..., AppTest], catalogue: StudyDesign
) -> None:
    at = app()
    _start(at, "yuri")
    assert at.button(key="rate_yes").proto.type == "secondary"
    at.button(key="rate_yes").click().run()
    _ok(at)
    yes = at.button(key="rate_yes")
    assert (yes.label, yes.proto.type) == ("Yes ✓", "primary")
    radio = at.radio(key="rate_q2")
    labels = list(radio.options)  # as shown
    assert labels == ["0–20%", "21–40%", "41–60%", "61–80%", "81–100%"]
    assert labels == [estimate_label(b) for b in ESTIMATE_BINS]
    edges = [tuple(int(x) for x in label.rstrip("%").split("–")) for label in labels]
    assert all(a[1] < b[0] for a, b in itertools.pairwise(edges))  # no shared edge
    assert edges[0][0] == 0 and edges[-1][1] == 100
    assert radio.value is None
    radio.set_value("20-40").run()
    assert at.radio(key="rate_q2").value == "20-40"  # stored as the paper's bin name
