"""Activation maximisation on a small conv net trained on scikit-learn's digits (real forward passes, CPU)."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from PIL import Image
from sklearn.datasets import load_digits
from torch import nn
from torchvision.models.feature_extraction import create_feature_extractor

from catalogue.am import (
    COLOR_CORRELATION_SVD_SQRT,
    FFT_MAGIC,
    AMResult,
    FourierImage,
    RobustnessTransforms,
    affine_from,
    affine_resample,
    maximise_units,
    render_panel,
    save_panel,
)
from catalogue.data import resolve_dataset
from catalogue.errors import InputError, NotFound
from catalogue.models import ModelInfo, random_demo_model


class DigitsNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.dropout = nn.Dropout(0.5)
        self.fc = nn.Linear(16 * 4 * 4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv1(x))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc(self.dropout(x.flatten(1)))


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """These nets are tiny: one thread is many times faster than two on a shared, busy CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def digits() -> tuple[torch.Tensor, torch.Tensor]:
    data = load_digits()
    return torch.tensor(data.images / 16.0, dtype=torch.float32)[:, None], torch.tensor(data.target)


@pytest.fixture(scope="module")
def net(digits: tuple[torch.Tensor, torch.Tensor]) -> DigitsNet:
    """The net trained for 4 epochs on all 1,797 digits (≈ 98% accuracy, a few seconds)."""
    x, y = digits
    torch.manual_seed(0)
    model = DigitsNet()
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    order_gen = torch.Generator().manual_seed(0)
    for _ in range(4):
        order = torch.randperm(len(x), generator=order_gen)
        for start in range(0, len(x), 64):
            idx = order[start : start + 64]
            optimiser.zero_grad()
            F.cross_entropy(model(x[idx]), y[idx]).backward()
            optimiser.step()
    model.eval()
    with torch.no_grad():
        assert (model(x).argmax(1) == y).float().mean() > 0.9
    return model


def channel_values(
    model: nn.Module, node: str, images: torch.Tensor, reduce: str = "mean"
) -> torch.Tensor:
    """A node's output per image and channel (reduced over space), computed without `catalogue.am`."""
    with torch.no_grad():
        out = create_feature_extractor(model, [node])(images)[node]
    if out.ndim == 2:
        return out
    return out.flatten(2).mean(2) if reduce == "mean" else out.flatten(2).amax(2)


def conv2_channel_means(
    model: DigitsNet, images: torch.Tensor, reduce: str = "mean"
) -> torch.Tensor:
    """conv2 (pre-ReLU) per channel, reduced over space, through a forward hook on the module."""
    captured: list[torch.Tensor] = []
    handle = model.conv2.register_forward_hook(lambda _m, _i, out: captured.append(out))
    try:
        with torch.no_grad():
            model(images)
    finally:
        handle.remove()
    out = captured[0].flatten(2)
    return out.mean(2) if reduce == "mean" else out.amax(2)


def am(net: nn.Module, layer: str, units: list[int], **kwargs) -> AMResult:
    options = {
        "n_images": 4,
        "steps": 12,
        "image_size": 8,
        "channels": 1,
        "device": "cpu",
        "seed": 3,
    }
    options.update(kwargs)
    return maximise_units(ModelInfo.from_module(net), layer, units, **options)


def test_am_drives_units_far_above_their_most_active_digit(net: DigitsNet, digits) -> None:
    """conv2 after its ReLU (channel mean, the default objective) and the logits."""
    x, _ = digits
    data_max = channel_values(net, "relu_1", x).amax(0)
    units = [int(u) for u in torch.argsort(data_max, descending=True)[:3]]
    result = am(net, "relu_1", units, steps=64, lr=0.1)
    for position, unit in enumerate(units):
        activations = result.activations[position]
        assert activations.min() > data_max[unit].item() > 0
        assert activations.mean() > 1.3 * data_max[unit].item()

    logits_max = channel_values(net, "fc", x).amax(0)
    fc = am(net, "fc", [2, 7], steps=64, lr=0.1)
    for position, unit in enumerate([2, 7]):
        assert fc.activations[position].min() > 1.3 * logits_max[unit].item() > 0


