"""`ablate_into_catalogue` end to end: real HDF5 stores, real PostgreSQL, real forward passes.

A constructed network whose units each carry one class; the fast path (fc layers from the
store, conv layers from the images) against a hook and a full forward per unit; class
curves against the single-unit results; the views against literal computations; a killed
ablation leaves no partial rows.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from sqlalchemy import Engine, text
from torch import nn

from catalogue.ablation import CurvePlan, choose_rows
from catalogue.cluster import UnitBlock
from catalogue.data import ArrayImageDataset
from catalogue.measures import IMPORTANCE_CLASS, SELECTIVE_CLASSES
from catalogue.models import ModelInfo
from catalogue.pipeline.ablate import CurveOptions, ablate_into_catalogue
from catalogue.pipeline.extract import extract_into_catalogue
from catalogue.pipeline.scoring import score_extraction
from catalogue.store import ActivationStore
from tests.ablation_fixtures import Scored
from tests.test_ablation import plain_counts, slow_top_share

REPO = Path(__file__).resolve().parents[1]

# ------------------------------------------------------------- one unit carries one class


class QuadrantTransform:
    """8 × 8 grey image → (3, 8, 8) in [0, 1]."""

    def __call__(self, image: Image.Image) -> torch.Tensor:
        x = torch.from_numpy(np.asarray(image.convert("L"), dtype=np.float32) / 255.0)
        return x.expand(3, 8, 8).contiguous()


class OneUnitPerClass(nn.Module):
    """Four classes, each a bright quadrant. ``detect`` (conv, 1 × 1 map) and ``hidden`` (fc)
    have one unit per quadrant; the logits are 2·hidden + (0, 0, 0, .5), so removing unit c
    < 3 leaves the bias, which calls every image class 3: class c drops to 0, the others
    stay. Class 3 is carried by the bias as well, so unit 3 matters for nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.detect = nn.Sequential(nn.Conv2d(3, 4, kernel_size=8), nn.ReLU())
        self.flat = nn.Flatten()
        self.hidden = nn.Sequential(nn.Linear(4, 4), nn.ReLU())
        self.out = nn.Linear(4, 4)
        with torch.no_grad():
            weight = torch.zeros(4, 3, 8, 8)
            for c in range(4):
                r, q = divmod(c, 2)
                weight[c, :, 4 * r : 4 * r + 4, 4 * q : 4 * q + 4] = 1.0 / 48
            self.detect[0].weight.copy_(weight)
            self.detect[0].bias.fill_(-0.5)
            self.hidden[0].weight.copy_(4 * torch.eye(4))
            self.hidden[0].bias.zero_()
            self.out.weight.copy_(2 * torch.eye(4))
            self.out.bias.copy_(torch.tensor([0.0, 0.0, 0.0, 0.5]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.hidden(self.flat(self.detect(x))))


def quadrant_images(per_class: int = 20) -> ArrayImageDataset:
    rng = np.random.default_rng(0)
    n = 4 * per_class
    labels = np.arange(n) % 4
    images = rng.integers(0, 20, size=(n, 8, 8)).astype(np.uint8)
    for i, c in enumerate(labels):
        r, q = divmod(int(c), 2)
        images[i, 4 * r : 4 * r + 4, 4 * q : 4 * q + 4] = rng.integers(200, 256, size=(4, 4))
    names = ["zero", "one", "two", "three"]
    return ArrayImageDataset(
        images,
        labels,
        [f"q{i:03d}" for i in range(n)],
        name="quadrants",
        class_keys=names,
        class_names=names,
        transform=QuadrantTransform(),
    )


def test_removing_the_unit_that_alone_carries_a_class_takes_that_class_to_zero(
    engine: Engine,
) -> None:
    model = ModelInfo.from_module(OneUnitPerClass(), transform=QuadrantTransform(), input_size=8)
    data = quadrant_images()
    extracted = extract_into_catalogue(engine, model, data, ["detect", "hidden"])
    assert extracted.summary.accuracy == 1.0
    score_extraction(engine, extracted.run_id)
    result = ablate_into_catalogue(
        engine,
        extracted.run_id,
        ["detect", "hidden"],
        curves=CurveOptions(rankings=("ablation", "precision")),
        model=model,
        dataset=data,
    )
    # unit c < 3 takes class c to 0 and leaves the others at 1; unit 3 changes nothing
    want = np.zeros((4, 4))
    want[[0, 1, 2], [0, 1, 2]] = -1.0
    with h5py.File(result.path) as h5:
        for layer in ("detect", "hidden"):
            np.testing.assert_array_equal(h5["layers"][layer]["accuracy_change"][...], want)
            np.testing.assert_array_equal(h5["layers"][layer]["baseline_correct"][...], [20] * 4)
        assert h5["layers/detect"].attrs["kind"] == "conv"
    with engine.connect() as conn:
        rows = (
            conn.execute(
                text(
                    "SELECT layer, unit, accuracy_change, most_hurt_class, most_hurt_change, "
                    "precision_class, precision_class_change, mi_class, mi_class_change, "
                    "ccmas_class, ccmas_class_change, detector_bar_class, "
                    "detector_bar_class_change "
                    "FROM unit_importance WHERE run_id = :r ORDER BY layer, unit"
                ),
                {"r": result.run_id},
            )
            .mappings()
            .all()
        )
        curve = conn.execute(
            text(
                "SELECT k, units, class_accuracy, other_accuracy FROM class_ablation_curve c "
                "JOIN layer l ON l.id = c.layer_id WHERE c.run_id = :r AND l.name = 'hidden' "
                "AND class_index = 1 AND ranking = 'ablation' ORDER BY k"
            ),
            {"r": result.run_id},
        ).all()
    assert len(rows) == 8
    names = ["zero", "one", "two", "three"]
    for row in rows:
        u = row["unit"]
        assert row["accuracy_change"] == pytest.approx(-0.25 if u < 3 else 0.0)
        # the selective classes of unit c are class c by every measure
        for column in SELECTIVE_CLASSES:
            assert row[column] == names[u]
            assert row[f"{column}_change"] == (-1.0 if u < 3 else 0.0)
        # most hurt: its own class; unit 3 hurts none, ties go to the lowest class index
        assert (row["most_hurt_class"], row["most_hurt_change"]) == (
            (names[u], -1.0) if u < 3 else ("zero", 0.0)
        )
    # removing the top unit for class 1 (unit 1) takes it to 0; every unit: all to class 3
    assert curve[0][1:] == ([], 1.0, 1.0)
    assert curve[1][1:] == ([1], 0.0, 1.0)
    assert curve[-1][1][0] == 1 and sorted(curve[-1][1]) == [0, 1, 2, 3]  # in rank order
    assert curve[-1][2:] == (0.0, pytest.approx(1 / 3))


# ---------------------------------------------------------------- fast path vs plain loop


def _literal_means(model: ModelInfo, node: str, images: torch.Tensor) -> torch.Tensor:
    """Each unit's mean over the images and, for a conv unit, its map's positions."""
    captured = []
    target = dict(model.module.named_modules())[node]
    handle = target.register_forward_hook(lambda _m, _i, out: captured.append(out.double()))
    try:
        with torch.inference_mode():
            model.module.eval()(images)
    finally:
        handle.remove()
    out = captured[0]
    dims = [0, *range(2, out.ndim)]
    return out.mean(dim=dims).float()


@pytest.mark.parametrize("value", ["zero", "mean"])
def test_the_fast_path_equals_a_hook_and_a_full_forward_per_unit(
    engine: Engine, scored: Scored, value: str
) -> None:
    result = ablate_into_catalogue(
        engine,
        scored.extract_run,
        ["conv4", "fc6"],
        value=value,
        images=40,
        curves=None,
        model=scored.model,
        dataset=scored.dataset,
        batch_size=16,
    )
    with ActivationStore.open(scored.h5_path) as store:
        rows = choose_rows(store.labels, store.correct, 40)
        labels = torch.from_numpy(store.labels[rows])
    images = torch.stack([scored.dataset[int(i)].image for i in rows])
    with h5py.File(result.path) as h5:
        np.testing.assert_array_equal(h5["images/rows"][...], rows)
        # every conv4 unit; every fourth fc6 unit (the literal loop is slow)
        for layer, n_units, step in (("conv4", 32, 1), ("fc6", 128, 4)):
            group = h5["layers"][layer]
            units = list(range(0, n_units, step))
            values = (
                torch.zeros(n_units)
                if value == "zero"
                else _literal_means(scored.model, layer, images)
            )
            np.testing.assert_allclose(group["replacement"][...], values.numpy(), rtol=1e-5)
            slow = plain_counts(
                scored.model.module,
                layer,
                images,
                labels,
                [[], *([u] for u in units)],
                torch.from_numpy(group["replacement"][...]).float(),
                10,
            )
            np.testing.assert_array_equal(group["baseline_correct"][...], slow[0])
            np.testing.assert_array_equal(group["correct"][...][units], slow[1:])
    assert result.layers["conv4"].correct.sum() > 0
    if value == "zero":  # fc layers from the images give what they give from the store
        again = ablate_into_catalogue(
            engine,
            scored.extract_run,
            ["fc6"],
            images=40,
            curves=None,
            model=scored.model,
            dataset=scored.dataset,
            use_store=False,
        )
        np.testing.assert_array_equal(again.layers["fc6"].correct, result.layers["fc6"].correct)


@pytest.mark.parametrize("value", ["zero", "mean"])
def test_ablation_in_blocks_equals_one_pass_per_layer(
    engine: Engine, scored: Scored, value: str
) -> None:
    """The cluster path's blocks (`catalogue.ablation.blocks`), run here one after the other
    (``cluster=None``): the same counts, replacement values and curve points as one pass."""
    from catalogue.ablation import dataset_indices
    from catalogue.ablation.blocks import AblateContext, ablate_block, ablate_in_blocks
    from catalogue.cluster.handles import ModelHandle
    from catalogue.pipeline.ablate import _layer_scores

    layers = ["conv5", "fc6"]
    curves = CurveOptions(rankings=("ablation", "precision", "random"), classes=[0, 3], max_k=8)
    one = ablate_into_catalogue(
        engine,
        scored.extract_run,
        layers,
        value=value,
        images=40,
        curves=curves,
        model=scored.model,
        dataset=scored.dataset,
        batch_size=16,
    )
    with ActivationStore.open(scored.h5_path) as store:
        rows = choose_rows(store.labels, store.correct, 40)
        labels = store.labels[rows].astype(np.int64)
        keys = store.image_keys
        scores = {n: _layer_scores(store, n, np.flatnonzero(store.correct), 10) for n in layers}
    handle = ModelHandle.of(scored.model)
    assert handle.module_ref is None  # the checkpoint's model travels by its recipe
    context = AblateContext(
        handle, str(scored.h5_path), rows, labels, 10, {"conv5": "conv", "fc6": "fc"},
        scored.dataset, dataset_indices(scored.dataset, [keys[i] for i in rows]), True, 16, 0,
        "cpu", None,
    )  # fmt: skip
    for layer, n_units, block_units in (("conv5", 32, 7), ("fc6", 128, 50)):
        seen: list[tuple[int, int]] = []
        plan = CurvePlan(curves.rankings, curves.classes, curves.max_k, scores=scores[layer])
        got, points = ablate_in_blocks(
            None,
            context,
            layer,
            n_units=n_units,
            value=value,
            curves=plan,
            block_units=block_units,
            on_progress=lambda d, t, seen=seen: seen.append((d, t)),
        )
        want = one.layers[layer]
        np.testing.assert_array_equal(got.replacement, want.replacement)
        np.testing.assert_array_equal(got.baseline_correct, want.baseline_correct)
        np.testing.assert_array_equal(got.correct, want.correct)
        np.testing.assert_array_equal(got.class_sizes, want.class_sizes)
        assert points == one.curves[layer]
        assert len(points) > 2 * len(curves.rankings)
        assert seen[-1][0] == seen[-1][1] and [d for d, _ in seen] == sorted(d for d, _ in seen)
    if value == "zero":  # a block that is not the first has no baseline row
        later = ablate_block(
            dataclasses.replace(context, replacement={"fc6": np.zeros(128)}),
            UnitBlock("fc6", 50, 100),
        )
        np.testing.assert_array_equal(later, one.layers["fc6"].correct[50:100])


# ----------------------------------------------------- curves and views against literals


def test_curves_and_views_agree_with_the_single_unit_matrix(engine: Engine, scored: Scored) -> None:
    classes = [0, 3]
    result = ablate_into_catalogue(
        engine,
        scored.extract_run,
        ["conv5", "fc7"],
        images=120,
        curves=CurveOptions(classes=classes),
        model=scored.model,
        dataset=scored.dataset,
    )
    with engine.connect() as conn:
        curves = pd.read_sql_query(
            text(
                "SELECT l.name AS layer, c.* FROM class_ablation_curve c "
                "JOIN layer l ON l.id = c.layer_id WHERE run_id = :r"
            ),
            conn,
            params={"r": result.run_id},
        )
        importance = pd.read_sql_query(
            text("SELECT * FROM unit_importance WHERE run_id = :r"),
            conn,
            params={"r": result.run_id},
        )
        correlations = pd.read_sql_query(
            text("SELECT * FROM selectivity_vs_importance WHERE run_id = :r"),
            conn,
            params={"r": result.run_id},
        )
    with ActivationStore.open(scored.h5_path) as store:
        correct_rows = store.correct.astype(bool)
        selectivity = {
            n: store.read_units(n, 0, store.layer_shape(n)[1], rows=correct_rows)
            for n in ("conv5", "fc7")
        }
        scored_labels = store.labels[correct_rows]
    checked = n_constant = 0
    for layer, ablation in result.layers.items():
        sizes = ablation.class_sizes
        n_units = ablation.n_units
        change = ablation.accuracy_change
        layer_curves = curves[curves["layer"] == layer]
        assert sorted(layer_curves["class_index"].unique()) == classes
        assert sorted(layer_curves["ranking"].unique()) == sorted(
            ("ablation", "class_mean", "ccmas", "precision", "random")
        )
        shares = slow_top_share(selectivity[layer], scored_labels, 10, 60)
        for c in classes:
            points = layer_curves[layer_curves["class_index"] == c].set_index(["ranking", "k"])
            base = ablation.baseline_correct[c] / sizes[c]
            assert (points.xs(0, level="k")["class_accuracy"] == base).all()
            # k = 1 by ablation: the unit whose removal hurt class c most, as it did alone
            first = points.loc[("ablation", 1)]
            (top,) = first["units"]
            assert change[top, c] == np.nanmin(change[:, c])
            assert first["class_accuracy"] == pytest.approx(ablation.correct[top, c] / sizes[c])
            others = ablation.correct[top].sum() - ablation.correct[top, c]
            assert first["other_accuracy"] == pytest.approx(others / (sizes.sum() - sizes[c]))
            # k = 1 by precision: the unit with the largest share of c among its top 60
            best = points.loc[("precision", 1)]["units"][0]
            assert shares[best, c] == pytest.approx(shares[:, c].max())
            # every ranking removes the same units at k = every unit
            last = points.xs(n_units, level="k")
            assert last["class_accuracy"].nunique() == 1
        # unit_importance: the selective classes' changes are the matrix's entries
        rows = importance[importance["layer"] == layer].set_index("unit")
        for column in SELECTIVE_CLASSES:
            for u, row in rows.iterrows():
                index = row[f"{column}_index"]
                if not pd.isna(index):
                    assert row[f"{column}_change"] == pytest.approx(change[u, int(index)])
        # selectivity_vs_importance: Spearman with average ranks, pairwise complete, constant
        # (dead) units left out (their measures describe the class sizes, not the unit)
        live = rows[~rows["constant"].astype("boolean").fillna(False).astype(bool)]
        n_constant += len(rows) - len(live)
        for measure, column in IMPORTANCE_CLASS.items():
            pair = pd.DataFrame({"m": live[measure], "drop": -live[f"{column}_change"]}).dropna()
            view = correlations[
                (correlations["layer"] == layer) & (correlations["measure"] == measure)
            ]
            if len(pair) < 2 or pair["m"].nunique() < 2 or pair["drop"].nunique() < 2:
                continue
            checked += 1
            want = np.corrcoef(pair["m"].rank(), pair["drop"].rank())[0, 1]
            assert view["class_column"].item() == column
            assert view["n"].item() == len(pair)
            assert view["spearman_class_drop"].item() == pytest.approx(want)
    assert checked >= 12  # most measures, in both layers, had varying values
    assert n_constant > 0  # the quick demo CNN has dead units: the view left them out


# ------------------------------------------------------------------- killed: no partial rows

CHILD = """
import os, signal, sys
from sqlalchemy import create_engine
from catalogue.data import resolve_dataset
from catalogue.models import load_demo_checkpoint
from catalogue.pipeline.ablate import ablate_into_catalogue

model = load_demo_checkpoint(sys.argv[1])
data = resolve_dataset("digits:test", transform=model.transform)
engine = create_engine(os.environ["DATABASE_URL"])

def progress(layer, done, total):
    if layer == "fc6" and done * 2 >= total:  # the second layer, half done
        os.kill(os.getpid(), signal.SIGKILL)

ablate_into_catalogue(engine, int(sys.argv[2]), ["conv4", "fc6"], images=60, model=model,
                      dataset=data, on_progress=progress)
"""


def test_a_killed_ablation_leaves_no_partial_rows(
    engine: Engine, scored: Scored, database_url: str, trained_checkpoint: Path, tmp_path: Path
) -> None:
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(CHILD))
    env = {**os.environ, "PYTHONPATH": str(REPO), "DATABASE_URL": database_url}
    child = subprocess.run(
        [sys.executable, str(script), str(trained_checkpoint), str(scored.extract_run)],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    tables = ("unit_ablation", "unit_ablation_class", "class_ablation_curve")
    with engine.connect() as conn:
        run = conn.execute(text("SELECT id, status, h5_path FROM run WHERE kind = 'ablate'")).one()
        counts = [conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in tables]
    assert run.status == "running"  # its process is gone; nothing was written
    assert counts == [0, 0, 0]
    assert not Path(run.h5_path).exists()  # no file that looks finished

    done = ablate_into_catalogue(
        engine,
        scored.extract_run,
        ["conv4", "fc6"],
        images=60,
        model=scored.model,
        dataset=scored.dataset,
    )
    assert done.run_id == run.id  # the same command resumes the same run
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM unit_ablation")).scalar_one() == 32 + 128
        assert (
            conn.execute(text("SELECT status FROM run WHERE id = :i"), {"i": run.id}).scalar()
            == "done"
        )
    assert Path(run.h5_path).is_file()
