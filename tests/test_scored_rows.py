"""The Unit page reads the images a scoring run actually scored, wherever they came from.

A random-weights baseline is scored on the images the *trained* network classified
correctly (`rows_from`), not on the few its own network gets right; a chance run permutes
the labels of its scoring run's images; `--all-images` scores every image. For units of
each, the counts the Unit page shows (scored images, the class's images, the images at or
above the max-informedness threshold and how many of them are not of the class) must
reproduce the stored false-alarm rate, hit rate and specificity exactly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine, text

from catalogue.errors import InputError, NotFound
from catalogue.pipeline.baseline import chance_baseline, random_weights_baseline
from catalogue.pipeline.scoring import score_extraction
from catalogue.query.files import scored_rows, unit_activations
from catalogue.query.units import threshold_counts, unit_class_table
from catalogue.store import ActivationStore
from tests.ablation_fixtures import Scored


def _units(engine: Engine, run_id: int) -> pd.DataFrame:
    with engine.connect() as conn:
        return pd.read_sql_query(
            text(
                "SELECT unit_id, layer, unit, n_images, mi_class_index, mi_threshold, "
                "false_alarm_rate, recall_at_mi, specificity_at_mi, max_informedness "
                "FROM unit_catalogue WHERE run_id = :r AND mi_class_index IS NOT NULL "
                "ORDER BY layer_position, unit"
            ),
            conn,
            params={"r": run_id},
        )


def _check_page_counts(engine: Engine, run_id: int) -> int:
    """Every unit of the run: the page's counts reproduce its stored rates exactly."""
    units = _units(engine, run_id)
    assert len(units) > 0
    for r in units.itertuples():
        acts = unit_activations(engine, int(r.unit_id), run_id)
        assert acts.values.size == r.n_images, (r.layer, r.unit)
        counts = threshold_counts(acts, int(r.mi_class_index), float(r.mi_threshold))
        tp, fp, n_class, n = counts["tp"], counts["fp"], counts["n_class"], counts["n"]
        where = (run_id, r.layer, r.unit)
        assert n == r.n_images, where
        assert fp / (tp + fp) == r.false_alarm_rate, where
        assert tp / n_class == r.recall_at_mi, where
        assert (n - n_class - fp) / (n - n_class) == r.specificity_at_mi, where
        table = unit_class_table(acts).set_index("class_index")
        assert int(table["n_images"].sum()) == r.n_images, where
        assert table.loc[int(r.mi_class_index), "informedness"] == pytest.approx(
            r.max_informedness, abs=1e-12
        ), where
    return int(units["n_images"].iloc[0])


def test_the_unit_page_counts_reproduce_the_stored_rates_for_every_kind_of_run(
    engine: Engine, scored: Scored
) -> None:
    random = random_weights_baseline(
        engine, scored.extract_run, model=scored.model, seed=4, dissect=False
    )
    everything = score_extraction(engine, scored.extract_run, all_images=True)
    chance = chance_baseline(engine, scored.score_run, repeats=1)

    with ActivationStore.open(scored.h5_path) as trained:
        trained_correct = int(np.count_nonzero(trained.correct))
        n_stored = trained.n_complete
    with engine.connect() as conn:
        random_h5 = conn.execute(
            text("SELECT p.h5_path FROM run r JOIN run p ON p.id = r.parent_id WHERE r.id = :r"),
            {"r": random.score_run},
        ).scalar_one()
    with ActivationStore.open(Path(random_h5)) as own:
        random_correct = int(np.count_nonzero(own.correct))
    # the random network gets other images right than the trained one: reading its own
    # correct images would give other counts (the defect this test catches)
    assert random_correct != trained_correct

    assert _check_page_counts(engine, scored.score_run) == trained_correct
    assert _check_page_counts(engine, random.score_run) == trained_correct
    assert _check_page_counts(engine, everything.run_id) == n_stored

    rows = scored_rows(engine, random.score_run)
    assert (rows.origin, rows.rows_from, rows.n) == (
        scored.score_run,
        scored.score_run,
        trained_correct,
    )
    assert (
        rows.describe()
        == f"the images scoring run #{scored.score_run}'s network classified correctly"
    )
    first = _units(engine, random.score_run).iloc[0]
    acts = unit_activations(engine, int(first.unit_id), random.score_run)
    assert acts.caption() == (
        f"{trained_correct:,} scored images (the images scoring run #{scored.score_run}'s "
        f"network classified correctly, of {n_stored:,} stored)"
    )
    own = unit_activations(engine, int(first.unit_id), scored.score_run)
    assert own.caption() == (
        f"{trained_correct:,} scored images (the correctly classified images of {n_stored:,} stored)"
    )
    with engine.connect() as conn:
        chance_images = conn.execute(
            text("SELECT DISTINCT n_images FROM chance_metrics WHERE run_id = :r"),
            {"r": chance.run_id},
        ).scalar_one()
    chance_rows = scored_rows(engine, chance.run_id)
    assert (chance_rows.origin, chance_rows.n) == (scored.score_run, chance_images)
    with ActivationStore.open(scored.h5_path) as trained:
        np.testing.assert_array_equal(chance_rows.mask, trained.correct.astype(bool))