def test_redirected_relu_lets_a_unit_that_is_off_on_grey_take_off() -> None:
    """The unit is 0 on every near-grey image, so its plain gradient is 0 and AM would stay grey."""
    net = nn.Sequential(nn.Conv2d(1, 1, 3), nn.ReLU(inplace=True))
    with torch.no_grad():
        net[0].weight.zero_()
        net[0].weight[0, 0, 1, 1] = 1.0
        net[0].bias.fill_(-0.6)
    stuck = am(net, "1", [0], steps=20, redirect_relu_steps=0, transforms=None)
    assert (stuck.activations == 0).all()
    assert np.abs(stuck.images - 0.5).max() < 0.05
    freed = am(net, "1", [0], steps=20, transforms=None)
    assert (freed.activations > 0.05).all()


def test_redirected_relu_gradient_follows_lucids_rule() -> None:
    from catalogue.am import RedirectedReLUs

    x = torch.tensor([[-1.0, 2.0, -3.0, 0.5], [-1.0, -2.0, -3.0, -0.5]], requires_grad=True)
    upstream = torch.tensor([[1.0, -1.0, -1.0, 1.0], [1.0, -1.0, -1.0, 1.0]])
    with RedirectedReLUs():
        y = nn.ReLU(inplace=True)(x * 1.0)
        z = F.relu(x * 1.0)
    assert torch.equal(y, x.clamp(min=0)) and torch.equal(z, y)
    (grad,) = torch.autograd.grad(y, x, upstream)
    expected = torch.zeros(2, 4)
    for b in range(2):
        ordinary = [upstream[b, i].item() if x[b, i] >= 0 else 0.0 for i in range(4)]
        if any(g != 0 for g in ordinary):
            expected[b] = torch.tensor(ordinary)
        else:  # nothing got through: pass the gradient unless it pushes a negative input lower
            expected[b] = torch.tensor(
                [
                    0.0 if x[b, i] < 0 and upstream[b, i] > 0 else upstream[b, i].item()
                    for i in range(4)
                ]
            )
    assert torch.equal(grad, expected)
    assert torch.equal(grad[0], torch.tensor([0.0, -1.0, 0.0, 1.0]))


@pytest.mark.parametrize("reduce", ["mean", "max"])
def test_reported_activation_is_the_unit_on_the_final_untransformed_image(
    net: DigitsNet, reduce
) -> None:
    result = am(net, "conv2", [0, 9], reduce=reduce)
    assert result.images.shape == (2, 4, 1, 8, 8)
    assert result.images.dtype == np.float32
    for position, unit in enumerate([0, 9]):
        expected = conv2_channel_means(net, torch.from_numpy(result.images[position]), reduce)[
            :, unit
        ]
        np.testing.assert_allclose(
            result.activations[position], expected.numpy(), rtol=1e-5, atol=1e-5
        )
    assert result.params["reduce"] == reduce


def test_fc_activation_is_the_logit(net: DigitsNet) -> None:
    result = am(net, "fc", [4])
    with torch.no_grad():
        logits = net(torch.from_numpy(result.images[0]))[:, 4]
    np.testing.assert_allclose(result.activations[0], logits.numpy(), rtol=1e-5, atol=1e-5)
    assert result.params["objective"] == "unit"
    assert result.params["reduce"] is None


def test_same_seed_gives_identical_images_and_another_seed_does_not(net: DigitsNet) -> None:
    first = am(net, "conv2", [1, 2])
    again = am(net, "conv2", [1, 2])
    other = am(net, "conv2", [1, 2], seed=4)
    assert np.array_equal(first.images, again.images)
    assert np.array_equal(first.activations, again.activations)
    assert np.abs(first.images - other.images).max() > 0.05


def test_units_in_one_batch_match_units_one_at_a_time(net: DigitsNet) -> None:
    together = am(net, "conv2", [3, 5, 7])
    # batch_size 3 also splits each unit's 4 images over two batches
    alone = [am(net, "conv2", [u], batch_size=3) for u in (3, 5, 7)]
    for position, single in enumerate(alone):
        np.testing.assert_allclose(together.images[position], single.images[0], atol=1e-5)
        np.testing.assert_allclose(together.activations[position], single.activations[0], atol=1e-4)


