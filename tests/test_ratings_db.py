"""Ratings in the catalogue: CSV import, the rating study's bookkeeping, the analysis views."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from sqlalchemy import Engine, text

from catalogue.db.identities import register_dataset
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
)
from catalogue.query.ratings import RatingCounts, rating_counts, study_panels, table1
from catalogue.ratings import ESTIMATE_BINS, RatingRow, parse_ratings_csv
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
        assert tuple(unit0) == (3, 2, pytest.approx(2 / 3), None)  # 3 raters: no consensus yet
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
    panels = study_panels(engine)
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
    design = design_study(study_panels(engine), n_practice=0)
    person = enrol(engine, "carol", len(design.lists))
    panel = next_panel(engine, design, person)
    with pytest.raises(InputError, match="only asked after 'yes'"):
        record_rating(engine, person, panel, answer=False, names=["cat"])
    with pytest.raises(InputError, match="at most 2 names"):
        record_rating(engine, person, panel, answer=True, names=["a", "b", "c"])


# ------------------------------------------------------- Table 1 from the view


def _literal_mean_se(values: list[float]) -> tuple[float | None, float | None]:
    """Mean and standard error (sample SD / √n), written out; None where undefined."""
    n = len(values)
    if n == 0:
        return None, None
    mean = sum(values) / n
    if n < 2:
        return mean, None
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return mean, sd / math.sqrt(n)


def test_table1_from_the_view_agrees_with_literal_definitions_on_random_ratings(
    engine: Engine,
) -> None:
    """Per layer: (a) mean share of yes, (b) share of units with ≥ 80% yes, (c–e) name
    agreement over those consensus units, each with its standard error (Gale et al.)."""
    words = NameMatcher(use_wordnet=False)
    rng = random.Random(11)
    class_names = ["dog", "cat", "bus", "wine", "car"]
    vocabulary = ["dog", "dogs", "sled dog", "cat", "bus", "school bus", "wine", "red wine", "car"]
    layers = ("conv5", "fc6", "fc8")
    n_units = 30
    model, _ = register_toy(engine, layers=[(la, "fc", n_units) for la in layers])
    with engine.begin() as conn:
        dataset = register_dataset(
            conn,
            name="words",
            kind="test",
            source=None,
            class_keys=[f"w{i}" for i in range(len(class_names))],
            class_names=class_names,
        )
    ccmas: dict[tuple[str, int], str] = {}
    rows: list[RatingRow] = []
    for layer in layers:
        classes = [rng.randrange(len(class_names)) for _ in range(n_units)]
        write_scores(engine, model, dataset, layer, {"ccmas_class": classes})
        p_yes = {"conv5": 0.3, "fc6": 0.5, "fc8": 0.9}[layer]
        for unit in range(n_units):
            ccmas[(layer, unit)] = class_names[classes[unit]]
            for participant in range(rng.randint(1, 7)):
                yes = rng.random() < p_yes
                names = tuple(rng.sample(vocabulary, rng.randint(0, 2))) if yes else ()
                estimate = rng.choice((None, *ESTIMATE_BINS)) if yes else None
                rows.append(
                    RatingRow(0, f"p{participant}", "toy", layer, unit, yes, estimate, names)
                )
    import_ratings(engine, rows)
    assert analyse_ratings(engine, matcher=words) == len(layers) * n_units

    table = table1(engine)
    assert [r.layer for r in table] == list(layers)
    for got in table:
        mine = [r for r in rows if r.layer == got.layer]
        shares, consensus_units, decided = [], [], 0
        for unit in range(n_units):
            answers = [r for r in mine if r.unit == unit]
            share = sum(r.answer for r in answers) / len(answers)
            shares.append(share)
            if len(answers) >= 5:  # a consensus is stated once 5 people rated the panel
                decided += 1
                if share >= 0.8:
                    consensus_units.append(unit)
        assert (got.n_units, got.n_ratings) == (n_units, len(mine))
        assert (got.share_yes, got.share_yes_se) == pytest.approx(_literal_mean_se(shares))
        assert 0 < decided < n_units
        p = len(consensus_units) / decided
        assert got.share_consensus == pytest.approx(p)
        assert got.share_consensus_se == pytest.approx(math.sqrt(p * (1 - p) / decided))
        agreement, match_ccmas = [], []
        for unit in consensus_units:
            named = [r.names for r in mine if r.unit == unit and r.answer and r.names]
            pairs = [(a, b) for i, a in enumerate(named) for b in named[i + 1 :]]
            if pairs:
                agreement.append(sum(words.match_any(a, b) for a, b in pairs) / len(pairs))
            if named:
                hits = sum(words.match_any(n, [ccmas[(got.layer, unit)]]) for n in named)
                match_ccmas.append(hits / len(named))
        assert (got.human_agreement, got.human_agreement_se) == pytest.approx(
            _literal_mean_se(agreement)
        )
        assert (got.match_ccmas, got.match_ccmas_se) == pytest.approx(_literal_mean_se(match_ccmas))
        assert (got.match_most_active, got.match_most_active_se) == (None, None)  # no top images
    assert table[2].share_consensus > table[0].share_consensus  # fc8 says yes most often


def test_table1_of_one_unit_and_without_consensus(engine: Engine) -> None:
    register_toy(engine, layers=(("fc6", "fc", 4), ("fc8", "fc", 4)))
    rows = parse_ratings_csv(
        _ratings_csv(["p1,toy,fc6,1,yes,,dog", "p2,toy,fc6,1,no,,", "p1,toy,fc8,2,yes,,cat"])
    )
    import_ratings(engine, rows)
    analyse_ratings(engine, matcher=NameMatcher(use_wordnet=False))
    fc6, fc8 = table1(engine)
    # one or two raters per unit: too few for a consensus (RATING_MIN_RATERS)
    assert (fc6.share_yes, fc6.share_yes_se, fc6.share_consensus) == (0.5, None, None)
    assert fc6.human_agreement is None and fc6.human_agreement_se is None
    assert (fc8.share_yes, fc8.share_consensus, fc8.share_consensus_se) == (1.0, None, None)
    assert fc8.human_agreement is None  # one named rater
    assert rating_counts(engine) == RatingCounts(n_ratings=3, n_participants=2, n_units=2)