def _stored_class_stats(engine: Engine, run_id: int) -> pd.DataFrame:
    with engine.connect() as conn:
        return pd.read_sql_query(
            text(
                "SELECT unit_id, class_index, mean_activation, frac_nonzero, informedness "
                "FROM unit_class_stats WHERE run_id = :r"
            ),
            conn,
            params={"r": run_id},
        )


def _stored_unit_values(engine: Engine, run_id: int) -> pd.DataFrame:
    with engine.connect() as conn:
        return pd.read_sql_query(
            text(
                "SELECT unit_id, n_images, mean_activation, max_activation, frac_zero "
                "FROM unit_metrics WHERE run_id = :r"
            ),
            conn,
            params={"r": run_id},
        ).set_index("unit_id")


def test_a_random_weights_unit_page_shows_the_trained_networks_correct_images(
    engine: Engine, scored: Scored
) -> None:
    """Every number the Unit page draws for a random-weights unit (scored images, images per
    class, the false-alarm counts, the jitter plot's points, the per-class statistics) is
    what the run's stored measures imply: the random network's activations at the rows the
    *trained* network classified correctly, labelled with those images' classes (read here
    literally from the two HDF5 files), not at the rows the random network gets right."""
    from ui.plots import jitter_points

    random = random_weights_baseline(
        engine, scored.extract_run, model=scored.model, seed=4, dissect=False
    )
    with ActivationStore.open(scored.h5_path) as trained:
        rows = trained.correct.astype(bool)
        labels = trained.labels[rows].astype(np.int64)
        n_classes = len(trained.class_names)
    with engine.connect() as conn:
        random_h5 = conn.execute(
            text("SELECT p.h5_path FROM run r JOIN run p ON p.id = r.parent_id WHERE r.id = :r"),
            {"r": random.score_run},
        ).scalar_one()
    with ActivationStore.open(Path(random_h5)) as own:
        own_correct = own.correct.astype(bool)
        own_labels = own.labels[own_correct].astype(np.int64)
    per_class = np.bincount(labels, minlength=n_classes)
    # the random network's own correct images have other class counts: the defect's counts
    assert not np.array_equal(np.bincount(own_labels, minlength=n_classes), per_class)

    units = _units(engine, random.score_run)
    stored = _stored_unit_values(engine, random.score_run)
    class_stats = _stored_class_stats(engine, random.score_run)
    checked = 0
    with ActivationStore.open(Path(random_h5)) as own:
        for r in units.itertuples():
            where = (r.layer, r.unit)
            literal = own.read_units(r.layer, int(r.unit), int(r.unit) + 1, rows=rows)[:, 0]
            acts = unit_activations(engine, int(r.unit_id), random.score_run)
            # the scored images: the trained network's correct ones, in store order
            np.testing.assert_array_equal(acts.values, literal, err_msg=str(where))
            np.testing.assert_array_equal(acts.labels, labels, err_msg=str(where))
            values = stored.loc[int(r.unit_id)]
            assert acts.values.size == values.n_images == rows.sum(), where
            assert float(acts.values.max()) == pytest.approx(values.max_activation), where
            assert float(acts.values.astype(np.float64).mean()) == pytest.approx(
                values.mean_activation
            ), where
            assert float(np.mean(acts.values == 0)) == pytest.approx(values.frac_zero), where
            # images per class, and the per-class statistics the measures were stored with
            table = unit_class_table(acts).set_index("class_index")
            np.testing.assert_array_equal(table.sort_index()["n_images"].to_numpy(), per_class)
            mine = class_stats[class_stats.unit_id == r.unit_id].set_index("class_index")
            assert len(mine) > 0, where
            for c, row in mine.iterrows():
                page = table.loc[int(c)]
                assert page["mean_activation"] == pytest.approx(row.mean_activation), (where, c)
                assert page["frac_nonzero"] == pytest.approx(row.frac_nonzero), (where, c)
                assert page["informedness"] == pytest.approx(row.informedness), (where, c)
            # the false-alarm line's counts, literally at the stored threshold
            above = literal >= np.float32(r.mi_threshold)
            of_class = labels == int(r.mi_class_index)
            counts = threshold_counts(acts, int(r.mi_class_index), float(r.mi_threshold))
            assert (counts["tp"], counts["fp"], counts["n_class"]) == (
                int(np.sum(above & of_class)),
                int(np.sum(above & ~of_class)),
                int(per_class[int(r.mi_class_index)]),
            ), where
            if counts["tp"] + counts["fp"]:
                assert counts["fp"] / (counts["tp"] + counts["fp"]) == r.false_alarm_rate
            # the jitter plot: every scored image once (few enough to draw them all)
            data = jitter_points(acts.values, acts.labels, int(r.mi_class_index), acts.class_names)
            points = data.points.sort_values("image")
            assert (data.n_class, data.n_other) == (
                int(of_class.sum()),
                int((~of_class).sum()),
            ), where
            np.testing.assert_array_equal(points["image"].to_numpy(), np.arange(literal.size))
            np.testing.assert_array_equal(points["activation"].to_numpy(), literal)
            names = np.asarray(acts.class_names, dtype=object)
            assert points["class_name"].tolist() == names[labels].tolist(), where
            checked += 1
    assert checked == len(units) > 0