def test_images_of_a_panel_differ_and_stay_in_the_unit_interval(net: DigitsNet) -> None:
    result = am(net, "conv2", [6], n_images=6)
    images = result.images[0]
    assert images.min() >= 0.0 and images.max() <= 1.0
    for i in range(6):
        for j in range(i + 1, 6):
            assert np.abs(images[i] - images[j]).max() > 0.05


def test_rgb_images_and_normalisation(net: DigitsNet) -> None:
    """A 3-channel net behind a per-channel normalisation; decorrelated colours."""
    rgb = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 5, 3, padding=1))
    torch.manual_seed(1)
    nn.init.normal_(rgb[0].weight)
    mean, std = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)
    result = am(rgb, "2", [1, 4], channels=3, normalise=(mean, std), image_size=12, steps=8)
    assert result.images.shape == (2, 4, 3, 12, 12)
    x = (torch.from_numpy(result.images[1]) - torch.tensor(mean)[:, None, None]) / torch.tensor(
        std
    )[:, None, None]
    with torch.no_grad():
        expected = rgb(x)[:, 4].mean((1, 2))
    np.testing.assert_allclose(result.activations[1], expected.numpy(), rtol=1e-5, atol=1e-5)
    assert result.params["normalise"] == {"mean": list(mean), "std": list(std)}
    assert result.params["parameterisation"]["decorrelate"] is True


def test_grey_images_repeated_for_a_three_channel_net() -> None:
    rgb = nn.Sequential(nn.Conv2d(3, 2, 3), nn.Flatten(), nn.LazyLinear(3))
    rgb(torch.zeros(1, 3, 10, 10))
    result = am(
        rgb, "2", [0], channels=1, input_channels=3, image_size=10, normalise=([0.5] * 3, [0.3] * 3)
    )
    grey = torch.from_numpy(result.images[0]).expand(-1, 3, -1, -1)
    with torch.no_grad():
        expected = rgb((grey - 0.5) / 0.3)[:, 0]
    np.testing.assert_allclose(result.activations[0], expected.numpy(), rtol=1e-5, atol=1e-5)


def test_progress_is_reported_after_every_step(net: DigitsNet) -> None:
    seen: list[tuple[int, int]] = []
    am(
        net,
        "conv2",
        [0, 1],
        steps=5,
        batch_size=3,
        on_progress=lambda done, total: seen.append((done, total)),
    )
    # 8 images in batches of 3: 3 batches of 5 steps
    assert seen == [(k, 15) for k in range(1, 16)]


def test_module_flags_and_weights_are_left_alone(net: DigitsNet) -> None:
    before = {k: v.clone() for k, v in net.state_dict().items()}
    grads = [None if p.grad is None else p.grad.clone() for p in net.parameters()]
    net.train()
    net.dropout.eval()
    try:
        am(net, "fc", [0], steps=3)
        assert net.training and net.conv1.training and not net.dropout.training
        for p, g in zip(net.parameters(), grads, strict=True):
            assert p.requires_grad and (p.grad is None if g is None else torch.equal(p.grad, g))
        assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    finally:
        net.eval()


def test_parameters_are_a_plain_record(net: DigitsNet) -> None:
    import json

    result = am(net, "conv2", [0], steps=2, lr=0.07)
    params = json.loads(json.dumps(result.params))
    assert params["method"] == "fourier-decorrelated-gradient-ascent"
    assert (params["steps"], params["lr"], params["image_size"], params["seed"]) == (2, 0.07, 8, 3)
    assert params["transforms"]["scale"] == [0.9, 1.1]
    assert params["objective"] == "channel mean"
    none = am(net, "conv2", [0], steps=2, transforms=None)
    assert none.params["transforms"] is None


