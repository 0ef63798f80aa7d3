"""The scorer against a slow literal implementation, the paper's examples and scikit-learn."""

from __future__ import annotations

import math
from dataclasses import replace
from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_curve

from catalogue.errors import InputError
from catalogue.measures import (
    CCMAS_NEGATIVE,
    CCMAS_NO_POSITIVE_MEAN,
    CCMAS_ONE_CLASS,
    GROUP_MEASURES,
    MEASURE_NAMES,
    METRIC_COLUMNS,
)
from catalogue.selectivity import ccmas_layer_rule, score_layer, score_units, sorting
from catalogue.selectivity.kernel import _at_or_above
from catalogue.selectivity.sorting import sort_by_class, sort_head
from tests.selectivity_reference import (
    class_count_expectation,
    distinct_class_expectation,
    reference_class_stats,
    reference_group,
    reference_layer,
    reference_top_images,
    reference_unit,
)

SETTINGS = settings(
    max_examples=70,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

#: Few distinct (exactly summable) values, so that ties are everywhere.
POOL = [0.0, 0.0, 0.0, 0.5, 1.0, 1.0, 1.5, 2.0, 3.0, -1.0, -0.25]


def assert_same(fast: object, ref: object, what: str) -> None:
    if isinstance(ref, float) and math.isnan(ref):
        assert math.isnan(float(fast)), f"{what}: expected NaN, got {fast}"
    elif isinstance(ref, float):
        assert float(fast) == pytest.approx(ref, rel=1e-9, abs=1e-12), what
    else:
        assert fast == ref, f"{what}: got {fast}, expected {ref}"


@st.composite
def cases(draw: st.DrawFn) -> dict:
    n = draw(st.integers(1, 70))
    n_classes = draw(st.sampled_from([1, 2, 3, 5, 12, 40]))
    labels = draw(st.lists(st.integers(0, n_classes - 1), min_size=n, max_size=n))
    n_units = draw(st.integers(1, 4))
    source = draw(st.sampled_from(["pool", "relu", "float16", "sparse16"]))
    columns = []
    for _ in range(n_units):
        shape = draw(st.sampled_from(["free", "free", "free", "zero", "constant", "one"]))
        if source in ("pool", "relu"):  # relu: a layer without negative values
            pool = POOL if source == "pool" else [max(v, 0.0) for v in POOL]
            col = draw(st.lists(st.sampled_from(pool), min_size=n, max_size=n))
        else:
            col = draw(
                st.lists(
                    st.floats(-2, 8, width=16, allow_nan=False, allow_infinity=False),
                    min_size=n,
                    max_size=n,
                )
            )
            if source == "sparse16":
                col = [max(v, 0.0) if v > 3 else 0.0 for v in col]
        if shape == "zero":
            col = [0.0] * n
        elif shape == "constant":
            col = [col[0]] * n
        elif shape == "one":
            col = [0.0] * n
            col[draw(st.integers(0, n - 1))] = 2.5
        columns.append(col)
    acts = np.array(columns, dtype=np.float32 if source in ("pool", "relu") else np.float16).T
    options = {
        "top_k": draw(st.sampled_from([60, 1, 2, 5, n, n + 1])),
        "top_n_classes": draw(st.sampled_from([100, 1, 3, 7, n])),
        "precision_target": draw(st.sampled_from([0.95, 0.5, 0.75, 1.0])),
        "csi_top_n": draw(st.sampled_from([100, 1, 2, 6, n])),
        "csi_threshold": draw(st.sampled_from([1.0, 1.0, 0.5, 0.75, 0.25])),
    }
    return {
        "acts": acts,
        "labels": np.array(labels),
        "n_classes": n_classes,
        "options": options,
        "block_units": draw(st.sampled_from([None, 1, 3])),
        "as_tensor": draw(st.booleans()),
    }


@SETTINGS
@given(cases())
def test_every_measure_matches_the_literal_definition(case: dict) -> None:
    acts = torch.from_numpy(case["acts"]) if case["as_tensor"] else case["acts"]
    got = score_units(
        acts,
        case["labels"],
        case["n_classes"],
        block_units=case["block_units"],
        **case["options"],
    )
    assert set(got) == set(METRIC_COLUMNS) and set(MEASURE_NAMES) < set(got)
    columns = case["acts"].astype(np.float64).T.tolist()
    refs = reference_layer(columns, case["labels"].tolist(), case["n_classes"], **case["options"])
    for u, ref in enumerate(refs):
        for name in METRIC_COLUMNS:
            assert_same(got[name][u], ref[name], f"unit {u} {name}")
    assert not (np.abs(got["ccmas"]) > 1).any()  # never outside [-1, 1]


@settings(max_examples=35, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases(), st.integers(1, 4), st.integers(1, 8))
def test_layer_details_match_the_literal_definition(
    case: dict, n_top_classes: int, n_top_images: int
) -> None:
    n_classes = case["n_classes"]
    groups = {"low": [0], "pair": [0, n_classes - 1], "all": list(range(n_classes))}
    layer = score_layer(
        case["acts"],
        case["labels"],
        n_classes,
        groups=groups,
        n_top_classes=n_top_classes,
        n_top_images=n_top_images,
        block_units=case["block_units"],
        top_k=case["options"]["top_k"],
    )
    labels = case["labels"].tolist()
    stats = layer.class_stats
    negative = bool((case["acts"] < 0).any())
    for u in range(case["acts"].shape[1]):
        a = case["acts"][:, u].astype(np.float64).tolist()
        # top images: descending, ties to the lower image index
        want = reference_top_images(a, n_top_images)
        assert layer.top_image_index[u, : len(want)].tolist() == want
        assert (layer.top_image_index[u, len(want) :] == -1).all()
        assert layer.top_image_class[u, : len(want)].tolist() == [labels[i] for i in want]
        # class statistics of every stored class, and the stored set itself
        ref = reference_class_stats(a, labels, n_classes)
        rows = np.flatnonzero(stats["unit"] == u)
        for r in rows:
            c = int(stats["class_index"][r])
            for name, value in ref[c].items():
                assert_same(stats[name][r], value, f"unit {u} class {c} {name}")
        by_mean = sorted(ref, key=lambda c: (-ref[c]["mean_activation"], c))
        kept = set(by_mean[:n_top_classes])
        if not math.isnan(next(iter(ref.values()))["informedness"]):
            kept |= set(sorted(ref, key=lambda c: (-ref[c]["informedness"], c))[:n_top_classes])
        assert set(stats["class_index"][rows].tolist()) == kept
        for r in rows:
            assert stats["rank_by_mean"][r] == by_mean.index(stats["class_index"][r]) + 1
        # class groups
        for name, members in groups.items():
            ref_g = reference_group(
                a, labels, set(members), top_k=case["options"]["top_k"], layer_negative=negative
            )
            for col in GROUP_MEASURES:
                assert_same(layer.group_metrics[name][col][u], ref_g[col], f"{name} {col}")


def test_tie_formulas_equal_enumeration_of_every_order() -> None:
    """The closed forms (linear shares, hypergeometric) are the expectation over tie orders."""
    rng = np.random.default_rng(3)
    for _ in range(30):
        n = int(rng.integers(3, 12))
        a = rng.choice([0.0, 1.0, 2.0], size=n).tolist()
        y = rng.integers(0, 4, size=n).tolist()
        k = int(rng.integers(1, n + 1))
        for c in range(4):
            exact = class_count_expectation(a, y, k, {c}, limit=10**9)
            closed = class_count_expectation(a, y, k, {c}, limit=0)
            assert exact == closed
        assert distinct_class_expectation(a, y, k, limit=10**9) == distinct_class_expectation(
            a, y, k, limit=0
        )


def figure12(kind: str) -> tuple[np.ndarray, np.ndarray]:
    """The paper's Figure 12 units: 10 classes × 100 images, class 3 the selective one."""
    labels = np.repeat(np.arange(10), 100)
    a = np.zeros(1000, dtype=np.float32)
    if kind == "a":  # off for everything but one image
        a[300] = 1.0
    elif kind == "b":  # on for all of one class, off for the rest
        a[labels == 3] = 1.0
    else:  # all active; class 3 0.1 above every other image
        a[:] = np.linspace(0.95, 1.0, 1000, dtype=np.float32)
        a[labels == 3] = 1.1
    return a[:, None], labels


def test_figure12a_one_active_image_gets_maximal_ccmas_but_low_precision() -> None:
    a, labels = figure12("a")
    got = score_units(a, labels, 10)
    assert got["ccmas"][0] == 1.0
    assert got["ccmas_class"][0] == 3
    # one class-3 image above the cut; 59 slots shared over 999 tied zeros (99 of class 3)
    assert got["precision"][0] == pytest.approx(float((1 + Fraction(59 * 99, 999)) / 60))
    assert got["precision"][0] < 0.12
    assert not got["localist"][0]
    assert got["recall_at_p100"][0] == pytest.approx(0.01)


def test_figure12b_grandmother_cell_is_localist_with_precision_one() -> None:
    a, labels = figure12("b")
    got = score_units(a, labels, 10)
    assert got["ccmas"][0] == 1.0
    assert got["precision"][0] == 1.0
    assert got["localist"][0] and got["localist_class"][0] == 3
    assert got["max_informedness"][0] == 1.0
    assert got["false_alarm_rate"][0] == 0.0
    assert got["class_selectivity_index"][0] == 1.0


def test_figure12c_all_active_unit_has_low_ccmas_despite_precision_one() -> None:
    a, labels = figure12("c")
    got = score_units(a, labels, 10)
    x = a[:, 0].astype(np.float64)
    mu_in, mu_out = x[labels == 3].mean(), x[labels != 3].mean()
    assert got["ccmas"][0] == pytest.approx((mu_in - mu_out) / (mu_in + mu_out), rel=1e-12)
    assert got["ccmas"][0] == pytest.approx(0.06, abs=0.005)
    assert got["precision"][0] == 1.0
    assert got["localist"][0] and got["localist_class"][0] == 3
    assert got["recall_at_p100"][0] == 1.0


def test_max_informedness_is_the_best_youden_j_of_scikit_learn_roc_curves() -> None:
    rng = np.random.default_rng(7)
    n, n_classes = 600, 6
    labels = rng.integers(0, n_classes, n)
    acts = np.maximum(rng.normal(size=(n, 8)) + 0.6 * (labels[:, None] == 2), 0)
    acts = np.round(acts, 1).astype(np.float32)  # ties
    got = score_units(acts, labels, n_classes)
    for u in range(acts.shape[1]):
        best = -1.0
        for c in range(n_classes):
            fpr, tpr, _ = roc_curve(labels == c, acts[:, u], drop_intermediate=False)
            best = max(best, float(np.max(tpr - fpr)))
        assert got["max_informedness"][u] == pytest.approx(best, abs=1e-12)


def test_blocks_devices_and_dtypes_do_not_change_the_scores() -> None:
    rng = np.random.default_rng(11)
    n, n_classes = 3000, 20
    labels = rng.integers(0, n_classes, n)
    acts = np.maximum(rng.normal(size=(n, 9)) - 0.9, 0).astype(np.float16)
    acts[:, 3] = 0  # a dead unit in the middle of a block
    whole = score_units(acts, labels, n_classes, device="cpu")
    options = (
        {"block_units": 1},
        {"block_units": 4},
        {"memory_budget": 1},
        {"block_units": 9, "memory_budget": 192 * 1000},  # rows scored one at a time
        {"memory_budget": 40 * 3000 * 4},  # blocks sized from the density seen
    )
    for kwargs in options:
        part = score_units(acts.astype(np.float32), labels, n_classes, **kwargs)
        for name in METRIC_COLUMNS:
            np.testing.assert_array_equal(part[name], whole[name], err_msg=name)
    tensor = score_units(torch.from_numpy(acts), torch.from_numpy(labels), n_classes)
    for name in METRIC_COLUMNS:
        np.testing.assert_array_equal(tensor[name], whole[name], err_msg=name)


def test_undefined_measures_for_dead_units_and_single_class_data() -> None:
    labels = np.array([0, 0, 1, 1, 2])
    dead = score_units(np.zeros((5, 1)), labels, 4)
    assert math.isnan(dead["ccmas"][0]) and dead["ccmas_class"][0] == -1
    assert dead["ccmas_undefined"][0] == CCMAS_NO_POSITIVE_MEAN
    assert dead["max_informedness"][0] == 0.0 and dead["mi_class"][0] == 0
    assert dead["mi_threshold"][0] == 0.0 and dead["false_alarm_rate"][0] == 0.6
    assert dead["precision"][0] == pytest.approx(0.4)  # the largest class's share of all
    assert dead["recall_at_p100"][0] == 0.0 and not dead["localist"][0]
    assert dead["class_selectivity_index"][0] == 0.0 and dead["frac_zero"][0] == 1.0
    single = score_units(np.array([[0.0], [1.0], [2.0]]), [1, 1, 1], 3)
    assert math.isnan(single["max_informedness"][0]) and single["mi_class"][0] == -1
    assert math.isnan(single["ccmas"][0]) and single["ccmas_undefined"][0] == CCMAS_ONE_CLASS
    assert single["localist"][0] and single["localist_class"][0] == 1
    assert single["precision"][0] == 1.0 and single["recall_at_p95"][0] == 1.0


def test_no_units_gives_empty_columns() -> None:
    got = score_units(np.zeros((4, 0), dtype=np.float32), [0, 1, 0, 1], 2)
    assert set(got) == set(METRIC_COLUMNS)
    assert got["ccmas_undefined"].dtype == np.int64
    assert all(v.shape == (0,) for v in got.values())
    assert got["localist"].dtype == bool and got["mi_class"].dtype == np.int64


def test_layer_rows_are_ready_to_write() -> None:
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 4, 50)
    acts = rng.random((50, 3)).astype(np.float32)
    layer = score_layer(acts, labels, 4, groups={"g": [1, 2]}, n_top_images=5)
    table = layer.top_image_table()
    assert table["rank"].tolist() == [1, 2, 3, 4, 5] * 3
    assert table["unit"].tolist() == [0] * 5 + [1] * 5 + [2] * 5
    groups = layer.group_table()
    assert groups["group"].tolist() == ["g"] * 3 and groups["unit"].tolist() == [0, 1, 2]
    assert set(groups) == {"group", "unit", *GROUP_MEASURES}
    np.testing.assert_array_equal(layer.class_counts, np.bincount(labels, minlength=4))