def test_a_changed_file_or_a_lost_source_run_is_said_not_plotted(
    engine: Engine, scored: Scored
) -> None:
    """Counts from other rows than the run scored would contradict its stored measures: the
    Unit page gets an error that says why instead."""
    random = random_weights_baseline(
        engine, scored.extract_run, model=scored.model, seed=4, dissect=False
    )
    unit_id = int(_units(engine, random.score_run).iloc[0].unit_id)
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE unit_metrics SET n_images = n_images + 1 WHERE run_id = :r"),
            {"r": random.score_run},
        )
    with pytest.raises(InputError, match="the file has changed since: re-score the run"):
        unit_activations(engine, unit_id, random.score_run)
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE run SET params = params || '{\"rows_from\": 999999}' WHERE id = :r"),
            {"r": random.score_run},
        )
    with pytest.raises(NotFound, match="run 999999, which is no longer in the catalogue"):
        unit_activations(engine, unit_id, random.score_run)


@pytest.mark.browser
def test_a_random_weights_unit_page_in_chromium_shows_the_images_it_was_scored_on(
    engine: Engine, database_url: str, scored: Scored, tmp_path: Path
) -> None:
    """The Unit page of a random-weights unit, as a researcher opens it: its scored images
    are the trained network's correct ones, and the false-alarm line's counts (counted here
    from the HDF5 files at those rows) reproduce the stored false-alarm rate."""
    from tests.test_browser import WAIT_MS, _goto, _start_app, _stop

    random = random_weights_baseline(
        engine, scored.extract_run, model=scored.model, seed=4, dissect=False
    )
    units = _units(engine, random.score_run)
    with ActivationStore.open(scored.h5_path) as trained:
        rows = trained.correct.astype(bool)
        n_stored = trained.n_complete
        labels = trained.labels[rows]
    with engine.connect() as conn:
        random_h5, classes = conn.execute(
            text(
                "SELECT p.h5_path, d.id FROM run r JOIN run p ON p.id = r.parent_id "
                "JOIN dataset d ON d.id = r.dataset_id WHERE r.id = :r"
            ),
            {"r": random.score_run},
        ).one()
        names = dict(
            conn.execute(
                text("SELECT class_index, name FROM image_class WHERE dataset_id = :d"),
                {"d": classes},
            ).all()
        )
    # a unit whose false-alarm rate is neither 0 nor 1, in the deepest layer
    live = units[(units.false_alarm_rate > 0) & (units.false_alarm_rate < 1)]
    unit = live.iloc[-1]
    with ActivationStore.open(Path(random_h5)) as own:
        values = own.read_units(unit.layer, int(unit.unit), int(unit.unit) + 1, rows=rows)[:, 0]
    above = values >= np.float32(unit.mi_threshold)
    of_class = labels == int(unit.mi_class_index)
    tp, fp = int(np.sum(above & of_class)), int(np.sum(above & ~of_class))
    assert fp / (tp + fp) == unit.false_alarm_rate  # the expectation is the stored measure

    process, url = _start_app(database_url, tmp_path)
    try:
        from playwright.sync_api import sync_playwright

        from tests.test_browser import CHROMIUM_FLAGS, ensure_chromium

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=str(ensure_chromium()), args=CHROMIUM_FLAGS
            )
            page = browser.new_page(viewport={"width": 1400, "height": 2000})
            _goto(
                page,
                f"{url}/unit?unit_id={int(unit.unit_id)}&run_id={random.score_run}",
                f"{random.model} · {unit.layer} · unit {int(unit.unit)}",
                "unit-random-weights",
            )
            body = page.locator("body").inner_text()
            assert (
                f"{len(labels):,} scored images (the images scoring run #{scored.score_run}'s "
                f"network classified correctly, of {n_stored:,} stored)"
            ) in body
            cls = names[int(unit.mi_class_index)]
            assert f"{fp:,} of the {tp + fp:,} images at or above" in body
            assert f"are not {cls}" in body
            page.get_by_text(f"{int(of_class.sum()):,} images;").first.wait_for(timeout=WAIT_MS)
            browser.close()
    finally:
        _stop(process)
