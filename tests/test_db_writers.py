"""The write layer (`catalogue.db`): each writer's rows read back with the values given,
in the run's transaction, and the lookups the pipelines write with."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import Engine, text

from catalogue.db.identities import register_class_groups, register_concepts, unit_ids_by_key
from catalogue.db.ratings import (
    AnalysisRecord,
    RatingRecord,
    count_enrolled,
    ensure_participants,
    find_participant,
    insert_rating,
    latest_panel_ids,
    rated_pairs,
    replace_rating_analysis,
    set_participant_list,
    write_ratings,
)
from catalogue.db.results import (
    PanelRow,
    have_panels,
    score_reference,
    write_am_panels,
    write_class_stats,
    write_dissection,
    write_group_metrics,
    write_top_images,
)
from catalogue.db.runs import done_run_id, find_run, recorded_run
from catalogue.errors import InputError, NotFound
from tests.catalogue_builders import register_toy, write_scores


def test_result_writers_round_trip_in_the_runs_transaction(engine: Engine) -> None:
    model, dataset = register_toy(engine)
    fc6 = model.layer("fc6").unit_ids
    conv5 = model.layer("conv5").unit_ids
    labels = np.array([2, 0, 1, 1, 2])
    keys = ["a.png", "b.png", "c.png", "d.png", "e.png"]
    # unit 1 has one image only: its rank 2 is -1 and writes no row
    top_index = np.array([[4, 0], [3, -1]])
    top_activation = np.array([[9.0, 8.5], [7.0, np.nan]])
    stats = {
        "unit": np.array([0, 0, 1]),
        "class_index": np.array([2, 0, 1]),
        "mean_activation": np.array([1.5, 0.25, 3.0]),
        "frac_nonzero": np.array([0.5, 0.0, 1.0]),
        "informedness": np.array([0.75, np.nan, 0.1]),
        "informedness_threshold": np.array([1.0, 0.0, 2.0]),
        "rank_by_informedness": np.array([1, -1, 1]),
        "rank_by_mean": np.array([2, 1, -1]),
    }
    group = {
        c: np.arange(6, dtype=np.float64) / 10
        for c in (
            "n_nonzero_in",
            "n_nonzero_out",
            "mu_in",
            "mu_out",
            "precision",
            "ccmas",
            "max_informedness",
            "mi_threshold",
        )
    }
    dissection_rows = [
        {
            "unit": 3,
            "concept_number": 7,
            "rank": 1,
            "iou": 0.08,
            "threshold": 1.5,
            "detector": True,
        },
        {
            "unit": 3,
            "concept_number": 9,
            "rank": 2,
            "iou": 0.01,
            "threshold": 1.5,
            "detector": False,
        },
    ]

    with engine.begin() as conn:
        group_id = register_class_groups(conn, dataset, {"pair": ["k0", "k1"]})["pair"]
        concept_ids = register_concepts(conn, "probe", [(7, "sky", "object"), (9, "red", "color")])

    def write(conn, run_id):
        assert write_class_stats(conn, run_id, fc6[:2], stats) == 3
        assert write_top_images(conn, run_id, fc6[:2], top_index, top_activation, labels, keys) == 3
        assert write_group_metrics(conn, run_id, fc6, group_id, group) == 6
        assert write_dissection(conn, run_id, conv5, dissection_rows, concept_ids) == 2
        assert write_dissection(conn, run_id, conv5, [], concept_ids) == 0
        panel = PanelRow(int(fc6[5]), "test", {"steps": 3}, "am/x.png", [1.0, 2.5], 4.0)
        assert write_am_panels(conn, run_id, [panel]) == 1

    with recorded_run(engine, "score", {"t": 1}, model_id=model.id) as run:
        run.complete(write, stats={"n": 5})

    with engine.connect() as conn:
        top = conn.execute(
            text(
                "SELECT unit_id, rank, image_index, image_key, class_index, activation "
                "FROM unit_top_image ORDER BY unit_id, rank"
            )
        ).all()
        assert [tuple(r) for r in top] == [
            (fc6[0], 1, 4, "e.png", 2, 9.0),
            (fc6[0], 2, 0, "a.png", 2, 8.5),
            (fc6[1], 1, 3, "d.png", 1, 7.0),
        ]
        cs = conn.execute(
            text(
                "SELECT unit_id, class_index, mean_activation, informedness, "
                "rank_by_informedness, rank_by_mean FROM unit_class_stats "
                "ORDER BY unit_id, class_index"
            )
        ).all()
        assert [tuple(r) for r in cs] == [
            (fc6[0], 0, 0.25, None, None, 1),  # NaN → NULL, rank -1 → NULL
            (fc6[0], 2, 1.5, 0.75, 1, 2),
            (fc6[1], 1, 3.0, 0.1, 1, None),
        ]
        gm = conn.execute(
            text("SELECT group_id, mu_in FROM unit_group_metrics ORDER BY unit_id")
        ).all()
        assert [tuple(r) for r in gm] == [(group_id, i / 10) for i in range(6)]
        ds = conn.execute(
            text(
                "SELECT d.unit_id, c.name, d.rank, d.iou, d.threshold, d.is_detector "
                "FROM dissection d JOIN concept c ON c.id = d.concept_id ORDER BY d.rank"
            )
        ).all()
        assert [tuple(r) for r in ds] == [
            (conv5[3], "sky", 1, 0.08, 1.5, True),
            (conv5[3], "red", 2, 0.01, 1.5, False),
        ]
        panel = conn.execute(
            text("SELECT unit_id, method, params, path, activations, dataset_max FROM am_panel")
        ).one()
        assert tuple(panel) == (fc6[5], "test", {"steps": 3}, "am/x.png", [1.0, 2.5], 4.0)
        row = find_run(conn, run.id, kind="score")
        assert row.status == "done" and row.stats == {"n": 5} and row.error is None
        assert done_run_id(conn, "score", {"t": 1}) == run.id
        assert done_run_id(conn, "score", {"t": 2}) is None
        assert have_panels(conn, "toy", "fc6", (5,))
        assert not have_panels(conn, "toy", "fc6", (4, 5))


def test_write_top_images_with_no_ranks_writes_nothing(engine: Engine) -> None:
    model, _ = register_toy(engine)
    written: list[int] = []

    def write(conn, run_id):
        unit_ids = model.layer("fc6").unit_ids[:2]
        empty = np.full((2, 3), -1)
        written.append(write_top_images(conn, run_id, unit_ids, empty, empty * 1.0, np.array([0])))

    with recorded_run(engine, "score", {"empty": True}, model_id=model.id) as run:
        run.complete(write)
    assert written == [0]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM unit_top_image")).scalar_one() == 0


def test_a_rerun_keeps_its_id_and_a_failed_one_its_error(engine: Engine) -> None:
    model, _ = register_toy(engine)
    with (
        pytest.raises(ValueError, match="boom"),
        recorded_run(engine, "dissect", {"p": 1}, label="one", model_id=model.id) as first,
    ):
        raise ValueError("boom\nsecond line")
    with engine.connect() as conn:
        row = find_run(conn, "one")
        assert (row.id, row.status, row.error) == (first.id, "failed", "ValueError: boom")
        assert row.duration_s >= 0 and row.finished_at is not None
        with pytest.raises(InputError, match="is a dissect run, not a score run"):
            find_run(conn, first.id, kind="score")
        with pytest.raises(NotFound):
            find_run(conn, "no such label")
    with recorded_run(engine, "dissect", {"p": 1}, label="two", model_id=model.id) as again:
        assert again.id == first.id
        with engine.connect() as conn:
            row = find_run(conn, "two")
            assert (row.id, row.status, row.error, row.finished_at) == (
                first.id,
                "running",
                None,
                None,
            )
    with engine.connect() as conn:
        assert find_run(conn, first.id).status == "done"
        assert done_run_id(conn, "dissect", {"p": 1}) == first.id


def test_lookups_find_units_and_the_newest_scoring_reference(engine: Engine) -> None:
    model, dataset = register_toy(engine)
    fc6 = model.layer("fc6").unit_ids
    with engine.connect() as conn:
        assert unit_ids_by_key(conn, []) == {}
        found = unit_ids_by_key(conn, [("toy", "fc6", 2), ("toy", "fc6", 99), ("x", "fc6", 0)])
        assert found == {("toy", "fc6", 2): fc6[2]}
        assert score_reference(conn, [int(fc6[0])]) is None
    write_scores(engine, model, dataset, "fc6", {"max_activation": [1, 2, 3, 4, 5, 6]}, {"a": 1})
    newer = write_scores(engine, model, dataset, "fc6", {"max_activation": [6] * 6}, {"a": 2})
    with engine.connect() as conn:
        reference = score_reference(conn, [int(fc6[0]), int(fc6[1])])
    assert reference is not None
    assert reference.run_id == newer
    assert reference.reduce is None  # no extraction run as parent
    assert reference.max_activation == {fc6[0]: 6.0, fc6[1]: 6.0}


def test_rating_writers_round_trip(engine: Engine) -> None:
    model, _ = register_toy(engine)
    fc6 = model.layer("fc6").unit_ids

    def panel_of(unit: int, path: str):
        row = PanelRow(int(fc6[unit]), "test", {}, path, [1.0], None)
        return lambda conn, run_id: write_am_panels(conn, run_id, [row])

    with recorded_run(engine, "am", {"u": 0}, model_id=model.id) as run:
        run.complete(panel_of(0, "p.png"))
    with recorded_run(engine, "am", {"u": 1}, model_id=model.id) as newer:
        newer.complete(panel_of(0, "q.png"))
    with engine.begin() as conn:
        ids = ensure_participants(conn, ["p1", "p2"])
        assert ensure_participants(conn, ["p2", "p3"])["p2"] == ids["p2"]
        assert count_enrolled(conn) == 0
        latest = latest_panel_ids(conn, [int(fc6[0]), int(fc6[1])])
        assert set(latest) == {fc6[0]}
        newest = conn.execute(
            text("SELECT id FROM am_panel WHERE run_id = :r"), {"r": newer.id}
        ).scalar_one()
        assert latest[fc6[0]] == newest
        n = write_ratings(
            conn,
            [
                RatingRecord(ids["p1"], int(fc6[0]), newest, True, "60-80", ["dog"], "import"),
                RatingRecord(ids["p2"], int(fc6[1]), None, False, None, [], "import"),
            ],
        )
        assert n == 2
        assert rated_pairs(conn, ["p1", "p2", "p9"]) == {("p1", fc6[0]), ("p2", fc6[1])}
        again = RatingRecord(ids["p1"], int(fc6[0]), None, False, None, [], "ui")
        assert insert_rating(conn, again) is None
        fresh = RatingRecord(ids["p1"], int(fc6[2]), None, True, None, ["cat", "dog"], "ui")
        assert insert_rating(conn, fresh) is not None
        # an imported participant gets a list on first visit, keeping its id
        enrolled = set_participant_list(conn, "p1", 3)
        assert tuple(enrolled) == (ids["p1"], "p1", 3)
        assert tuple(find_participant(conn, "p1")) == (ids["p1"], "p1", 3)
        assert find_participant(conn, "nobody") is None
        assert count_enrolled(conn) == 1
        ratings = conn.execute(
            text(
                "SELECT unit_id, answer, estimate, names, source FROM rating "
                "WHERE participant_id = :p ORDER BY unit_id"
            ),
            {"p": ids["p1"]},
        ).all()
        assert [tuple(r) for r in ratings] == [
            (fc6[0], True, "60-80", ["dog"], "import"),
            (fc6[2], True, None, ["cat", "dog"], "ui"),
        ]
        first = AnalysisRecord(int(fc6[0]), None, 1, "dog", None, 0.5, 0.0, 70.0, False)
        assert replace_rating_analysis(conn, [first]) == 1
        second = AnalysisRecord(int(fc6[2]), run.id, 2, "cat", 1.0, None, None, None, True)
        assert replace_rating_analysis(conn, [second]) == 1
        analysis = conn.execute(
            text(
                "SELECT unit_id, score_run_id, n_named, top_name, human_agreement, "
                "match_most_active, used_wordnet FROM unit_rating_analysis"
            )
        ).all()
        assert [tuple(r) for r in analysis] == [(fc6[2], run.id, 2, "cat", 1.0, None, True)]
