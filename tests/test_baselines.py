"""Baselines: chance by permuted labels (with its exact expectation for random activations),
the same network with seeded random weights, their links to the trained runs, and
`layer_baselines` against literal counts."""

from __future__ import annotations

from fractions import Fraction
from math import comb
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sqlalchemy import Engine, text

from catalogue.db.identities import LayerSpec, register_dataset, register_model
from catalogue.db.runs import recorded_run
from catalogue.errors import ConfigError, InputError
from catalogue.measures import CRITERIA, MEASURE_NAMES, NOT_CONSTANT
from catalogue.models import ModelInfo, load_model, random_demo_model, random_weights
from catalogue.pipeline.baseline import chance_baseline, permuted_labels, random_weights_baseline
from catalogue.pipeline.dissect import build_probe, dissect_into_catalogue
from catalogue.pipeline.scoring import score_extraction
from catalogue.store import ActivationStore
from catalogue.store import LayerSpec as StoreLayer
from tests.ablation_fixtures import Scored

# ------------------------------------------------------------------------------- chance


def test_permuted_labels_keep_every_class_size_and_differ_by_repeat() -> None:
    labels = np.repeat(np.arange(5), [40, 25, 20, 10, 5])
    first = permuted_labels(labels, 4, seed=7)
    again = permuted_labels(labels, 2, seed=7)
    for permuted in first:
        np.testing.assert_array_equal(np.bincount(permuted), np.bincount(labels))
        assert (permuted != labels).mean() > 0.3
    assert not np.array_equal(first[0], first[1])
    np.testing.assert_array_equal(first[1], again[1])  # a repeat does not depend on the count


def expected_random_precision(sizes: list[int], k: int = 60) -> Fraction:
    """E[precision] of a unit whose activations are independent of the labels, exactly.

    With continuous activations there are no ties, and when activations and labels are
    independent every set of k images is equally likely to be the k most active: the
    class counts (X_c) among them are multivariate hypergeometric. Precision is
    max_c X_c / k, and E[max] = sum over m = 1..k of P(max >= m) = sum of
    1 - P(every X_c <= m - 1), where P(every X_c <= m - 1) is the coefficient of x^k in
    prod_c sum_{j <= m-1} C(n_c, j) x^j, divided by C(N, k) (counting the k-subsets whose
    class counts all stay below m).
    """
    n = sum(sizes)
    k = min(k, n)
    subsets = comb(n, k)
    expected = Fraction(0)
    for m in range(1, k + 1):
        poly = [1]
        for size in sizes:
            term = [comb(size, j) for j in range(min(m - 1, size) + 1)]
            poly = [
                sum(poly[i] * term[d - i] for i in range(len(poly)) if 0 <= d - i < len(term))
                for d in range(min(k, len(poly) + len(term) - 2) + 1)
            ]
        below = poly[k] if len(poly) > k else 0
        expected += 1 - Fraction(below, subsets)
    return expected / k


def test_the_expected_precision_of_a_random_unit_is_right_on_small_cases() -> None:
    # k = N: the top "60" are all images, the largest class's share
    assert expected_random_precision([3, 2], k=5) == Fraction(3, 5)
    # two classes of 2, k = 2: max is 2 with P = 2 / C(4, 2) = 1/3, else 1 -> E = 4/3, / 2
    assert expected_random_precision([2, 2], k=2) == Fraction(2, 3)


def _random_catalogue(engine: Engine, path: Path, sizes: list[int], n_units: int) -> int:
    """An extraction run (all images correct) of i.i.d. normal activations, scored."""
    rng = np.random.default_rng(11)
    labels = np.repeat(np.arange(len(sizes)), sizes)
    keys = [f"c{c}" for c in range(len(sizes))]
    with ActivationStore.create(
        path,
        [StoreLayer("fc", n_units, kind="fc")],
        class_keys=keys,
        class_names=keys,
        params={"model": "noise"},
        chunk_rows=256,
    ) as store:
        store.append(
            {"fc": rng.normal(size=(labels.size, n_units)).astype(np.float32)},
            labels=labels,
            predictions=labels,
            image_keys=[f"im{i}" for i in range(labels.size)],
        )
        store.finish()
    with engine.begin() as conn:
        model = register_model(
            conn,
            name="noise",
            architecture="noise",
            weights=None,
            checksum="n",
            layers=[LayerSpec("fc", "fc", n_units, 0)],
        )
        dataset = register_dataset(
            conn, name="noise", kind="test", source=None, class_keys=keys, class_names=keys
        )
    with recorded_run(
        engine, "extract", {"model": "noise"}, model_id=model.id, dataset_id=dataset.id,
        h5_path=str(path),
    ) as run:  # fmt: skip
        pass
    return score_extraction(engine, run.id).run_id