@pytest.mark.parametrize(
    ("acts", "labels", "n_classes", "message"),
    [
        (np.zeros((3, 2)), [0, 1], 2, "labels has 2 entries but activations have 3 images"),
        (np.zeros((3, 2)), [0, 1, 2], 2, "1 labels lie outside 0..1 (first: image 2"),
        (np.zeros((3, 2)), [0, -1, 1], 2, "outside 0..1 (first: image 1 has label -1)"),
        (np.zeros((3, 2)), [0.0, 1.5, 1.0], 2, "image 1 has label 1.5"),
        (np.zeros(3), [0, 1, 1], 2, "must be a 2-D array (images × units); got shape (3,)"),
        (np.zeros((2, 2, 2)), [0, 1], 2, "got shape (2, 2, 2)"),
        (np.zeros((0, 4)), [], 2, "no images"),
        (np.zeros((3, 2)), [0, 0, 0], 0, "n_classes must be at least 1"),
        (np.zeros((3, 2)), [[0, 0, 0]], 2, "labels must be a 1-D sequence"),
        (np.array([["a"], ["b"]]), [0, 1], 2, "activations must be real numbers"),
    ],
)
def test_bad_input_is_an_input_error_naming_the_problem(
    acts: np.ndarray, labels: list, n_classes: int, message: str
) -> None:
    with pytest.raises(InputError, match=None) as err:
        score_units(acts, labels, n_classes)
    assert message in str(err.value)


