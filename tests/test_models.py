"""Model loading (offline), layer discovery and the demo CNN."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from catalogue.errors import ConfigError, InputError, NotFound
from catalogue.models import (
    build_extractor,
    default_layers,
    demo_cnn,
    graph_nodes,
    hub_weights_path,
    list_layers,
    load_model,
    random_demo_model,
    weights_checksum,
)

DEMO_NODES = ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"]


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path / "torch"


def test_demo_cnn_nodes_are_named_like_alexnet_layers():
    model = random_demo_model()
    assert graph_nodes(model) == DEMO_NODES
    infos = {i.name: i for i in list_layers(model)}
    assert list(infos) == DEMO_NODES
    assert infos["conv1"].output_shape == (16, 32, 32)
    assert infos["conv5"].kind == "conv"
    assert infos["conv5"].map_shape == (8, 8)
    assert infos["conv5"].n_units == 32
    assert infos["fc6"].output_shape == (128,)
    assert infos["fc8"].kind == "fc"
    assert infos["fc8"].n_units == 10
    assert [i.position for i in infos.values()] == list(range(8))
    assert default_layers(model) == DEMO_NODES


def test_demo_nodes_are_post_relu_block_outputs():
    model = random_demo_model()
    net = model.module
    x = torch.randn(3, 3, 32, 32)
    out = build_extractor(model, ["conv2", "fc7"])(x)
    with torch.inference_mode():
        conv2 = torch.relu(net.conv2[1](nn.functional.max_pool2d(net.conv1(x), 2)))
        logits = net(x)
    torch.testing.assert_close(out["conv2"], conv2)
    assert out["fc7"].min() >= 0
    torch.testing.assert_close(out["__logits__"], logits)
    # Without the leaf-module hint, torchvision's prefix rule picks the same node.
    from torchvision.models.feature_extraction import create_feature_extractor

    plain = create_feature_extractor(net, {"conv2": "conv2"})(x)
    torch.testing.assert_close(plain["conv2"], conv2)


def test_unknown_layer_names_the_closest_nodes():
    model = random_demo_model()
    with pytest.raises(NotFound, match="closest: conv5"):
        list_layers(model, layers=["conv55"])
    with pytest.raises(NotFound, match="unitcat ingest layers"):
        build_extractor(model, ["pool9000"])


def test_alexnet_random_weights_layers_and_no_inplace_relu(torch_home):
    model = load_model("alexnet", input_size=64)
    assert (model.name, model.weights) == ("alexnet@random-seed0", "random-seed0")
    assert model.class_names is None
    assert model.input_size == (64, 64)
    assert model.n_outputs == 1000
    assert default_layers(model) == [
        "features.1", "features.4", "features.7", "features.9", "features.11",
        "classifier.2", "classifier.5", "classifier.6",
    ]  # fmt: skip
    infos = {i.name: i for i in list_layers(model)}
    assert infos["features.0"].output_shape == (64, 15, 15)
    assert infos["classifier.1"].kind == "fc"
    assert infos["classifier.1"].n_units == 4096
    out = build_extractor(model, ["features.0", "features.1"])(torch.randn(2, 3, 64, 64))
    assert out["features.0"].min() < 0  # a conv output, not overwritten by an in-place ReLU
    torch.testing.assert_close(out["features.1"], out["features.0"].clamp(min=0))


def test_resnet_stages_are_module_names():
    model = load_model("resnet18", num_classes=3, input_size=32)
    assert default_layers(model) == ["layer1", "layer2", "layer3", "layer4", "fc"]
    infos = list_layers(model, layers=["layer4", "fc"])
    assert infos[0].output_shape == (512, 1, 1)
    assert infos[0].node == graph_nodes(model)[infos[0].position]
    assert infos[0].node.startswith("layer4.1.")
    assert infos[1].n_units == 3
    assert load_model("resnet18", num_classes=3).checksum == model.checksum  # seeded initialisation


def test_pretrained_weights_come_only_from_the_hub_cache(torch_home):
    from torchvision.models import ResNet18_Weights, resnet18

    expected = hub_weights_path(ResNet18_Weights.IMAGENET1K_V1)
    assert expected == torch_home / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    with pytest.raises(ConfigError, match=str(expected)):
        load_model("resnet18", weights="DEFAULT")
    torch.manual_seed(7)
    reference = resnet18()
    expected.parent.mkdir(parents=True)
    torch.save(reference.state_dict(), expected)
    model = load_model("resnet18", weights="ResNet18_Weights.IMAGENET1K_V1")
    assert model.weights == "ResNet18_Weights.IMAGENET1K_V1"
    assert model.checksum == weights_checksum(reference)
    assert len(model.class_names) == 1000
    assert model.class_names[0] == "tench"
    assert model.input_size == (224, 224)
    assert model.transform.inner.crop_size == [224]
    gray = Image.fromarray(np.full((300, 260), 128, dtype=np.uint8))
    assert model.transform(gray).shape == (3, 224, 224)
    assert load_model("resnet18", weights="IMAGENET1K_V1").checksum == model.checksum


def test_weights_file_with_and_without_an_enum(tmp_path, torch_home):
    from torchvision.models import resnet18

    torch.manual_seed(8)
    reference = resnet18(num_classes=3)
    path = tmp_path / "mine.pth"
    torch.save({"state_dict": reference.state_dict()}, path)
    model = load_model("resnet18", weights_file=path, input_size=32)
    assert model.weights == "file:mine.pth"
    assert model.n_outputs == 3
    assert model.checksum == weights_checksum(reference)
    full = tmp_path / "imagenet.pth"
    torch.manual_seed(9)
    imagenet_like = resnet18()
    torch.save(imagenet_like.state_dict(), full)
    pretrained = load_model("resnet18", weights="DEFAULT", weights_file=full)
    assert pretrained.checksum == weights_checksum(imagenet_like)
    assert not (torch_home / "hub" / "checkpoints").exists()  # nothing copied into the cache
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="cannot read weights file"):
        load_model("resnet18", weights_file=junk)


def test_bad_model_names_and_weights_are_clear_errors(tmp_path, monkeypatch):
    with pytest.raises(NotFound, match="alexnet"):
        load_model("alexnett")
    with pytest.raises(ConfigError, match=r"AlexNet_Weights\.IMAGENET1K_V1"):
        load_model("alexnet", weights="IMAGENET9K")
    with pytest.raises(NotFound, match="does not exist"):
        load_model(str(tmp_path / "model.pt"))
    monkeypatch.setenv("UNITCAT_HOME", str(tmp_path / "home"))
    with pytest.raises(ConfigError, match="unitcat ingest train-demo --dataset digits"):
        load_model("demo:digits")
    with pytest.raises(ConfigError, match="train-demo"):
        load_model("demo")


@pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")
def test_torchscript_files_load_but_cannot_be_traced(tmp_path):
    scripted = torch.jit.script(random_demo_model().module)
    path = tmp_path / "demo.pt"
    torch.jit.save(scripted, str(path))
    model = load_model(str(path), input_size=32)
    assert model.architecture == "torchscript"
    assert model.n_outputs == 10
    with pytest.raises(InputError, match="TorchScript"):
        graph_nodes(model)


def test_demo_cnn_learns_digits_in_one_short_epoch(tmp_path, monkeypatch):
    monkeypatch.setenv("UNITCAT_HOME", str(tmp_path))
    steps = []
    result = demo_cnn.train_demo(
        "digits", epochs=1, batch_size=32, limit=800, on_progress=lambda s, t, i: steps.append(s)
    )
    assert result.checkpoint == tmp_path / "checkpoints" / "demo-digits.pt"
    assert steps == list(range(1, 26))
    assert result.n_train == 800
    assert result.test_accuracy > 0.3  # chance is 0.1
    model = load_model("demo:digits")
    assert model.class_keys == [str(d) for d in range(10)]
    assert model.weights == "demo:digits"
    assert model.extra["test_accuracy"] == result.test_accuracy
    first = demo_cnn.train_demo(
        "digits", epochs=1, limit=64, batch_size=32, out_path=tmp_path / "a.pt"
    )
    second = demo_cnn.train_demo(
        "digits", epochs=1, limit=64, batch_size=32, out_path=tmp_path / "b.pt"
    )
    checksums = {load_model(str(p)).checksum for p in (first.checkpoint, second.checkpoint)}
    assert len(checksums) == 1  # seeded: same weights
    with pytest.raises(InputError, match="digits or fashion-mnist"):
        demo_cnn.train_demo("cifar")


def test_layers_command_prints_the_node_table(torch_home, monkeypatch):
    from typer.testing import CliRunner

    from ingest.cli import app
    from ingest.console import console

    monkeypatch.setattr(console, "_width", 200)  # the table must not wrap with the caller's COLUMNS
    runner = CliRunner()
    result = runner.invoke(
        app, ["ingest", "layers", "resnet18", "--num-classes", "3", "--input-size", "32"]
    )
    assert result.exit_code == 0, result.output
    assert "layer1.0.conv1" in result.output
    assert "512 × 1 × 1" in result.output
    assert "3 outputs" in result.output
    missing = runner.invoke(app, ["ingest", "layers", "resnet18", "--weights", "DEFAULT"])
    assert isinstance(missing.exception, ConfigError)
    assert "resnet18-f37072fd.pth" in str(missing.exception)


@pytest.mark.filterwarnings("ignore:The default weight initialization of GoogleNet:FutureWarning")
def test_networks_without_relu_modules_default_to_their_blocks():
    model = load_model("googlenet", input_size=64)
    assert default_layers(model) == [
        "conv1", "conv2", "conv3", "inception3a", "inception3b", "inception4a", "inception4b",
        "inception4c", "inception4d", "inception4e", "inception5a", "inception5b", "fc",
    ]  # fmt: skip
    infos = list_layers(model, layers=["inception4e", "fc"])
    assert infos[0].output_shape == (832, 4, 4)
    with pytest.raises(InputError, match="same node"):
        list_layers(model, layers=["fc", "fc"])
