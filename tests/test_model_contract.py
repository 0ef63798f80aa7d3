"""The model contract: extraction, dissection and AM give the caller's model back exactly as given.

The model below is set up the way a caller might leave it: in train mode
with one dropout switched to eval, one conv weight already channels-last,
one frozen parameter, a gradient on another, BatchNorm buffers, and the
caller's own forward and pre-forward hooks. Every computation is run once
normally and once raising half-way (from its progress callback), and the
state is compared with a literal record taken before: every parameter's and
buffer's device, stride, storage and values, ``requires_grad``, ``.grad``,
every submodule's ``training`` flag, and the sizes of its hook dicts.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits as sklearn_digits
from torch import nn

from catalogue.am import maximise_units
from catalogue.data import load_digits
from catalogue.dissection import dissect
from catalogue.extraction import extract_activations
from catalogue.models import ModelInfo, list_layers, prepared
from catalogue.models.demo_cnn import DemoTransform
from catalogue.probe import ProbeSet, make_probe

HOOK_DICTS = (
    "_forward_hooks",
    "_forward_pre_hooks",
    "_backward_hooks",
    "_backward_pre_hooks",
    "_forward_hooks_with_kwargs",
    "_forward_pre_hooks_with_kwargs",
)


class ContractNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(6)
        self.act1 = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(6, 8, 3, padding=1)
        self.act2 = nn.ReLU()
        self.dropout = nn.Dropout(0.5)
        self.fc = nn.Linear(8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act2(self.conv2(self.pool(self.act1(self.bn1(self.conv1(x))))))
        return self.fc(self.dropout(h.mean(dim=(2, 3))))


class Stop(Exception):
    """Raised from a progress callback: a computation interrupted half-way."""


def as_the_caller_left_it() -> ModelInfo:
    torch.manual_seed(0)
    net = ContractNet()
    with torch.no_grad():
        net.conv2.weight.data = net.conv2.weight.data.contiguous(memory_format=torch.channels_last)
        net.bn1.running_mean.uniform_(-0.1, 0.1)
    net.train()
    net.dropout.eval()
    net.conv1.bias.requires_grad_(False)
    net.fc.weight.grad = torch.ones_like(net.fc.weight)
    net.register_forward_hook(lambda module, args, out: None)
    net.conv1.register_forward_pre_hook(lambda module, args: None)
    return ModelInfo.from_module(net, transform=DemoTransform(32, 0.5, 0.25), input_size=32)


def record(module: nn.Module) -> dict[str, Any]:
    """Everything the contract promises to put back, written out literally."""
    tensors = {}
    for name, p in module.named_parameters():
        tensors[f"param {name}"] = (
            p.device,
            p.stride(),
            p.data_ptr(),
            p.detach().clone(),
            p.requires_grad,
            None if p.grad is None else (p.grad.device, p.grad.data_ptr(), p.grad.clone()),
        )
    for name, b in module.named_buffers():
        tensors[f"buffer {name}"] = (b.device, b.stride(), b.data_ptr(), b.clone())
    return {
        "tensors": tensors,
        "parameter objects": [id(p) for p in module.parameters()],
        "training": {name: m.training for name, m in module.named_modules()},
        "hooks": {
            name: tuple(len(getattr(m, attr)) for attr in HOOK_DICTS)
            for name, m in module.named_modules()
        },
    }


def assert_same(before: dict[str, Any], after: dict[str, Any]) -> None:
    assert after["training"] == before["training"]
    assert after["hooks"] == before["hooks"]
    assert after["parameter objects"] == before["parameter objects"]
    assert after["tensors"].keys() == before["tensors"].keys()
    for key, old in before["tensors"].items():
        new = after["tensors"][key]
        assert new[:3] == old[:3], key  # device, stride, storage
        assert torch.equal(new[3], old[3]), key
        if key.startswith("param"):
            assert new[4] == old[4], key
            if old[5] is None:
                assert new[5] is None, key
            else:
                assert new[5][:2] == old[5][:2] and torch.equal(new[5][2], old[5][2]), key


def inside_state(module: nn.Module) -> dict[str, Any]:
    return {
        "conv1 stride": module.conv1.weight.stride(),
        "all eval": not any(m.training for m in module.modules()),
        "any requires_grad": any(p.requires_grad for p in module.parameters()),
    }


@pytest.fixture(scope="module")
def probe(tmp_path_factory) -> ProbeSet:
    digits = sklearn_digits()
    items = [
        (im, int(t), str(t)) for im, t in zip(digits.images[:60], digits.target[:60], strict=True)
    ]
    return make_probe(items, tmp_path_factory.mktemp("probe"), n_images=6, image_size=32, seed=1)


@pytest.fixture
def model() -> ModelInfo:
    return as_the_caller_left_it()


def test_the_callers_state_is_what_the_record_says(model: ModelInfo) -> None:
    """The set-up is really unusual, so a restore to defaults would not pass the checks below."""
    net = model.module
    assert net.training and net.conv1.training and not net.dropout.training
    assert net.conv2.weight.is_contiguous(memory_format=torch.channels_last)
    assert not net.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    assert not net.conv1.bias.requires_grad and net.fc.weight.grad is not None
    assert len(net._forward_hooks) == 1 and len(net.conv1._forward_pre_hooks) == 1


def test_extraction_gives_the_model_back_as_given(model: ModelInfo, tmp_path) -> None:
    before = record(model.module)
    dataset = load_digits("test", transform=model.transform)
    seen: list[dict[str, Any]] = []

    def look_inside(done: int, total: int) -> None:
        seen.append(inside_state(model.module))

    summary = extract_activations(
        model, dataset, ["act1", "act2"], tmp_path / "run.h5", limit=12, batch_size=4,
        keep_maps=True, device="cpu", on_progress=look_inside,
    )  # fmt: skip
    assert summary.n_images == 12
    assert seen[-1]["all eval"] and seen[-1]["conv1 stride"] == (27, 1, 9, 3)  # channels-last
    assert_same(before, record(model.module))


def test_extraction_interrupted_half_way_gives_the_model_back(model: ModelInfo, tmp_path) -> None:
    before = record(model.module)
    dataset = load_digits("test", transform=model.transform)
    calls = []

    def stop_after_a_batch(done: int, total: int) -> None:
        calls.append(done)
        if len(calls) == 2:  # the first call reports the start; the second, one batch done
            raise Stop

    with pytest.raises(Stop):
        extract_activations(
            model, dataset, ["act2"], tmp_path / "run.h5", limit=12, batch_size=4,
            device="cpu", on_progress=stop_after_a_batch,
        )  # fmt: skip
    assert calls == [0, 4]
    assert_same(before, record(model.module))


def test_dissection_gives_the_model_back_as_given(model: ModelInfo, probe: ProbeSet) -> None:
    before = record(model.module)
    seen: list[dict[str, Any]] = []
    result = dissect(
        model, ["act1", "act2"], probe, batch_size=4, device="cpu", quantile=0.05,
        progress=lambda done, total: seen.append(inside_state(model.module)),
    )  # fmt: skip
    assert result["act2"].n_units == 8
    assert seen and all(s["all eval"] for s in seen)
    assert_same(before, record(model.module))


def test_dissection_interrupted_half_way_gives_the_model_back(
    model: ModelInfo, probe: ProbeSet
) -> None:
    before = record(model.module)

    def stop(done: int, total: int) -> None:
        raise Stop

    with pytest.raises(Stop):
        dissect(model, ["act2"], probe, batch_size=4, device="cpu", progress=stop)
    assert_same(before, record(model.module))


def test_am_gives_the_model_back_as_given(model: ModelInfo) -> None:
    before = record(model.module)
    seen: list[dict[str, Any]] = []
    result = maximise_units(
        model, "act2", [1, 5], n_images=2, steps=3, image_size=32, channels=1,
        input_channels=3, device="cpu",
        on_progress=lambda done, total: seen.append(inside_state(model.module)),
    )  # fmt: skip
    assert result.images.shape == (2, 2, 1, 32, 32)
    assert seen[-1]["all eval"] and not seen[-1]["any requires_grad"]
    assert_same(before, record(model.module))


def test_am_interrupted_half_way_gives_the_model_back(model: ModelInfo) -> None:
    before = record(model.module)

    def stop_at_step_two(done: int, total: int) -> None:
        if done == 2:
            raise Stop

    with pytest.raises(Stop):
        maximise_units(
            model, "fc", [0], n_images=2, steps=5, image_size=32, channels=1,
            input_channels=3, device="cpu", on_progress=stop_at_step_two,
        )  # fmt: skip
    assert_same(before, record(model.module))


def test_bad_requests_give_the_model_back(model: ModelInfo, probe: ProbeSet, tmp_path) -> None:
    """Errors raised inside the computations (an unknown unit, a non-spatial layer)."""
    from catalogue.errors import InputError, NotFound

    before = record(model.module)
    with pytest.raises(NotFound, match="unit 99"):
        maximise_units(model, "act2", [99], n_images=1, steps=1, image_size=32, device="cpu")
    with pytest.raises(InputError, match="'fc' outputs shape"):
        dissect(model, ["fc"], probe, device="cpu")
    assert list_layers(model, layers=["act2"])[0].output_shape == (8, 16, 16)
    assert_same(before, record(model.module))


def test_prepared_hands_out_the_asked_state_and_restores_it(model: ModelInfo) -> None:
    before = record(model.module)
    net = model.module
    caller_hook = next(iter(net._forward_hooks))
    with prepared(model, channels_last=True, requires_grad=False) as ready:
        assert ready.module is net and ready.device == torch.device("cpu")
        assert all(
            p.is_contiguous(memory_format=torch.channels_last)
            for p in net.parameters()
            if p.ndim == 4
        )
        assert not any(m.training for m in net.modules())
        assert not any(p.requires_grad for p in net.parameters())
        net.fc.register_forward_hook(lambda module, args, out: None)  # a hook left behind …
        del net._forward_hooks[caller_hook]  # … and one of the caller's removed
        net.dropout.train()
        out = ready.extractor(["act1"])(ready.dummy_input(batch=2))
        assert out["act1"].shape == (2, 6, 32, 32) and out["__logits__"].shape == (2, 10)
    assert_same(before, record(model.module))
    assert caller_hook in net._forward_hooks


def test_prepared_moves_every_tensor_and_puts_back_the_originals(model: ModelInfo) -> None:
    """The meta device stands in for a GPU here: no data, but a real move of every tensor."""
    before = record(model.module)
    net = model.module
    with prepared(model, device="meta") as ready:
        assert ready.device == torch.device("meta")
        assert all(t.device.type == "meta" for t in [*net.parameters(), *net.buffers()])
    assert_same(before, record(net))
    assert net.fc.weight.grad is not None and torch.equal(
        net.fc.weight.grad, torch.ones_like(net.fc.weight)
    )


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_a_computation_on_the_gpu_gives_a_cpu_model_back(model: ModelInfo, tmp_path) -> None:
    before = record(model.module)
    dataset = load_digits("test", transform=model.transform)
    extract_activations(model, dataset, ["act2"], tmp_path / "gpu.h5", limit=8, device="cuda")
    maximise_units(model, "act2", [0], n_images=1, steps=2, image_size=32, channels=1,
                   input_channels=3, device="cuda")  # fmt: skip
    assert_same(before, record(model.module))


def test_a_bare_module_is_refused_with_the_way_to_wrap_it() -> None:
    with pytest.raises(TypeError, match=r"ModelInfo\.from_module"), prepared(ContractNet()):  # type: ignore[arg-type]
        pass
    with pytest.raises(TypeError, match=r"ModelInfo\.from_module"):
        maximise_units(ContractNet(), "fc", [0], n_images=1, steps=1, image_size=8)  # type: ignore[arg-type]


def test_results_do_not_depend_on_the_callers_mode_or_layout(model: ModelInfo) -> None:
    """Same AM images from the caller's odd state as from a plain eval-mode, contiguous copy."""
    plain = as_the_caller_left_it()
    plain.module.eval()
    with torch.no_grad():
        plain.module.conv2.weight.data = plain.module.conv2.weight.data.contiguous()
    options = {"n_images": 2, "steps": 4, "image_size": 32, "channels": 1, "input_channels": 3}
    odd = maximise_units(model, "act2", [3], device="cpu", **options)
    usual = maximise_units(plain, "act2", [3], device="cpu", **options)
    np.testing.assert_allclose(odd.images, usual.images, atol=1e-6)