def test_non_finite_activations_are_counted_and_located() -> None:
    acts = np.zeros((10, 12), dtype=np.float32)
    acts[2, 7] = acts[3, 7] = acts[5, 9] = np.nan
    acts[1, 11] = np.inf
    with pytest.raises(InputError) as err:
        score_units(acts, np.zeros(10, dtype=int), 1, block_units=5)
    assert "3 NaN values and 1 infinite value (first in unit 7)" in str(err.value)
    big = np.full((4, 1), 1e300)  # overflows float32
    with pytest.raises(InputError, match=r"infinite value.*overflow float32"):
        score_units(big, [0, 1, 0, 1], 2)


def test_bad_options_and_groups_are_input_errors() -> None:
    acts, labels = np.ones((4, 1)), [0, 1, 0, 1]
    with pytest.raises(InputError, match="top_k must be a positive integer"):
        score_units(acts, labels, 2, top_k=0)
    with pytest.raises(InputError, match="precision_target must lie in"):
        score_units(acts, labels, 2, precision_target=1.5)
    with pytest.raises(InputError, match="csi_threshold must lie in"):
        score_units(acts, labels, 2, csi_threshold=0.0)
    with pytest.raises(InputError, match="class group 'bus' names class 5"):
        score_layer(acts, labels, 2, groups={"bus": [0, 5]})
    with pytest.raises(InputError, match="class group 'x' has no classes"):
        score_layer(acts, labels, 2, groups={"x": []})


