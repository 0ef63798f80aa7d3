"""Ratings in the catalogue: CSV import, the rating study's bookkeeping, the analysis views."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import Engine, text

from catalogue.db.results import write_top_images
from catalogue.db.runs import recorded_run
from catalogue.errors import InputError
from catalogue.pipeline.ratings import (
    analyse_ratings,
    design_study,
    enrol,
    import_ratings,
    next_panel,
    record_rating,
    study_panels,
)
from catalogue.ratings import parse_ratings_csv
from catalogue.wordnet import NameMatcher
from tests.catalogue_builders import register_toy, write_scores

HEADER = "participant,model,layer,unit,answer,estimate,names\n"


def _ratings_csv(lines: list[str]) -> str:
    return HEADER + "".join(line + "\n" for line in lines)


def _write_panels(engine: Engine, model, layer: str, units: list[int]) -> None:
    record = model.layer(layer)

    def write(conn, run_id):
        for u in units:
            conn.execute(
                text(
                    "INSERT INTO am_panel (run_id, unit_id, method, path, activations) "
                    "VALUES (:r, :u, 'test', :p, :a)"
                ),
                {
                    "r": run_id,
                    "u": int(record.unit_ids[u]),
                    "p": f"/tmp/{layer}-{u}.png",
                    "a": [1.0],
                },
            )

    with recorded_run(engine, "am", {"layer": layer, "units": units}, model_id=model.id) as run:
        run.complete(write)


def test_imported_ratings_reach_the_catalogue_views(engine: Engine) -> None:
    _model, _ = register_toy(engine)
    rows = parse_ratings_csv(
        _ratings_csv(
            [
                "p1,toy,fc6,0,yes,80-100,dog;puppy",
                "p2,toy,fc6,0,yes,60-80,dogs",
                "p3,toy,fc6,0,no,,",
                "p1,toy,fc6,1,no,,",
            ]
        )
    )
    summary = import_ratings(engine, rows)
    assert (summary.n_ratings, summary.n_participants, summary.n_units) == (4, 3, 2)
    with engine.connect() as conn:
        unit0 = conn.execute(
            text("SELECT n_ratings, n_yes, share_yes, consensus FROM rating_summary WHERE unit = 0")
        ).one()
        assert tuple(unit0) == (3, 2, pytest.approx(2 / 3), False)
        names = conn.execute(
            text(
                "SELECT names FROM rating r JOIN participant p ON p.id = r.participant_id WHERE p.code = 'p1' AND r.answer"
            )
        ).scalar_one()
        assert names == ["dog", "puppy"]


def test_a_line_naming_an_unknown_unit_refuses_the_whole_file(engine: Engine) -> None:
    register_toy(engine)
    rows = parse_ratings_csv(
        _ratings_csv(["p1,toy,fc6,0,yes,,dog", "p1,toy,fc6,99,no,,", "p1,toy,fc9,0,no,,"])
    )
    with pytest.raises(
        InputError, match=r"2 bad line\(s\).*line 3: no unit toy fc6 99.*line 4: no unit toy fc9 0"
    ):
        import_ratings(engine, rows)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM rating")).scalar_one() == 0
        assert conn.execute(text("SELECT count(*) FROM participant")).scalar_one() == 0


def test_importing_the_same_ratings_twice_is_refused(engine: Engine) -> None:
    register_toy(engine)
    rows = parse_ratings_csv(_ratings_csv(["p1,toy,fc6,0,yes,,dog", "p2,toy,fc6,0,no,,"]))
    import_ratings(engine, rows)
    with pytest.raises(InputError, match="line 2: participant 'p1' already rated toy fc6 unit 0"):
        import_ratings(engine, rows)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM rating")).scalar_one() == 2


def test_analysis_matches_a_hand_computed_example(engine: Engine) -> None:
    model, dataset = register_toy(engine, n_classes=3)
    # unit 0 of fc6: CCMAS class 1 ("class 1"), most active image of class 2 ("class 2")
    run_id = write_scores(engine, model, dataset, "fc6", {"ccmas_class": [1, 0, 0, 0, 0, 0]})
    with engine.begin() as conn:
        write_top_images(
            conn,
            run_id,
            model.layer("fc6").unit_ids[:1],
            np.array([[0]]),
            np.array([[5.0]]),
            labels=np.array([2]),
        )
    rows = parse_ratings_csv(
        _ratings_csv(
            [
                "a,toy,fc6,0,yes,80-100,class 2",  # matches most-active class
                "b,toy,fc6,0,yes,60-80,class 2;class 1",  # matches both
                "c,toy,fc6,0,yes,80-100,zebra",
                "d,toy,fc6,0,yes,,",  # yes but no name: counts for share of yes only
                "e,toy,fc6,0,yes,80-100,class 1",
            ]
        )
    )
    import_ratings(engine, rows)
    n = analyse_ratings(engine, matcher=NameMatcher(use_wordnet=False))
    assert n == 1
    with engine.connect() as conn:
        row = conn.execute(text("SELECT * FROM rating_summary")).one()
        layer = conn.execute(text("SELECT * FROM rating_layer_summary")).one()
    assert row.share_yes == 1.0 and row.consensus
    assert row.n_named == 4
    # named raters a, b, c, e: pairs (a,b) (b,e) match; 6 pairs
    assert row.human_agreement == pytest.approx(2 / 6)
    assert row.match_most_active == pytest.approx(2 / 4)  # a, b
    assert row.match_ccmas == pytest.approx(2 / 4)  # b, e
    assert row.top_name == "class 1"  # "class 1" and "class 2" both twice: alphabetical
    assert row.mean_estimate == pytest.approx((0.9 + 0.7 + 0.9 + 0.9) / 4)
    assert layer.share_consensus == 1.0 and layer.match_most_active == pytest.approx(0.5)


def test_the_study_deals_lists_resumes_and_refuses_a_second_answer(engine: Engine) -> None:
    model, _ = register_toy(engine)
    _write_panels(engine, model, "fc6", list(range(6)))
    _write_panels(engine, model, "conv5", list(range(4)))
    with engine.connect() as conn:
        panels = study_panels(conn)
    assert len(panels) == 10
    design = design_study(panels, list_size=4, n_practice=2, seed=1)
    assert len(design.practice) == 2
    rated = sorted(p for lst in design.lists for p in lst)
    assert rated == sorted(set(design.panels) - set(design.practice))
    assert len(design.lists) == 2
    n_lists = len(design.lists)

    first = enrol(engine, "alice", n_lists)
    second = enrol(engine, "bob", n_lists)
    assert (first.list_index, second.list_index) == (0, 1)
    assert enrol(engine, "alice", n_lists) == first  # a reload finds the same participant

    answered = []
    while (panel := next_panel(engine, design, first)) is not None:
        record_rating(engine, first, panel, answer=True, estimate="60-80", names=["Dog", " "])
        answered.append(panel.panel_id)
        if len(answered) == 2:
            break
    assert answered == design.lists[0][:2]
    # "reload": a new lookup resumes at the third panel of the list
    assert (
        next_panel(engine, design, enrol(engine, "alice", n_lists)).panel_id == design.lists[0][2]
    )
    with pytest.raises(InputError, match="already rated this panel"):
        record_rating(engine, first, design.panels[answered[0]], answer=False)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM rating")).scalar_one() == 2
        assert conn.execute(text("SELECT DISTINCT names FROM rating")).scalar_one() == ["dog"]


def test_a_rating_with_details_after_no_is_refused(engine: Engine) -> None:
    model, _ = register_toy(engine)
    _write_panels(engine, model, "fc6", [0, 1])
    with engine.connect() as conn:
        design = design_study(study_panels(conn), n_practice=0)
    person = enrol(engine, "carol", len(design.lists))
    panel = next_panel(engine, design, person)
    with pytest.raises(InputError, match="only asked after 'yes'"):
        record_rating(engine, person, panel, answer=False, names=["cat"])
    with pytest.raises(InputError, match="at most 2 names"):
        record_rating(engine, person, panel, answer=True, names=["a", "b", "c"])