def test_chance_scoring_gives_a_random_unit_its_expected_precision(
    engine: Engine, tmp_path: Path
) -> None:
    sizes = [60, 50, 50, 40]
    score_run = _random_catalogue(engine, tmp_path / "noise.h5", sizes, n_units=256)
    result = chance_baseline(engine, score_run, repeats=6, seed=3)
    assert (result.repeats, result.n_images, result.score_run) == (6, 200, score_run)
    with engine.connect() as conn:
        chance = pd.read_sql_query(
            text("SELECT * FROM chance_metrics WHERE run_id = :r"),
            conn,
            params={"r": result.run_id},
        )
        run = conn.execute(
            text("SELECT kind, baseline_of, parent_id FROM run WHERE id = :r"), {"r": result.run_id}
        ).one()
    assert run.kind == "chance" and run.baseline_of == score_run
    assert len(chance) == 256 * 6 and set(chance["repeat"]) == set(range(6))
    assert set(MEASURE_NAMES) <= set(chance.columns)
    expected = float(expected_random_precision(sizes))  # .3218…
    values = chance["precision"].to_numpy()
    standard_error = values.std(ddof=1) / np.sqrt(values.size)
    assert abs(values.mean() - expected) < 4 * standard_error
    # the test tells the exact value from the naive guess, the largest class's share (.30)
    assert expected - max(sizes) / sum(sizes) > 8 * standard_error


# ----------------------------------------------------------------------- random weights


def test_random_weights_are_seeded_named_by_seed_and_the_same_network() -> None:
    trained = random_demo_model(num_classes=7, seed=5)
    first, again, other = (random_weights(trained, s) for s in (0, 0, 1))
    assert first.checksum == again.checksum != other.checksum != trained.checksum
    # named by the new seed, not the trained network's (demo_cnn@random-seed5)
    assert (first.name, first.weights) == ("demo_cnn@random-seed0", "random-seed0")
    assert first.transform is trained.transform and first.input_size == trained.input_size
    shapes = {k: v.shape for k, v in trained.module.state_dict().items()}
    assert {k: v.shape for k, v in first.module.state_dict().items()} == shapes
    # torchvision: the constructor's own initialisation, as load_model gives it for the seed
    resnet = load_model("resnet18", num_classes=3, input_size=32, seed=2)
    assert resnet.name == "resnet18@random-seed2" and resnet.weights == "random-seed2"
    assert random_weights(resnet, 2).checksum == resnet.checksum
    assert load_model("resnet18", num_classes=3, seed=2).checksum == resnet.checksum
    assert load_model("resnet18", num_classes=3, seed=3).checksum != resnet.checksum
    assert load_model("resnet18", num_classes=3, name="mine").name == "mine"


def test_random_weights_load_again_from_their_recipe() -> None:
    """How a Ray worker gets a random-weights baseline: the trained model's recipe and the
    seed (`catalogue.models.loading.load_random_weights`), never a pickled network."""
    trained = random_demo_model(num_classes=7, seed=5)
    random = random_weights(trained, 2, name="mine")
    recipe = random.recipe
    assert recipe is not None and recipe.loader.endswith(":load_random_weights")
    assert dict(recipe.arguments) == {"source": trained.recipe, "seed": 2, "name": "mine"}
    again = recipe.load()
    assert (again.checksum, again.name) == (random.checksum, "mine") == (recipe.checksum, "mine")
    assert again.recipe == recipe
    # a random copy of a random copy, and of a torchvision model loaded by name
    twice = random_weights(random, 3)
    assert twice.recipe is not None and twice.recipe.load().checksum == twice.checksum
    resnet = random_weights(load_model("resnet18", num_classes=3, input_size=32), 4)
    assert resnet.recipe is not None and resnet.recipe.load().checksum == resnet.checksum
    # no recipe to copy: a bare module, or weights changed after loading
    bare = ModelInfo.from_module(torch.nn.Sequential(torch.nn.Linear(3, 3)))
    assert random_weights(bare, 1).recipe is None
    with torch.no_grad():
        next(trained.module.parameters()).add_(1.0)
    assert random_weights(trained, 2).recipe is None


def test_a_module_that_cannot_be_reset_is_refused() -> None:
    class Scale(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.factor = torch.nn.Parameter(torch.ones(3))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * self.factor

    plain = ModelInfo.from_module(torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.ReLU()))
    assert random_weights(plain, 1).checksum == random_weights(plain, 1).checksum
    with pytest.raises(ConfigError, match="reset_parameters"):
        random_weights(ModelInfo.from_module(torch.nn.Sequential(Scale())), 0)


def _counts(frame: pd.DataFrame) -> dict[str, int]:
    """Detector counts per criterion over unit_catalogue rows, by the criteria's Python test,
    constant (dead) units left out as `layer_detectors` leaves them out."""
    records = [r for r in frame.to_dict("records") if NOT_CONSTANT.test(r)]
    return {c.key: sum(bool(c.test(r)) for r in records) for c in CRITERIA if c.count_column}