def test_informedness_ties_go_to_the_highest_threshold() -> None:
    """Class 1 reaches J = 0 both at 2.0 and at the minimum 0.0: 2.0 is stored."""
    a = np.array([[2.0], [0.0], [1.0], [2.0], [1.0], [0.0]], dtype=np.float32)
    labels = np.array([1, 1, 1, 2, 0, 2])
    layer = score_layer(a, labels, 3, groups={"one": [1]}, n_top_classes=3)
    row = np.flatnonzero(layer.class_stats["class_index"] == 1)[0]
    assert layer.class_stats["informedness"][row] == 0.0
    assert layer.class_stats["informedness_threshold"][row] == 2.0
    assert layer.group_metrics["one"]["max_informedness"][0] == 0.0
    assert layer.group_metrics["one"]["mi_threshold"][0] == 2.0
    # class 0 reaches J = 1/2 at 3.0 and at 1.0; class 1 reaches 1/2 at 2.0 (below)
    a = np.array([[3.0, 2.0], [1.0, 0.0], [2.0, 2.0], [0.0, 0.0]], dtype=np.float32)
    got = score_units(a, [0, 0, 1, 1], 2)
    assert got["max_informedness"].tolist() == [0.5, 0.0]
    assert got["mi_class"].tolist() == [0, 0]  # unit 1: J = 0 for both classes at 2.0
    assert got["mi_threshold"].tolist() == [3.0, 2.0]


