"""The 2-AFC study's exemplars and trials, built from a small scored catalogue: the
references are the top and bottom images, the queries are not among them, sides are
balanced, and the same seed gives the same trials."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterator

import numpy as np
import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.pool import NullPool

from catalogue.errors import InputError, NotFound
from catalogue.pipeline.twoafc.study import build_study
from catalogue.query.twoafc import study_trials
from catalogue.selectivity.exemplars import BOTTOM_IMAGES, bottom_images, tie_order
from catalogue.twoafc.design import DesignOptions, Exemplar, UnitExemplars, design_trials
from tests.cli import unitcat
from tests.twoafc_fixtures import TwoAFCCatalogue, build_twoafc_catalogue


@pytest.fixture(scope="module")
def afc(
    database_factory: Callable[..., str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Engine, TwoAFCCatalogue]]:
    engine = create_engine(database_factory(), poolclass=NullPool)
    built = build_twoafc_catalogue(engine, tmp_path_factory.mktemp("afc"))
    yield engine, built
    engine.dispose()


def _ranked(engine: Engine, table: str, run: int, unit_id: int) -> list[tuple[int, float]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                f"SELECT image_index, activation FROM {table} "
                "WHERE run_id = :r AND unit_id = :u ORDER BY rank"
            ),
            {"r": run, "u": unit_id},
        ).all()
    return [(r.image_index, r.activation) for r in rows]


def _literal_bottom(values: np.ndarray, rows: np.ndarray, k: int) -> list[int]:
    """The k least active scored images by a plain sort: ascending value, then the fixed
    tie order of the image's place among the scored images; as store indices."""
    ties = tie_order(len(values))
    order = sorted(range(len(values)), key=lambda i: (float(values[i]), int(ties[i])))
    return [int(rows[i]) for i in order[:k]]


def test_scoring_keeps_each_units_least_activating_images(afc) -> None:
    engine, c = afc
    for (layer, unit), unit_id in c.unit_ids.items():
        stored = _ranked(engine, "unit_bottom_image", c.score_run, unit_id)
        want = _literal_bottom(c.scored(layer, unit), c.scored_rows, BOTTOM_IMAGES)
        assert [i for i, _ in stored] == want, (layer, unit)
        acts = c.activations[layer][:, unit]
        assert [a for _, a in stored] == pytest.approx([float(acts[i]) for i in want])
    # the dead unit's bottom images are spread over the classes, not the first images
    dead = [i for i, _ in _ranked(engine, "unit_bottom_image", c.score_run, c.unit_ids[("fc6", 5)])]
    assert len({int(c.labels[i]) for i in dead}) >= 4
    assert dead != sorted(dead)


def test_bottom_images_pad_short_input_and_do_not_depend_on_blocks() -> None:
    values = np.array([[3.0, 0.0], [1.0, 0.0], [2.0, -0.0]], dtype=np.float32)
    few = bottom_images(values, np.array([0, 1, 2]), 5)
    assert few.index[0].tolist() == [1, 2, 0, -1, -1]
    assert np.isnan(few.activation[0, 3:]).all()
    assert sorted(few.index[1, :3].tolist()) == [0, 1, 2]  # -0.0 ties with 0.0
    rng = np.random.default_rng(1)
    wide = np.maximum(rng.normal(size=(300, 70)), 0).astype(np.float32)
    whole = bottom_images(wide, np.zeros(300, dtype=int), 12).index
    parts = [
        bottom_images(wide[:, s : s + 7], np.zeros(300, dtype=int), 12).index
        for s in range(0, 70, 7)
    ]
    np.testing.assert_array_equal(whole, np.concatenate(parts))


def test_trials_show_top_and_bottom_images_and_queries_outside_the_references(afc) -> None:
    engine, c = afc
    built = build_study(
        engine, c.score_run, [("conv5", None), ("fc6", [0, 1, 2, 3])], name="one-batch",
        options=DesignOptions(seed=7),
    )  # fmt: skip
    trials = study_trials(engine, built.study.id)
    main = [t for t in trials if not t.catch]
    assert sorted((t.layer, t.unit) for t in main) == sorted(
        [("conv5", u) for u in range(4)] + [("fc6", u) for u in range(4)]
    )
    for t in main:
        top = _ranked(engine, "unit_top_image", c.score_run, t.unit_id)
        bottom = _ranked(engine, "unit_bottom_image", c.score_run, t.unit_id)
        # one batch: the references are ranks 1–9 (rank 1 shown first), the queries rank 10
        assert t.max_references[0].image_index == top[0][0]
        assert sorted(e.image_index for e in t.max_references) == sorted(i for i, _ in top[:9])
        assert sorted(e.image_index for e in t.min_references) == sorted(i for i, _ in bottom[:9])
        assert t.max_query.image_index == top[9][0]
        assert t.min_query.image_index == bottom[9][0]
        refs = {e.image_index for e in (*t.max_references, *t.min_references)}
        assert t.max_query.image_index not in refs and t.min_query.image_index not in refs
        assert t.max_query.activation > t.min_query.activation
        assert t.max_query.image_key == c.keys[t.max_query.image_index]


