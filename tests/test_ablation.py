"""Ablation's parts against literal implementations: the split of a network after a layer,
many ablations per forward against a hook and a full forward per unit, per-class top-60
shares with ties, rankings, curve sizes and the class-balanced image subset."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from catalogue.ablation import (
    choose_rows,
    class_scores,
    configuration_masks,
    count_correct,
    curve_ks,
    rank_units,
    single_unit_masks,
    top_share,
)
from catalogue.ablation.core import LayerAblation
from catalogue.errors import InputError
from catalogue.models import ModelInfo, load_model, prepared, random_demo_model

# ------------------------------------------------------------------------------ the split


def _split_logits(model: ModelInfo, layer: str, x: torch.Tensor) -> tuple[torch.Tensor, tuple]:
    with prepared(model) as ready, torch.inference_mode():
        split = ready.split(layer)
        out = ready.extractor(split.extract, with_logits=False)(x)
        return split.tail(out[layer], *(out[n] for n in split.inputs)), split.inputs


@pytest.mark.parametrize("layer", ["conv1", "conv3", "conv5", "fc6", "fc7"])
def test_the_rest_of_the_demo_cnn_gives_its_logits(layer: str) -> None:
    model = random_demo_model()
    x = torch.randn(5, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    logits, inputs = _split_logits(model, layer, x)
    assert inputs == ()
    with torch.inference_mode():
        torch.testing.assert_close(logits, model.module(x), rtol=0, atol=0)


def test_a_layer_inside_a_residual_block_takes_its_skip_tensor_as_an_input() -> None:
    model = load_model("resnet18", num_classes=5, input_size=32)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        want = model.module(x)
    logits, inputs = _split_logits(model, "layer1.0.relu", x)
    assert inputs == ("maxpool",)  # the block's identity path
    torch.testing.assert_close(logits, want)
    logits, inputs = _split_logits(model, "layer3", x)  # a stage: its last node
    assert inputs == ()
    torch.testing.assert_close(logits, want)


def test_a_branch_of_an_inception_block_takes_the_other_branches_as_inputs() -> None:
    model = load_model("googlenet", num_classes=4, input_size=64)
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    with torch.inference_mode():
        want = model.module(x)
    logits, inputs = _split_logits(model, "inception3a.branch2.0", x)
    assert len(inputs) == 3 and all(i.startswith("inception3a.branch") for i in inputs)
    torch.testing.assert_close(logits, want)


def test_the_split_refuses_a_layer_the_output_does_not_depend_on() -> None:
    class TwoHeads(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Linear(4, 4)
            self.side = nn.Linear(4, 2)
            self.head = nn.Linear(4, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = self.body(x)
            self.side(h)  # computed, never used
            return self.head(h)

    model = ModelInfo.from_module(TwoHeads())
    with prepared(model) as ready, pytest.raises(InputError, match="does not depend on layer"):
        ready.split("side")


# ------------------------------------------------------------------ fast path vs plain loop


def plain_counts(
    module: nn.Module,
    node: str,
    x: torch.Tensor,
    labels: torch.Tensor,
    configurations: list[list[int]],
    values: torch.Tensor,
    n_classes: int,
) -> np.ndarray:
    """The literal way: a hook replaces the units of one configuration, a full forward each."""
    target = dict(module.named_modules())[node]
    rows = []
    for units in configurations:

        def replace(_m, _i, out, units=units):
            out = out.clone()
            for u in units:
                out[:, u] = values[u]
            return out

        handle = target.register_forward_hook(replace)
        try:
            with torch.inference_mode():
                predicted = module(x).argmax(dim=1)
        finally:
            handle.remove()
        hits = (predicted == labels).numpy()
        rows.append(np.bincount(labels.numpy()[hits], minlength=n_classes))
    return np.array(rows)


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("layer", ["conv4", "fc6"])
def test_many_ablations_per_forward_equal_a_hook_and_a_forward_each(
    layer: str, channels_last: bool
) -> None:
    model = random_demo_model(num_classes=6, seed=4)
    g = torch.Generator().manual_seed(5)
    x = torch.randn(23, 3, 32, 32, generator=g)
    with torch.no_grad():
        labels = model.module(x).argmax(dim=1)
    labels[::3] = (labels[::3] + 1) % 6  # some wrong
    n_units = 32 if layer == "conv4" else 128
    values = torch.rand(n_units, generator=g)  # a different value for every unit
    step = n_units // 16  # 16 single units (the plain loop is slow), a few, every unit
    configurations = [[], *([u] for u in range(0, n_units, step)), [0, 5, 7], list(range(n_units))]
    with prepared(model, channels_last=channels_last) as ready, torch.inference_mode():
        split = ready.split(layer)
        images = x.contiguous(memory_format=torch.channels_last) if channels_last else x
        out = ready.extractor(split.extract, with_logits=False)(images)
        fast = count_correct(
            split.tail,
            out[layer],
            [],
            labels,
            configuration_masks(n_units, configurations),
            values,
            6,
            max_rows=50,  # several forwards, one of them a partial chunk
        ).numpy()
    slow = plain_counts(model.module, layer, x, labels, configurations, values, 6)
    np.testing.assert_array_equal(fast, slow)


def test_single_unit_masks_start_with_the_baseline() -> None:
    masks = single_unit_masks(3)
    assert masks.tolist() == [
        [False, False, False],
        [True, False, False],
        [False, True, False],
        [False, False, True],
    ]


def test_layer_ablation_changes_and_most_hurt_classes() -> None:
    result = LayerAblation(
        layer="fc",
        kind="fc",
        value="zero",
        class_sizes=np.array([4, 0, 2, 4]),
        baseline_correct=np.array([4, 0, 1, 2]),
        correct=np.array([[0, 0, 1, 2], [4, 0, 2, 2], [4, 0, 1, 2]]),
        replacement=np.zeros(3),
    )
    change = result.accuracy_change
    np.testing.assert_allclose(change[0], [-1.0, np.nan, 0.0, 0.0])
    np.testing.assert_allclose(change[1], [0.0, np.nan, 0.5, 0.0])
    assert result.baseline_accuracy == 7 / 10
    np.testing.assert_allclose(result.overall_change, [-0.4, 0.1, 0.0])
    classes, changes = result.most_hurt(10)  # 3 classes have images; ties to the lower index
    assert classes.tolist() == [[0, 2, 3], [0, 3, 2], [0, 2, 3]]
    np.testing.assert_allclose(changes[1], [0.0, 0.0, 0.5])


# ------------------------------------------------------------------------ rankings, curves


def slow_top_share(values: np.ndarray, labels: np.ndarray, n_classes: int, k: int) -> np.ndarray:
    """Per unit: count above the k-th value, share the remaining places among the tied."""
    out = np.zeros((values.shape[1], n_classes))
    for u in range(values.shape[1]):
        column = values[:, u]
        cut = sorted(column, reverse=True)[min(k, len(column)) - 1]
        above = [labels[i] for i in range(len(column)) if column[i] > cut]
        tied = [labels[i] for i in range(len(column)) if column[i] == cut]
        slots = min(k, len(column)) - len(above)
        for c in range(n_classes):
            out[u, c] = (above.count(c) + slots * tied.count(c) / len(tied)) / min(k, len(column))
    return out


def test_top_share_shares_the_tied_places_like_the_precision_measure() -> None:
    rng = np.random.default_rng(0)
    values = rng.integers(0, 4, size=(90, 7)).astype(np.float32)  # many ties
    values[:, 3] = 0.0  # a dead unit: every image tied
    values[:, 4] = rng.normal(size=90)  # no ties
    labels = rng.integers(0, 5, size=90)
    np.testing.assert_allclose(
        top_share(values, labels, 5, 60), slow_top_share(values, labels, 5, 60)
    )
    np.testing.assert_allclose(top_share(values[:10], labels[:10], 5, 60).sum(axis=1), 1.0)


def test_class_scores_are_means_and_ccmas_per_class() -> None:
    values = np.array([[1.0, 0.0], [3.0, 0.0], [2.0, 0.0], [0.0, 0.0]])
    labels = np.array([0, 0, 1, 2])
    scores = class_scores(values, labels, 4)
    np.testing.assert_allclose(scores.class_mean[0], [2.0, 2.0, 0.0, np.nan])
    # unit 0, class 0: mu_in 2, mu_out 1 -> 1/3; class 1: 2 vs 4/3; class 2: 0 vs 2 -> -1
    np.testing.assert_allclose(scores.ccmas[0, :3], [1 / 3, (2 - 4 / 3) / (2 + 4 / 3), -1.0])
    assert np.isnan(scores.ccmas[1]).all()  # a dead unit: 0 / 0


def test_rankings_order_units_by_their_score_for_the_class() -> None:
    values = np.array([[0.0, 5.0, 1.0], [0.0, 5.0, 2.0], [9.0, 0.0, 2.0], [0.0, 0.0, 0.0]])
    labels = np.array([0, 0, 1, 1])
    scores = class_scores(values, labels, 2)
    change = np.array([[-0.5, 0.0], [0.0, -0.25], [-0.5, 0.0]])
    assert rank_units("ablation", 0, scores=scores, ablation_change=change).tolist() == [2, 0, 1]
    assert rank_units("class_mean", 0, scores=scores, ablation_change=None).tolist() == [1, 2, 0]
    random = rank_units("random", 1, scores=scores, ablation_change=None, seed=3)
    assert sorted(random.tolist()) == [0, 1, 2]
    assert (
        random.tolist()
        == rank_units("random", 1, scores=scores, ablation_change=None, seed=3).tolist()
    )


def test_curve_ks_double_up_to_every_unit() -> None:
    assert curve_ks(10) == [1, 2, 4, 8, 10]
    assert curve_ks(8) == [1, 2, 4, 8]
    assert curve_ks(100, max_k=5) == [1, 2, 4, 5]
    assert curve_ks(1) == [1]


def test_a_number_of_images_is_spread_evenly_over_the_classes() -> None:
    labels = np.array([0, 0, 0, 0, 1, 2, 2, 2, 1, 1, 0])
    correct = np.array([1, 0, 1, 1, 1, 1, 0, 1, 0, 1, 1], dtype=bool)
    assert choose_rows(labels, correct, "all").tolist() == list(range(11))
    assert choose_rows(labels, correct, "correct").tolist() == [0, 2, 3, 4, 5, 7, 9, 10]
    # 7 over 3 classes: 3 + 2 + 2, each class's first images in store order
    assert choose_rows(labels, correct, 7).tolist() == [0, 1, 2, 4, 5, 6, 8]
    assert choose_rows(labels, correct, "100").tolist() == list(range(11))
    with pytest.raises(InputError, match="--images"):
        choose_rows(labels, correct, "some")