def test_bad_requests_say_what_is_wrong(net: DigitsNet) -> None:
    with pytest.raises(NotFound, match=r"'conv9' is not a node.*conv2"):
        am(net, "conv9", [0])
    with pytest.raises(NotFound, match=r"unit 16 is not in layer 'conv2'.*0–15"):
        am(net, "conv2", [3, 16])
    with pytest.raises(InputError, match="repeat"):
        am(net, "conv2", [3, 3])
    with pytest.raises(InputError, match="no units"):
        am(net, "conv2", [])
    with pytest.raises(InputError, match="does not accept 3 × 8 × 8"):
        am(net, "conv2", [0], channels=3)
    with pytest.raises(InputError, match="n_images"):
        am(net, "conv2", [0], n_images=0)
    with pytest.raises(InputError, match="reduce"):
        am(net, "conv2", [0], reduce="median")
    with pytest.raises(InputError, match="normalise needs 1 means"):
        am(net, "conv2", [0], normalise=([0.5, 0.5], [1.0, 1.0]))


# ---------------------------------------------------------------- parts, against literal versions


def test_identity_transform_returns_the_image() -> None:
    image = torch.rand(2, 3, 7, 7)
    theta = affine_from(torch.zeros(2, 2), torch.ones(2), torch.zeros(2), torch.zeros(2, 2))
    torch.testing.assert_close(affine_resample(image, theta), image, atol=1e-6, rtol=0)


def test_one_pixel_jitter_shifts_content_and_fills_grey() -> None:
    size = 6
    image = torch.rand(1, 1, size, size)
    one_pixel_right = torch.tensor([[2.0 / size, 0.0]])
    theta = affine_from(one_pixel_right, torch.ones(1), torch.zeros(1), torch.zeros(1, 2))
    out = affine_resample(image, theta, fill=0.5)
    expected = torch.full_like(image, 0.5)
    for y in range(size):
        for x in range(1, size):
            expected[0, 0, y, x] = image[0, 0, y, x - 1]
    torch.testing.assert_close(out, expected, atol=1e-6, rtol=0)