@pytest.mark.parametrize(("threshold", "expected_m"), [(0.5, 1), (0.75, 2), (1.0, 3)])
def test_class_selectivity_index_by_hand(threshold: float, expected_m: int) -> None:
    """Top 4 activations 4, 2, 1, 1 of classes 0, 1, 2, 2: weights 1, .5, .25, .25.

    Weighted frequencies .5, .25, .25; M classes reach th; CSI = (4 - M) / (4 - 1).
    """
    a = np.array([[4.0], [0.0], [2.0], [1.0], [1.0], [0.0]], dtype=np.float32)
    labels = [0, 1, 1, 2, 2, 3]
    got = score_units(a, labels, 4, csi_top_n=4, csi_threshold=threshold)
    assert got["class_selectivity_index"][0] == pytest.approx((4 - expected_m) / 3)


def test_the_gpu_tie_scan_equals_the_cpu_one() -> None:
    """`_at_or_above` has a numpy branch (CPU) and a torch branch (CUDA): same counts."""
    rng = np.random.default_rng(2)
    x = torch.from_numpy(rng.choice([0.0, 1.0, 2.0, 3.0], size=(5, 40)).astype(np.float32))
    vs = torch.sort(x, dim=1, descending=True, stable=True).values
    widest = int((vs > vs[:, -1:]).sum(1).max())  # the scorer's region width
    for k in (widest, widest + 1, 40):
        a = _at_or_above(vs, k, numpy_scan=True)
        b = _at_or_above(vs, k, numpy_scan=False)
        np.testing.assert_array_equal(a.numpy(), b.numpy())
        counts = (vs[:, None, :] >= vs[:, :k, None]).sum(2)  # literal: images >= each value
        region = vs[:, :k] > vs[:, -1:]
        np.testing.assert_array_equal(a.numpy()[region.numpy()], counts.numpy()[region.numpy()])


def test_sparse_units_sorted_only_above_their_minimum_match_the_definition() -> None:
    """400 images, mostly zeros: the scorer sorts only each unit's non-zero part (its
    head of max(K + 1, 100) positions is under half the row), and fills the top images
    with the lowest-indexed zeros where a unit has fewer than 100 non-zero values."""
    rng = np.random.default_rng(4)
    n, n_classes = 400, 12
    labels = rng.integers(0, n_classes, n)
    acts = np.zeros((n, 6), dtype=np.float32)
    for u, share in enumerate([0.3, 0.15, 0.05, 0.01, 0.0, 0.25]):
        hot = rng.random(n) < share
        acts[hot, u] = rng.choice([0.5, 1.0, 1.5, 2.0, 3.0], size=hot.sum())
    acts[:, 5] -= 0.5  # negative minimum, zeros inside the region
    layer = score_layer(acts, labels, n_classes, n_top_images=100, groups={"g": [2, 3]})
    refs = reference_layer(acts.astype(np.float64).T.tolist(), labels.tolist(), n_classes)
    for u, ref in enumerate(refs):
        a = acts[:, u].astype(np.float64).tolist()
        for name in METRIC_COLUMNS:
            assert_same(layer.metrics[name][u], ref[name], f"unit {u} {name}")
        assert layer.top_image_index[u].tolist() == reference_top_images(a, 100)
        ref_g = reference_group(a, labels.tolist(), {2, 3}, layer_negative=True)
        for col in GROUP_MEASURES:
            assert_same(layer.group_metrics["g"][col][u], ref_g[col], f"unit {u} {col}")


