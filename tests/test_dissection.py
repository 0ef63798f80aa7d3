"""Network dissection core and driver, checked against a literal implementation."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn

from catalogue.dissection import (
    IoUTally,
    RunningTopK,
    dissect,
    label_units,
    threshold_rank,
    unit_concept_iou,
    unit_thresholds,
)
from catalogue.errors import InputError, NotFound
from catalogue.models import ModelInfo
from catalogue.probe import ImageMasks, ProbeSet, make_probe

# ----------------------------------------------------------------- literal implementation


def literal_bilinear(x: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Bilinear resize with pixel centres aligned (align_corners=False), edges clamped."""
    h, w = x.shape
    out = np.zeros((out_h, out_w), dtype=np.float32)
    for i in range(out_h):
        sy = max((i + 0.5) * h / out_h - 0.5, 0.0)
        y0 = math.floor(sy)
        y1 = min(y0 + 1, h - 1)
        ly = np.float32(sy - y0)
        for j in range(out_w):
            sx = max((j + 0.5) * w / out_w - 0.5, 0.0)
            x0 = math.floor(sx)
            x1 = min(x0 + 1, w - 1)
            lx = np.float32(sx - x0)
            top = (1 - lx) * x[y0, x0] + lx * x[y0, x1]
            bottom = (1 - lx) * x[y1, x0] + lx * x[y1, x1]
            out[i, j] = (1 - ly) * top + ly * bottom
    return out