def test_baselines_link_to_their_runs_and_appear_in_layer_baselines(
    engine: Engine, scored: Scored, tmp_path: Path
) -> None:
    probe = build_probe("digits", n_images=12, image_size=32, seed=1, out_dir=tmp_path / "probe")
    dissected = dissect_into_catalogue(engine, scored.model, probe.directory, ["conv4", "conv5"])
    random = random_weights_baseline(engine, scored.extract_run, model=scored.model, seed=4)
    chance = chance_baseline(engine, scored.score_run, repeats=3)
    assert random.model == "demo:digits@random-seed4"
    with engine.connect() as conn:
        runs = {
            r.id: r
            for r in conn.execute(text("SELECT id, kind, parent_id, baseline_of, params FROM run"))
        }
        scored_images = dict(
            conn.execute(
                text("SELECT run_id, max(n_images) FROM unit_metrics GROUP BY run_id")
            ).all()
        )
        catalogue = pd.read_sql_query(text("SELECT * FROM unit_catalogue"), conn)
        baselines = pd.read_sql_query(text("SELECT * FROM layer_baselines"), conn)
        chance_rows = pd.read_sql_query(
            text(
                "SELECT l.name AS layer, cm.* FROM chance_metrics cm JOIN unit u ON u.id = cm.unit_id "
                "JOIN layer l ON l.id = u.layer_id"
            ),
            conn,
        )
    # each baseline run is a baseline of the trained run it repeats
    assert runs[random.extract_run].baseline_of == scored.extract_run
    assert runs[random.score_run].baseline_of == scored.score_run
    assert runs[random.dissect_run].baseline_of == dissected.run_id
    assert runs[chance.run_id].baseline_of == scored.score_run
    assert runs[random.score_run].params["rows_from"] == scored.score_run
    # the random network is scored on the images the trained one was scored on
    assert scored_images[random.score_run] == scored_images[scored.score_run]
    assert runs[random.dissect_run].params["probe"] == runs[dissected.run_id].params["probe"]

    assert set(baselines["score_run_id"]) == {scored.score_run}  # baselines are not trained rows
    assert len(baselines) == 4 * sum(1 for c in CRITERIA if c.count_column)
    for layer, rows in baselines.groupby("layer"):
        got = rows.set_index("criterion")
        trained = _counts(
            catalogue[(catalogue.run_id == scored.score_run) & (catalogue.layer == layer)]
        )
        at_random = _counts(
            catalogue[(catalogue.run_id == random.score_run) & (catalogue.layer == layer)]
        )
        per_repeat = [
            _counts(group.assign(best_iou=None, rating_consensus=None))
            for _, group in chance_rows[chance_rows.layer == layer].groupby("repeat")
        ]
        for key in trained:
            assert got.loc[key, "trained"] == trained[key], (layer, key)
            assert got.loc[key, "random"] == at_random[key], (layer, key)
            assert got.loc[key, "random_model"] == random.model
            assert got.loc[key, "chance_repeats"] == 3
            if key == "iou":  # permuting labels says nothing about dissection
                assert pd.isna(got.loc[key, "chance_mean"])
                continue
            values = [r[key] for r in per_repeat]
            assert got.loc[key, "chance_mean"] == pytest.approx(np.mean(values))
            assert got.loc[key, "chance_sd"] == pytest.approx(np.std(values, ddof=1))
    # constant (dead) units are left out of the chance counts: every conv5 unit made a
    # precision detector in every repeat, three of them constant
    with engine.connect() as conn, conn.begin() as transaction:
        conn.execute(
            text(
                "UPDATE chance_metrics cm SET precision = 1, constant = (u.unit_index < 3) "
                "FROM unit u JOIN layer l ON l.id = u.layer_id "
                "WHERE u.id = cm.unit_id AND l.name = 'conv5'"
            )
        )
        dead = pd.read_sql_query(
            text(
                "SELECT n_units, chance_mean, chance_sd FROM layer_baselines "
                "WHERE layer = 'conv5' AND criterion = 'precision'"
            ),
            conn,
        )
        transaction.rollback()
    n_units = int(dead["n_units"].item())
    assert n_units > 3
    assert (dead["chance_mean"].item(), dead["chance_sd"].item()) == (n_units - 3, 0.0)
    # the same command again finds the same network and reuses its runs
    again = random_weights_baseline(engine, scored.extract_run, model=scored.model, seed=4)
    assert (again.extract_run, again.score_run) == (random.extract_run, random.score_run)


def test_a_baseline_of_a_baseline_or_of_an_unscored_run_is_refused(
    engine: Engine, scored: Scored
) -> None:
    random = random_weights_baseline(
        engine, scored.extract_run, model=scored.model, seed=1, dissect=False
    )
    with pytest.raises(InputError, match="itself a baseline"):
        chance_baseline(engine, random.score_run, repeats=1)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM run WHERE kind = 'score'"))
    with pytest.raises(InputError, match="has not been scored"):
        chance_baseline(engine, scored.extract_run, repeats=1)