@pytest.mark.parametrize("n_head", [1, 5, 60])
def test_the_gpu_sorts_equal_the_cpu_ones(n_head: int) -> None:
    """The CPU sorts (numpy packed keys) and the CUDA ones (torch) give the same heads."""
    rng = np.random.default_rng(n_head)
    x = rng.choice([0.0, 0.0, 0.0, -0.0, 0.5, 1.0, 2.0, -1.0], size=(7, 150)).astype(np.float32)
    x[1] = 0.0  # dead
    x[2] = rng.normal(size=150)  # dense, no ties
    x[3, :] = 0.0
    x[3, 100] = 3.0  # one image
    xt = torch.from_numpy(x)
    cpu, gpu = sort_head(xt, n_head, use_numpy=True), sort_head(xt, n_head, use_numpy=False)
    assert cpu.width == gpu.width
    for a, b in ((cpu.values, gpu.values), (cpu.images, gpu.images), (cpu.k_b, gpu.k_b)):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    want = torch.sort(xt, dim=1, descending=True, stable=True)
    np.testing.assert_array_equal(cpu.values.numpy(), want.values[:, : cpu.width].numpy())
    shown = min(max(n_head, 1), 150)  # images past the region are only filled up to n_head
    np.testing.assert_array_equal(cpu.images[:, :shown].numpy(), want.indices[:, :shown].numpy())
    cls = torch.from_numpy(rng.integers(0, 4, size=(7, 30)))
    for a, b in zip(
        sort_by_class(cls, torch.int32, use_numpy=True),
        sort_by_class(cls, torch.int32, use_numpy=False),
        strict=True,
    ):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_the_gpu_code_path_gives_the_same_scores(monkeypatch: pytest.MonkeyPatch) -> None:
    """With numpy switched off, CPU tensors take the torch code CUDA runs: same results."""
    rng = np.random.default_rng(8)
    n, n_classes = 500, 7
    labels = rng.integers(0, n_classes, n)
    acts = np.maximum(rng.normal(size=(n, 6)), 0).round(1).astype(np.float32)
    acts[:, 1] = 0.0
    acts[:, 2] = rng.normal(size=n)  # dense
    kwargs = {"groups": {"g": [1, 2]}, "n_top_images": 10, "block_units": 4}
    default = score_layer(acts, labels, n_classes, **kwargs)
    monkeypatch.setattr(sorting, "NUMPY_ON_CPU", False)
    torch_only = score_layer(acts, labels, n_classes, **kwargs)
    for name in METRIC_COLUMNS:
        np.testing.assert_array_equal(torch_only.metrics[name], default.metrics[name], name)
    for name, col in default.class_stats.items():
        np.testing.assert_array_equal(torch_only.class_stats[name], col, name)
    np.testing.assert_array_equal(torch_only.top_image_index, default.top_image_index)
    for col in GROUP_MEASURES:
        np.testing.assert_array_equal(
            torch_only.group_metrics["g"][col], default.group_metrics["g"][col], col
        )


@pytest.mark.parametrize(
    ("column", "labels", "n_classes", "bar", "bar_class"),
    [
        # class 0 at t = 1: 3 of its 3 images, 3 of the 4 selected -> min(1, 3/4)
        ([3.0, 2.0, 2.0, 1.0, 0.0, 0.0], [0, 0, 1, 0, 1, 1], 2, 0.75, 0),
        # a tie between classes: each has 1 of 2 images among the 2 at t = 2 -> lower class
        ([2.0, 0.0, 2.0, 0.0], [1, 1, 0, 0], 2, 0.5, 0),
        # mostly zeros: class 1 has 2 of its 3 images alone above 0 -> min(2/3, 1)
        ([0.0, 0.0, 0.0, 0.0, 5.0, 5.0], [0, 0, 0, 1, 1, 1], 2, 2 / 3, 1),
        # class 1's best above the minimum (1/2) ties class 0 at the minimum: lower class
        ([0.0, 0.0, 4.0, 0.0], [0, 0, 1, 1], 2, 0.5, 0),
        # and the other way round: class 0 above the minimum ties class 1's share (3/4)
        ([5.0] * 4 + [0.0] * 8, [0, 0, 0] + [1] * 9, 2, 0.75, 0),
        # a constant unit: every threshold selects everything -> the largest class share
        ([0.7] * 5, [0, 1, 1, 2, 2], 3, 0.4, 1),
        # a dead unit over an empty class 0: classes without images are never the class
        ([0.0] * 4, [1, 2, 2, 1], 3, 0.5, 1),
        # one class with images: everything selected gives hit rate and precision 1
        ([0.0, 1.0, 2.0], [1, 1, 1], 3, 1.0, 1),
    ],
)
def test_detector_bar_by_hand(
    column: list[float], labels: list[int], n_classes: int, bar: float, bar_class: int
) -> None:
    a = np.array(column, dtype=np.float32)[:, None]
    got = score_units(a, labels, n_classes)
    assert got["detector_bar"][0] == pytest.approx(bar, rel=0, abs=1e-15)
    assert got["detector_bar_class"][0] == bar_class
    ref = reference_unit(column, labels, n_classes)
    assert (ref["detector_bar"], ref["detector_bar_class"]) == (got["detector_bar"][0], bar_class)
    assert got["constant"][0] == (len(set(column)) == 1)