def test_two_batches_split_the_exemplars_fairly(afc) -> None:
    engine, c = afc
    built = build_study(
        engine, c.score_run, [("conv5", [0, 1, 2])], name="two-batches",
        options=DesignOptions(batches=2, seed=3),
    )  # fmt: skip
    trials = [t for t in study_trials(engine, built.study.id) if not t.catch]
    assert built.study.n_tasks == 2 and {t.task for t in trials} == {1, 2}
    for unit in range(3):
        mine = [t for t in trials if t.unit == unit]
        assert sorted(t.batch for t in mine) == [0, 1]
        top = [i for i, _ in _ranked(engine, "unit_top_image", c.score_run, mine[0].unit_id)]
        for end, ranked in (("max", top), ("min", None)):
            if ranked is None:
                ranked = [
                    i for i, _ in _ranked(engine, "unit_bottom_image", c.score_run, mine[0].unit_id)
                ]
            refs = [[e.image_index for e in getattr(t, f"{end}_references")] for t in mine]
            queries = [getattr(t, f"{end}_query").image_index for t in mine]
            # every bucket of two consecutive ranks gives one image to each batch
            for bucket in range(9):
                pair = set(ranked[2 * bucket : 2 * bucket + 2])
                assert all(len(pair & set(r)) == 1 for r in refs)
            assert set(queries) == set(ranked[18:20])
            assert not set(queries) & set(refs[0] + refs[1])


def test_sides_are_balanced_and_catch_trials_are_obvious(afc) -> None:
    engine, c = afc
    built = build_study(
        engine, c.score_run, [("conv5", None), ("fc6", [0, 1, 2, 3])], name="tasks",
        options=DesignOptions(task_size=3, seed=11),
    )  # fmt: skip
    trials = study_trials(engine, built.study.id)
    assert built.study.n_tasks == 3  # 8 units in tasks of at most 3: 3, 3, 2
    for task in range(1, 4):
        mine = [t for t in trials if t.task == task]
        main = [t for t in mine if not t.catch]
        catch = [t for t in mine if t.catch]
        assert len(catch) == math.ceil(len(main) / 8) == 1
        assert [t.position for t in mine] == list(range(1, len(mine) + 1))
        first = sum(t.max_query_first for t in mine)
        assert abs(first - (len(mine) - first)) <= 1
        assert len({t.unit_id for t in main}) == len(main)  # a task shows a unit once
        for t in catch:  # the queries are the most extreme references themselves
            assert t.max_query == t.max_references[0] and t.min_query == t.min_references[0]
            assert t.unit_id not in {m.unit_id for m in main}  # from outside the task
    assert Counter(t.unit_id for t in trials if not t.catch).most_common(1)[0][1] == 1


def test_the_same_seed_gives_the_same_trials_and_another_seed_others(afc) -> None:
    engine, c = afc
    units = [("conv5", None), ("fc6", [0, 1, 2, 3])]

    def contents(name: str, seed: int) -> list[tuple]:
        built = build_study(
            engine,
            c.score_run,
            units,
            name=name,
            options=DesignOptions(batches=2, task_size=5, seed=seed),
        )
        return [
            (t.task, t.position, t.unit_id, t.catch, t.max_query_first, t.max_query, t.min_query,
             t.max_references, t.min_references)
            for t in study_trials(engine, built.study.id)
        ]  # fmt: skip

    first, again, other = contents("s5-a", 5), contents("s5-b", 5), contents("s6", 6)
    assert first == again
    assert first != other
    # building the same study again changes nothing; other parameters under its name are refused
    assert build_study(
        engine,
        c.score_run,
        units,
        name="s5-a",
        options=DesignOptions(batches=2, task_size=5, seed=5),
    ).reused
    with pytest.raises(InputError, match="exists with other parameters"):
        build_study(engine, c.score_run, units, name="s5-a", options=DesignOptions(seed=5))


def test_a_units_images_do_not_depend_on_the_other_units(afc) -> None:
    engine, c = afc
    alone = build_study(
        engine, c.score_run, [("conv5", [2])], name="alone", options=DesignOptions(seed=9)
    )
    many = build_study(
        engine, c.score_run, [("conv5", None)], name="many", options=DesignOptions(seed=9)
    )

    def images(study_id: int) -> tuple:
        t = next(
            t
            for t in study_trials(engine, study_id)
            if t.unit == 2 and t.layer == "conv5" and not t.catch
        )
        return t.max_references, t.min_references, t.max_query, t.min_query

    assert images(alone.study.id) == images(many.study.id)