def literal_threshold(values: np.ndarray, q: Fraction) -> np.float32:
    """The ceil(q·n)-th largest value (at least the first)."""
    n = values.size
    k = max(1, -(-n * q.numerator // q.denominator))
    return np.sort(values.ravel())[::-1][k - 1]


def literal_iou(maps, masks, q: Fraction, annotated=None, category=None):
    """Loops over units, images and concepts; unions skip images not annotated in the concept's category."""
    n, units = maps.shape[:2]
    k, mh, mw = masks.shape[1:]
    thresholds = np.array(
        [literal_threshold(maps[:, u], q) for u in range(units)], dtype=np.float32
    )
    inter = np.zeros((units, k), dtype=np.int64)
    union = np.zeros((units, k), dtype=np.int64)
    for u in range(units):
        for i in range(n):
            fire = literal_bilinear(maps[i, u], mh, mw) > thresholds[u]
            for c in range(k):
                counts = annotated is None or annotated[i, category[c]]
                inter[u, c] += np.logical_and(fire, masks[i, c]).sum()
                union[u, c] += (np.logical_or(fire, masks[i, c]) if counts else masks[i, c]).sum()
    iou = np.where(union > 0, inter / np.maximum(union, 1), 0.0)
    return thresholds, inter, union, iou


def relu_like_maps(rng, shape, dead_unit=1, constant_unit=2):
    """Dyadic values with many zeros and ties, a dead unit and a constant one."""
    maps = rng.integers(-6, 9, size=shape).clip(0).astype(np.float32) / 4
    maps[:, dead_unit] = 0
    maps[:, constant_unit] = 1.0
    return maps


def random_masks(rng, n, k, h, w):
    masks = rng.random((n, k, h, w)) < rng.uniform(0.05, 0.6, size=(1, k, 1, 1))
    masks[:, 0] = False  # a concept that never occurs
    masks[:, -1] = True  # a concept covering everything
    return masks


# ----------------------------------------------------------------- thresholds


def test_threshold_rank_reads_the_quantile_as_written():
    assert threshold_rank(20000, 0.005) == 100  # 0.005 as a binary float would give 101
    assert threshold_rank(20001, 0.005) == 101
    assert threshold_rank(10, 0.005) == 1
    assert threshold_rank(10, 1.0) == 10
    with pytest.raises(InputError, match="quantile must lie in"):
        threshold_rank(10, 0.0)


def test_running_topk_is_exact_across_many_merges_with_ties():
    rng = np.random.default_rng(0)
    blocks = [
        rng.integers(0, 5, size=(3, int(m))).astype(np.float32)
        for m in rng.integers(1, 40, size=30)
    ]
    values = np.concatenate(blocks, axis=1)
    for k in (1, 7, 50, values.shape[1]):
        top = RunningTopK(k, min_buffer=16)
        for b in blocks:
            top.add(torch.from_numpy(b))
        expected = np.sort(values, axis=1)[:, ::-1][:, k - 1]
        np.testing.assert_array_equal(top.kth_largest().numpy(), expected)


def test_unit_thresholds_match_the_literal_definition_including_dead_units():
    rng = np.random.default_rng(1)
    maps = relu_like_maps(rng, (9, 6, 5, 7))
    for q in (Fraction(1, 200), Fraction(1, 10), Fraction(1, 3)):
        got = unit_thresholds(maps, float(q), device="cpu")
        expected = [literal_threshold(maps[:, u], q) for u in range(maps.shape[1])]
        np.testing.assert_array_equal(got, expected)
    assert got[1] == 0  # dead unit: threshold 0, so it fires nowhere


# ----------------------------------------------------------------- IoU


@pytest.mark.parametrize("q", [Fraction(1, 200), Fraction(1, 10)])
def test_iou_equals_literal_loops_on_ties_zeros_and_dead_units(q):
    rng = np.random.default_rng(2)
    maps = relu_like_maps(rng, (6, 5, 4, 4))
    masks = random_masks(rng, 6, 4, 16, 16)
    thresholds, inter, union, iou = literal_iou(maps, masks, q)
    got = unit_concept_iou(maps, masks, float(q), batch_size=4, device="cpu")
    np.testing.assert_array_equal(got.thresholds, thresholds)
    np.testing.assert_array_equal(got.intersection, inter)
    np.testing.assert_array_equal(got.union, union)
    np.testing.assert_allclose(got.iou, iou, rtol=0, atol=1e-15)
    assert got.n_images == 6
    assert (got.iou[:, 0] == 0).all()  # concept never present
    assert (got.iou[1] == 0).all() and (
        got.iou[2] == 0
    ).all()  # dead and constant units fire nowhere
    assert (got.union[1] == masks.sum(axis=(0, 2, 3))).all()


@pytest.mark.parametrize(
    ("map_size", "mask_size"),
    [((5, 3), (13, 11)), ((8, 8), (5, 5)), ((7, 7), (7, 7)), ((1, 1), (4, 4)), ((2, 6), (9, 6))],
)
def test_iou_equals_literal_for_any_resampling_of_continuous_maps(map_size, mask_size):
    rng = np.random.default_rng(3)
    maps = np.maximum(rng.normal(size=(5, 4, *map_size)), 0).astype(np.float32)
    masks = random_masks(rng, 5, 3, *mask_size)
    _, inter, union, iou = literal_iou(maps, masks, Fraction(1, 20))
    got = unit_concept_iou(
        torch.from_numpy(maps), torch.from_numpy(masks), 0.05, batch_size=2, device="cpu"
    )
    np.testing.assert_array_equal(got.intersection, inter)
    np.testing.assert_array_equal(got.union, union)
    np.testing.assert_allclose(got.iou, iou, rtol=0, atol=1e-15)


def test_streamed_sparse_and_chunked_inputs_give_the_same_counts():
    rng = np.random.default_rng(4)
    maps = relu_like_maps(rng, (7, 5, 4, 4))
    masks = random_masks(rng, 7, 4, 8, 8)
    whole = unit_concept_iou(maps, masks, 0.1, device="cpu")
    batches = [maps[:3], maps[3:4], maps[4:]]
    dense_batches = [masks[:3], masks[3:4], masks[4:]]
    streamed = unit_concept_iou(batches, dense_batches, 0.1, n_images=7, device="cpu")
    sparse = [ImageMasks(np.flatnonzero(m.any(axis=(1, 2))), m[m.any(axis=(1, 2))]) for m in masks]
    sparse_batches = [sparse[:3], sparse[3:4], sparse[4:]]
    from_sparse = unit_concept_iou(
        batches, sparse_batches, 0.1, n_images=7, n_concepts=4, device="cpu"
    )
    tiny_chunks = unit_concept_iou(maps, sparse, 0.1, n_concepts=4, chunk_elements=1, device="cpu")
    for other in (streamed, from_sparse, tiny_chunks):
        np.testing.assert_array_equal(other.thresholds, whole.thresholds)
        np.testing.assert_array_equal(other.intersection, whole.intersection)
        np.testing.assert_array_equal(other.union, whole.union)


def test_unions_count_only_images_annotated_in_the_concepts_category():
    rng = np.random.default_rng(5)
    maps = relu_like_maps(rng, (6, 4, 4, 4))
    masks = random_masks(rng, 6, 4, 8, 8)
    category = np.array([0, 0, 1, 1])
    annotated = rng.random((6, 2)) < 0.6
    masks[~annotated[:, category]] = (
        False  # an image has no labels in a category it does not annotate
    )
    annotated[:, 0] |= masks[:, :2].any(axis=(1, 2, 3))
    sparse = [
        ImageMasks(np.flatnonzero(m.any(axis=(1, 2))), m[m.any(axis=(1, 2))], annotated[i])
        for i, m in enumerate(masks)
    ]
    _, inter, union, iou = literal_iou(maps, masks, Fraction(1, 10), annotated, category)
    got = unit_concept_iou(maps, sparse, 0.1, concept_category=category, batch_size=4, device="cpu")
    np.testing.assert_array_equal(got.intersection, inter)
    np.testing.assert_array_equal(got.union, union)
    np.testing.assert_allclose(got.iou, iou, rtol=0, atol=1e-15)
    plain = unit_concept_iou(
        maps, masks, 0.1, device="cpu"
    )  # without categories every image counts
    assert (plain.union >= got.union).all() and (plain.union > got.union).any()


def test_a_unit_whose_map_is_a_concepts_mask_scores_iou_one():
    rng = np.random.default_rng(6)
    masks = np.zeros((10, 3, 16, 16), dtype=bool)
    masks[:, 1] = rng.random((10, 16, 16)) < 0.4
    masks[:, 2] = rng.random((10, 16, 16)) < 0.02  # 2% of pixels: below the 10% quantile
    maps = rng.random((10, 3, 16, 16)).astype(np.float32) * 0.5
    maps[:, 0] = masks[:, 2]
    got = unit_concept_iou(maps, masks, 0.1, device="cpu")
    assert got.thresholds[0] == 0 and got.iou[0, 2] == 1.0
    labelled = label_units("conv", got, [f"c{i}" for i in range(3)], top_n=2)  # type: ignore[arg-type]
    assert labelled.top_concepts[0, 0] == 2 and labelled.top_iou[0, 0] == 1.0
    assert labelled.detector[0]


def test_a_planted_unit_at_lower_resolution_still_detects_its_concept():
    rng = np.random.default_rng(7)
    coarse = rng.random((12, 8, 8)) < 0.1
    masks = np.stack([np.kron(coarse, np.ones((4, 4))) > 0, rng.random((12, 32, 32)) < 0.3], axis=1)
    maps = rng.random((12, 4, 8, 8)).astype(np.float32) * 0.2
    maps[:, 3] = np.maximum(coarse, maps[:, 3])
    got = unit_concept_iou(maps, masks, 0.15, device="cpu")
    # bilinear upsampling spreads each 4 × 4 cell by about one pixel: IoU ≈ 16/36 for lone cells
    assert got.iou[3].argmax() == 0 and got.iou[3, 0] > 0.4
    assert got.iou[:3].max() < 0.3


def test_label_units_counts_detectors_and_unique_concepts_with_ties():
    from catalogue.dissection import ConceptIoU
    from catalogue.probe import Concept

    iou = np.array([[0.1, 0.1, 0.0], [0.0, 0.05, 0.2], [0.04, 0.0, 0.0], [0.0, 0.3, 0.2]])
    scores = ConceptIoU(
        np.zeros(4, np.float32), iou, iou, iou, np.zeros((4, 1)), np.zeros(3), 1, 0.005
    )
    concepts = [
        Concept(1, "red-c", "color"),
        Concept(2, "dog", "object"),
        Concept(3, "cat", "object"),
    ]
    d = label_units("conv5", scores, concepts, top_n=5)
    assert d.top_concepts.tolist() == [
        [0, 1, 2],
        [2, 1, 0],
        [0, 1, 2],
        [1, 2, 0],
    ]  # ties → lower index
    assert d.detector.tolist() == [True, True, False, True]  # 0.04 is not above 0.04
    assert d.n_detectors == 3 and d.n_unique_concepts == 3
    assert d.unique_concepts_by_category() == {"color": 1, "object": 2}
    assert d.rows()[0] == {
        "unit": 0, "rank": 1, "concept_number": 1, "concept": "red-c", "category": "color",
        "iou": 0.1, "detector": True, "threshold": 0.0,
    }  # fmt: skip


def test_empty_union_is_zero_and_bad_inputs_are_refused():
    maps = np.zeros((2, 2, 4, 4), dtype=np.float32)
    masks = np.zeros((2, 1, 4, 4), dtype=bool)
    assert (unit_concept_iou(maps, masks, device="cpu").iou == 0).all()
    with pytest.raises(InputError, match="NaN or infinite"):
        unit_concept_iou(np.full((1, 1, 2, 2), np.nan, np.float32), masks[:1], device="cpu")
    with pytest.raises(InputError, match="images × units × h × w"):
        unit_concept_iou(np.zeros((2, 3), np.float32), masks, device="cpu")
    with pytest.raises(InputError, match="gave 2 images but n_images = 3"):
        unit_concept_iou([maps], [masks], n_images=3, device="cpu")
    with pytest.raises(TypeError, match="one-shot iterator"):
        unit_concept_iou(iter([maps]), iter([masks]), n_images=2, device="cpu")
    with pytest.raises(InputError, match="probe set is empty"):
        unit_concept_iou(maps[:0], masks[:0], device="cpu")
    tally = IoUTally(np.zeros(2), 1, device="cpu")
    with pytest.raises(InputError, match="do not match"):
        tally.add(maps, np.zeros((2, 3, 4, 4), bool))


# ----------------------------------------------------------------- driver


class TinyNet(nn.Module):
    """conv1 → act1 (full resolution) → pool → conv2 → act2 → fc; act1 unit 0 is a red detector."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv1 = nn.Conv2d(3, 6, 1)
        self.act1 = nn.ReLU()
        self.pool = nn.MaxPool2d(4)
        self.conv2 = nn.Conv2d(6, 5, 3, padding=1)
        self.act2 = nn.ReLU()
        self.fc = nn.Linear(5, 3)
        with torch.no_grad():
            self.conv1.weight[0] = torch.tensor([1.0, -1.0, -1.0])[:, None, None]
            self.conv1.bias[0] = -0.2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act2(self.conv2(self.pool(self.act1(self.conv1(x)))))
        return self.fc(h.mean(dim=(2, 3)))


def to_tensor(image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1).float() / 255


@pytest.fixture(scope="module")
def digit_probe(tmp_path_factory) -> ProbeSet:
    digits = load_digits()
    names = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    items = [
        (im, int(t), names[t])
        for im, t in zip(digits.images[:300], digits.target[:300], strict=True)
    ]
    return make_probe(items, tmp_path_factory.mktemp("probe"), n_images=24, image_size=32, seed=3)


def tiny_net() -> ModelInfo:
    return ModelInfo.from_module(TinyNet(), transform=to_tensor, input_size=32)


def test_dissect_matches_the_core_on_extracted_maps_and_finds_the_red_unit(digit_probe):
    info = tiny_net()
    model = info.module
    calls = []
    result = dissect(
        info, ["act1", "act2"], digit_probe, transform=to_tensor, batch_size=5, device="cpu",
        quantile=0.05, top_n=3, progress=lambda done, total: calls.append((done, total)),
    )  # fmt: skip
    assert calls[-1] == (48, 48)
    x = torch.stack([to_tensor(digit_probe.image(i)) for i in range(len(digit_probe))])
    with torch.no_grad():
        act1 = model.act1(model.conv1(x))
        act2 = model.act2(model.conv2(model.pool(act1)))
    masks = [digit_probe.masks(i) for i in range(len(digit_probe))]
    for name, maps in (("act1", act1), ("act2", act2)):
        expected = unit_concept_iou(
            maps,
            masks,
            0.05,
            concept_category=digit_probe.concept_category,
            batch_size=7,
            device="cpu",
        )
        got = result[name]
        np.testing.assert_array_equal(got.thresholds, expected.thresholds)
        np.testing.assert_array_equal(got.scores.intersection, expected.intersection)
        np.testing.assert_array_equal(got.scores.union, expected.union)
        assert got.top_concepts.shape == (maps.shape[1], 3)
        assert got.n_detectors == int((got.top_iou[:, 0] > 0.04).sum())
    red = result["act1"]
    assert red.concepts[red.top_concepts[0, 0]].name == "red-c" and red.top_iou[0, 0] > 0.3


def test_dissect_refuses_unknown_and_non_spatial_layers(digit_probe):
    with pytest.raises(NotFound, match="'conv9' is not a node"):
        dissect(tiny_net(), ["conv9"], digit_probe, transform=to_tensor, device="cpu")
    with pytest.raises(InputError, match="'fc' outputs shape"):
        dissect(tiny_net(), ["fc"], digit_probe, transform=to_tensor, device="cpu")


def test_dissect_reports_a_missing_probe_image_from_a_worker_as_one_line(digit_probe, tmp_path):
    import shutil

    shutil.copytree(digit_probe.directory, tmp_path / "p")
    (tmp_path / "p" / "images" / digit_probe.keys[2]).unlink()
    probe = ProbeSet.open(tmp_path / "p", limit=4)
    with pytest.raises(
        InputError, match=r"^probe image .*000002\.png \(index\.csv line 4\) is missing"
    ):
        dissect(tiny_net(), ["act2"], probe, transform=to_tensor, device="cpu", num_workers=1)


def test_dissect_takes_the_demo_cnn_model_info_with_its_own_transform(digit_probe):
    from catalogue.models import random_demo_model

    info = random_demo_model()
    result = dissect(info, ["conv1", "conv5"], digit_probe, batch_size=8, device="cpu")
    conv5 = result["conv5"]
    assert conv5.iou.shape == (32, len(digit_probe.concepts)) and conv5.n_units == 32
    assert result["conv1"].n_units == 16
    assert (conv5.scores.union >= conv5.scores.intersection).all()
    assert ((conv5.iou >= 0) & (conv5.iou <= 1)).all()
    assert conv5.n_unique_concepts == len(conv5.detected_concepts) <= conv5.n_detectors