def test_detector_bar_above_half_means_more_hits_than_misses_and_false_alarms() -> None:
    """The bar's meaning (Gale et al.): > .5 exactly when some class and threshold give
    TP > n_c - TP and TP > FP, checked by counting on random units with ties and zeros."""
    rng = np.random.default_rng(12)
    n, n_classes = 40, 4
    for _ in range(60):
        labels = rng.integers(0, n_classes, n)
        a = np.where(rng.random(n) < 0.5, 0.0, rng.choice([1.0, 2.0, 3.0], n))
        a[labels == rng.integers(n_classes)] += rng.choice([0.0, 2.0])
        got = score_units(a.astype(np.float32)[:, None], labels, n_classes)["detector_bar"][0]
        passes = False
        for c in range(n_classes):
            for t in set(a.tolist()):
                tp = int(np.sum((a >= t) & (labels == c)))
                fp = int(np.sum((a >= t) & (labels != c)))
                passes |= tp > int(np.sum(labels == c)) - tp and tp > fp
        assert (got > 0.5) == passes


def test_constant_flags_only_units_whose_activations_are_all_equal() -> None:
    labels = np.array([0, 1, 2, 0, 1, 2])
    acts = np.zeros((6, 5), dtype=np.float32)
    acts[:, 1] = 2.5  # constant, not zero
    acts[:, 2] = -1.0  # constant, negative
    acts[3, 3] = 1e-6  # one image differs
    acts[:, 4] = [0.0, -0.0, 0.0, -0.0, 0.0, 0.0]  # the two zeros are one value
    got = score_units(acts, labels, 3)
    assert got["constant"].tolist() == [True, True, True, False, True]
    assert got["constant"].dtype == bool
    empty = score_units(np.zeros((6, 0), dtype=np.float32), labels, 3)
    assert empty["constant"].shape == empty["detector_bar"].shape == (0,)
    assert empty["detector_bar_class"].dtype == np.int64


# ------------------------------------------------------------------- CCMAS's own range


def _old_ccmas(column: np.ndarray, labels: np.ndarray) -> float:
    """The ratio without the rule: (mu_c - mu_not_c) / (mu_c + mu_not_c), c of highest mean."""
    x = column.astype(np.float64)
    means = [x[labels == c].mean() for c in np.unique(labels)]
    c = int(np.unique(labels)[int(np.argmax(means))])
    mu_in, mu_out = x[labels == c].mean(), x[labels != c].mean()
    return float((mu_in - mu_out) / (mu_in + mu_out))


def test_ccmas_of_a_layer_whose_activations_can_be_negative_is_undefined_with_the_reason() -> None:
    """Logits: the ratio runs far outside [-1, 1]; every unit of the layer gets NaN, no
    class and the reason, whatever the blocks it is scored in."""
    rng = np.random.default_rng(24)
    n, n_classes = 300, 5
    labels = rng.integers(0, n_classes, n)
    logits = (rng.normal(size=(n, 6)) + 2.0 * (labels[:, None] == np.arange(6) % 5)).astype(
        np.float32
    )
    ratios = [_old_ccmas(logits[:, u], labels) for u in range(6)]
    assert max(abs(r) for r in ratios) > 1  # what the rule keeps out of the catalogue
    for block_units in (None, 1, 4):
        got = score_units(logits, labels, n_classes, block_units=block_units)
        assert np.isnan(got["ccmas"]).all()
        assert (got["ccmas_class"] == -1).all()
        assert (got["ccmas_undefined"] == CCMAS_NEGATIVE).all()
        assert not np.isnan(got["max_informedness"]).any()  # the other measures stand


def test_one_negative_activation_anywhere_in_the_layer_undefines_every_units_ccmas() -> None:
    """A ReLU layer is scored as such (CCMAS in [0, 1], class groups in [-1, 1]) until one
    unit, in another block, holds one negative value: then no unit of the layer has one."""
    rng = np.random.default_rng(5)
    n, n_classes = 200, 4
    labels = rng.integers(0, n_classes, n)
    relu = np.maximum(rng.normal(size=(n, 5)), 0).round(1).astype(np.float32)  # ties
    relu[:, 3] = 0.0  # a dead unit
    groups = {"pair": [0, 3]}
    clean = score_layer(relu, labels, n_classes, groups=groups, block_units=2)
    defined = clean.metrics["ccmas_undefined"] == 0
    assert defined.tolist() == [True, True, True, False, True]
    assert clean.metrics["ccmas_undefined"][3] == CCMAS_NO_POSITIVE_MEAN
    assert ((clean.metrics["ccmas"][defined] >= 0) & (clean.metrics["ccmas"][defined] <= 1)).all()
    group = clean.group_metrics["pair"]["ccmas"]
    assert (np.abs(group[defined]) <= 1).all() and not np.isnan(group[defined]).any()

    signed = relu.copy()
    signed[17, 4] = -0.25
    for block_units in (None, 2):
        layer = score_layer(signed, labels, n_classes, groups=groups, block_units=block_units)
        assert (layer.metrics["ccmas_undefined"] == CCMAS_NEGATIVE).all()
        assert np.isnan(layer.metrics["ccmas"]).all() and (layer.metrics["ccmas_class"] == -1).all()
        assert np.isnan(layer.group_metrics["pair"]["ccmas"]).all()
        for name in ("precision", "max_informedness", "false_alarm_rate"):
            np.testing.assert_array_equal(layer.metrics[name][:4], clean.metrics[name][:4])