def test_constant_units_are_refused_by_name_and_left_out_of_a_whole_layer(afc) -> None:
    engine, c = afc
    with pytest.raises(InputError, match="fc6:5"):
        build_study(engine, c.score_run, [("fc6", [0, 5])], name="dead")
    built = build_study(engine, c.score_run, [("fc6", None)], name="fc6-all")
    assert built.left_out_constant == 1
    units = {t.unit for t in study_trials(engine, built.study.id)}
    assert 5 not in units and 0 in units
    # fc6.4 is 1 or 0: its top and bottom images differ, so it gets trials
    assert 4 in units


def test_bad_choices_are_refused_before_anything_is_written(afc) -> None:
    engine, c = afc
    with engine.connect() as conn:
        before = conn.execute(text("SELECT count(*) FROM twoafc_study")).scalar_one()
    with pytest.raises(NotFound, match="no layer 'fc9'"):
        build_study(engine, c.score_run, [("fc9", None)], name="x")
    with pytest.raises(NotFound, match="no unit 17 of layer conv5"):
        build_study(engine, c.score_run, [("conv5", [17])], name="x")
    with pytest.raises(InputError, match="extract run"):
        build_study(engine, c.extract_run, [("conv5", None)], name="x")
    with pytest.raises(InputError, match="need 30 most and 30 least"):
        build_study(
            engine, c.score_run, [("conv5", None)], name="x", options=DesignOptions(batches=3)
        )
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM twoafc_study")).scalar_one() == before


def test_design_alone_with_ties_and_a_single_unit() -> None:
    """The pure design on hand-made exemplars: one unit (its catch trial is its own),
    references in rank buckets, the strongly activating query first in half the trials."""
    top = [Exemplar(i, f"t{i}", 10.0 - i) for i in range(10)]
    bottom = [Exemplar(100 + i, f"b{i}", 0.0) for i in range(10)]  # all tied at 0
    plans = design_trials([UnitExemplars(1, "fc6:1", top, bottom)], DesignOptions(seed=0))
    assert [p.catch for p in sorted(plans, key=lambda p: p.catch)] == [False, True]
    main = next(p for p in plans if not p.catch)
    assert main.max_query == top[9] and main.max_references[0] == top[0]
    assert {e.image_index for e in main.min_references} == {100 + i for i in range(9)}
    assert sum(p.max_query_first for p in plans) == 1
    with pytest.raises(InputError, match="no units"):
        design_trials([], DesignOptions())
    flat = [Exemplar(i, None, 0.0) for i in range(10)]
    with pytest.raises(InputError, match="no query pair would have a right answer"):
        design_trials([UnitExemplars(2, "fc6:2", flat, flat)], DesignOptions())


def test_the_trial_table_is_named_for_the_checks(engine: Engine) -> None:
    with engine.connect() as conn:
        names = set(
            conn.execute(
                text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
            ).scalars()
        )
        columns = set(
            conn.execute(
                text(
                    "SELECT column_name FROM information_schema.columns WHERE table_name = 'unit_catalogue'"
                )
            ).scalars()
        )
    assert any("trial" in n for n in names)
    assert {
        "human_2afc_accuracy",
        "human_2afc_n",
        "human_2afc_ci_low",
        "human_2afc_ci_high",
    } <= columns


def test_the_cli_builds_a_study_once_and_refuses_bad_units_in_one_line(afc) -> None:
    engine, c = afc
    env = {"DATABASE_URL": engine.url.render_as_string(hide_password=False)}
    args = ("ingest", "study", "2afc", str(c.score_run), "--units", "conv5", "--units", "fc6:0-3")
    built = unitcat(*args, "--name", "cli", "--seed", "2", env=env)
    assert built.returncode == 0, built.stderr
    assert (
        "built 2-AFC study 'cli': 9 trials (1 catch trials) of 8 units in 1 task(s)" in built.stdout
    )
    assert "/rate?protocol=2afc&study_name=cli" in built.stdout
    again = unitcat(*args, "--name", "cli", "--seed", "2", env=env)
    assert again.returncode == 0 and "built already" in again.stdout
    for units, message in (("fc6:3-1", "runs backwards"), ("fc6:", "write a layer")):
        bad = unitcat("ingest", "study", "2afc", str(c.score_run), "--units", units, env=env)
        assert bad.returncode == 2
        assert len(bad.stderr.strip().splitlines()) == 1 and message in bad.stderr
    with engine.connect() as conn:
        assert (
            conn.execute(text("SELECT count(*) FROM twoafc_study WHERE name = 'cli'")).scalar_one()
            == 1
        )
    shown = unitcat("ingest", "study", "show", env=env)
    assert shown.returncode == 0 and "cli" in shown.stdout