def test_quarter_turn_moves_each_pixel_where_rotation_says() -> None:
    size = 5
    image = torch.rand(1, 1, size, size)
    theta = affine_from(
        torch.zeros(1, 2), torch.ones(1), torch.tensor([math.pi / 2]), torch.zeros(1, 2)
    )
    out = affine_resample(image, theta)
    c = (size - 1) / 2
    expected = torch.empty_like(image)
    for y in range(size):
        for x in range(size):
            # content at (x, y) moves to R(90°)(x - c, y - c) + c = (c - (y - c), c + (x - c))
            xo, yo = round(c - (y - c)), round(c + (x - c))
            expected[0, 0, yo, xo] = image[0, 0, y, x]
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("size", [4, 5])
def test_fourier_image_is_the_scaled_inverse_dft(size: int) -> None:
    gen = torch.Generator().manual_seed(0)
    spectrum = torch.randn(1, 3, size, size // 2 + 1, 2, generator=gen)
    images = FourierImage(size, 3, decorrelate=True).images(spectrum)
    s = spectrum[0].double().numpy()
    raw = np.zeros((3, size, size))
    for ky in range(size):
        for kx in range(size // 2 + 1):
            f = math.hypot(min(ky, size - ky) / size if ky != size / 2 else 0.5, kx / size)
            scale = 1.0 / max(f, 1.0 / size)
            weight = 1 if kx == 0 or (size % 2 == 0 and kx == size // 2) else 2
            for y in range(size):
                for x in range(size):
                    phase = np.exp(2j * math.pi * (ky * y + kx * x) / size)
                    coeff = (s[:, ky, kx, 0] + 1j * s[:, ky, kx, 1]) * scale
                    raw[:, y, x] += weight * (coeff * phase).real
    raw /= size * FFT_MAGIC
    matrix = COLOR_CORRELATION_SVD_SQRT / np.linalg.norm(COLOR_CORRELATION_SVD_SQRT, axis=0).max()
    mixed = np.einsum("dc,chw->dhw", matrix, raw)
    np.testing.assert_allclose(images[0].numpy(), 1 / (1 + np.exp(-mixed)), atol=1e-5)


def test_transform_settings_scale_with_the_image() -> None:
    params = RobustnessTransforms().as_params()
    assert params["jitter"] * 224 == pytest.approx(8)
    assert params["jitter_after"] * 224 == pytest.approx(4)


# ---------------------------------------------------------------- panels


def test_panel_tiles_images_row_by_row_with_white_gaps(tmp_path) -> None:
    rng = np.random.default_rng(0)
    images = rng.random((100, 3, 8, 8), dtype=np.float32)
    panel = render_panel(images)
    assert panel.size == (10 * 8 + 9 * 2, 10 * 8 + 9 * 2) and panel.mode == "RGB"
    pixels = np.asarray(panel)
    for i in (0, 9, 10, 57, 99):
        r, c = divmod(i, 10)
        tile = pixels[r * 10 : r * 10 + 8, c * 10 : c * 10 + 8]
        expected = np.round(images[i].transpose(1, 2, 0) * 255).astype(np.uint8)
        assert np.array_equal(tile, expected)
    assert (pixels[8:10, :, :] == 255).all() and (pixels[:, 8:10, :] == 255).all()

    path = save_panel(images, tmp_path / "panels" / "unit-3.png")
    with Image.open(path) as reopened:
        assert reopened.format == "PNG" and reopened.size == (98, 98)


def test_panel_of_grey_images_with_fewer_images_and_larger_tiles() -> None:
    images = torch.zeros(3, 1, 2, 2)
    images[1] = 1.0
    panel = render_panel(images, rows=2, cols=2, gap=1, tile_size=4)
    assert panel.mode == "L" and panel.size == (9, 9)
    pixels = np.asarray(panel)
    assert (pixels[:4, :4] == 0).all()
    assert (pixels[:4, 5:] == 255).all()
    assert (pixels[5:, :4] == 0).all()
    assert (pixels[5:, 5:] == 255).all()  # the unused cell stays background
    assert (pixels[4, :] == 255).all() and (pixels[:, 4] == 255).all()


def test_panel_rejects_too_many_images_and_bad_shapes() -> None:
    with pytest.raises(InputError, match="101 images do not fit a 10 × 10 panel"):
        render_panel(np.zeros((101, 3, 4, 4)))
    with pytest.raises(InputError, match="N × C × H × W"):
        render_panel(np.zeros((4, 2, 4, 4)))


def test_result_renders_its_panels(net: DigitsNet) -> None:
    result = am(net, "conv2", [0], n_images=6, steps=2)
    panel = result.panel(0, rows=2, cols=3, gap=1)
    assert panel.size == (3 * 8 + 2, 2 * 8 + 1)


# ---------------------------------------------------------------- the project's demo CNN


def test_demo_cnn_units_by_node_name_beat_every_digit() -> None:
    """conv5 (a post-ReLU leaf block) and fc8 of the seeded demo CNN, grey images repeated to RGB."""
    info = random_demo_model()
    transform = info.transform
    digits = resolve_dataset("digits:test", transform=transform)
    x = torch.stack([digits[i].image for i in range(len(digits))])
    extractor = create_feature_extractor(
        info.module, ["conv5", "fc8"], tracer_kwargs=info.tracer_kwargs
    )
    with torch.no_grad():
        out = extractor(x)
    conv_max = out["conv5"].mean((2, 3)).amax(0)
    logit_max = out["fc8"].amax(0)
    options = {
        "n_images": 3,
        "steps": 32,
        "image_size": 32,
        "channels": 1,
        "input_channels": 3,
        "normalise": ([transform.mean] * 3, [transform.std] * 3),
        "device": "cpu",
        "lr": 0.1,
    }
    conv_units = [int(u) for u in torch.argsort(conv_max, descending=True)[:2]]
    conv5 = maximise_units(info, "conv5", conv_units, **options)
    fc8 = maximise_units(info, "fc8", [0, 3], **options)
    assert conv5.images.shape == (2, 3, 1, 32, 32)
    for position, unit in enumerate(conv_units):
        assert conv5.activations[position].min() > conv_max[unit].item() > 0
    for position, unit in enumerate([0, 3]):
        assert fc8.activations[position].min() > logit_max[unit].item()

    grey = torch.from_numpy(fc8.images[1]).expand(-1, 3, -1, -1)
    with torch.no_grad():
        logits = extractor((grey - transform.mean) / transform.std)["fc8"][:, 3]
    np.testing.assert_allclose(fc8.activations[1], logits.numpy(), rtol=1e-5, atol=1e-6)