def test_blocks_scored_apart_join_into_the_layers_rule() -> None:
    """A layer scored in two calls (as the pipeline scores unit blocks): each call sees only
    its units; the joined layer, with the rule applied, equals the layer scored at once."""
    rng = np.random.default_rng(9)
    labels = rng.integers(0, 3, 90)
    acts = np.maximum(rng.normal(size=(90, 6)), 0).astype(np.float32)
    acts[4, 5] = -1.0
    first = score_layer(acts[:, :3], labels, 3, groups={"g": [1]})
    second = score_layer(acts[:, 3:], labels, 3, groups={"g": [1]})
    assert (first.metrics["ccmas_undefined"] == 0).all()  # its block has no negative value
    joined = replace(
        first,
        metrics={k: np.concatenate([first.metrics[k], second.metrics[k]]) for k in first.metrics},
        group_metrics={
            "g": {
                c: np.concatenate([first.group_metrics["g"][c], second.group_metrics["g"][c]])
                for c in GROUP_MEASURES
            }
        },
    ).with_layer_rules()
    whole = score_layer(acts, labels, 3, groups={"g": [1]})
    for name in METRIC_COLUMNS:
        np.testing.assert_array_equal(joined.metrics[name], whole.metrics[name], err_msg=name)
    for col in GROUP_MEASURES:
        np.testing.assert_array_equal(joined.group_metrics["g"][col], whole.group_metrics["g"][col])
    again = joined.with_layer_rules()  # idempotent
    np.testing.assert_array_equal(
        again.metrics["ccmas_undefined"], joined.metrics["ccmas_undefined"]
    )
    metrics, groups = ccmas_layer_rule(first.metrics)
    assert groups is None and metrics is not first.metrics
    np.testing.assert_array_equal(metrics["ccmas"], first.metrics["ccmas"])


@pytest.mark.parametrize(
    ("column", "labels", "ccmas", "ccmas_class", "reason"),
    [
        # all zeros (and -0.0, the same value): no positive mean
        ([0.0, -0.0, 0.0, 0.0], [0, 0, 1, 1], math.nan, -1, CCMAS_NO_POSITIVE_MEAN),
        # a positive constant: every class mean equal, the lowest class, ratio 0
        ([0.7] * 4, [1, 0, 1, 0], 0.0, 0, 0),
        # classes 1 and 2 tie for the highest mean (2): the lower one; the rest mean 1.5
        ([2.0, 2.0, 2.0, 2.0, 1.0, 1.0], [2, 1, 1, 2, 0, 0], (2 - 1.5) / (2 + 1.5), 1, 0),
        # one class only: no mean outside it
        ([0.0, 1.0, 2.0], [1, 1, 1], math.nan, -1, CCMAS_ONE_CLASS),
        # one class and a negative value: the layer's reason comes first
        ([-1.0, 1.0, 2.0], [1, 1, 1], math.nan, -1, CCMAS_NEGATIVE),
        # a negative constant
        ([-0.5] * 4, [0, 1, 0, 1], math.nan, -1, CCMAS_NEGATIVE),
    ],
)
def test_ccmas_and_its_reason_by_hand(
    column: list[float], labels: list[int], ccmas: float, ccmas_class: int, reason: int
) -> None:
    got = score_units(np.array(column, dtype=np.float32)[:, None], labels, 3)
    assert_same(got["ccmas"][0], ccmas, "ccmas")
    assert (got["ccmas_class"][0], got["ccmas_undefined"][0]) == (ccmas_class, reason)
    ref = reference_unit(column, labels, 3)
    assert_same(ref["ccmas"], ccmas, "reference ccmas")
    assert (ref["ccmas_class"], ref["ccmas_undefined"]) == (ccmas_class, reason)
