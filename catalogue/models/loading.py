"""Model loading: torchvision models, TorchScript files, the demo CNN — offline only.

Why offline-first: pretrained weights are large downloads and this project must
run without a network. `load_model` therefore never downloads: torchvision
weights come from the torch hub cache (``torch.hub.get_dir()/checkpoints``,
where torchvision itself stores them) or from an explicit file, and a missing
file is a `ConfigError` naming the exact path to put it at.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import os
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
from torch import nn

from catalogue.errors import ConfigError, NotFound
from catalogue.models import demo_cnn
from catalogue.models.info import (
    ImageNetTransform,
    ModelInfo,
    RGBFirst,
    weights_checksum,
)
from catalogue.models.recipe import ModelRecipe, recipe_of, records_recipe

RANDOM_WEIGHTS = ("none", "random", "")
INIT_SEED = 0


def random_label(seed: int) -> str:
    """The weights label of seeded random weights: ``random-seed0``."""
    return f"random-seed{int(seed)}"


def random_name(base: str, seed: int) -> str:
    """How the catalogue names a network with seeded random weights: ``resnet18@random-seed0``.

    The seed is part of the name so that every command that loads "random weights"
    means the same network, and two seeds are two models.
    """
    return f"{base.split('@', 1)[0]}@{random_label(seed)}"


def _seeded(build: Callable[[], nn.Module], seed: int) -> nn.Module:
    """``build()`` with the global torch generator seeded, leaving the caller's stream as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        return build()


def _no_inplace(module: nn.Module) -> nn.Module:
    """Turn off in-place activations: an in-place ReLU would overwrite a conv node's returned output."""
    for sub in module.modules():
        if getattr(sub, "inplace", False) is True:
            sub.inplace = False
    return module


# ---------------------------------------------------------------- torchvision
def _torchvision_names() -> list[str]:
    from torchvision import models

    return sorted(models.list_models(module=models))


def _resolve_weights_enum(architecture: str, weights: str) -> Any:
    from torchvision import models

    try:
        enum_class = models.get_model_weights(architecture)
    except (ValueError, KeyError) as exc:
        raise ConfigError(f"{architecture} has no pretrained weights in torchvision.") from exc
    if weights.upper() == "DEFAULT":
        return enum_class.DEFAULT
    short = weights.split(".", 1)[1] if "." in weights else weights
    if "." in weights and weights.split(".", 1)[0] != enum_class.__name__:
        raise ConfigError(
            f"weights {weights} are not for {architecture}; use one of {_weight_names(enum_class)}."
        )
    try:
        return enum_class[short]
    except KeyError as exc:
        raise ConfigError(
            f"{architecture} has no weights {weights!r}; use DEFAULT or one of {_weight_names(enum_class)}."
        ) from exc


def _weight_names(enum_class: Any) -> str:
    return ", ".join(f"{enum_class.__name__}.{w.name}" for w in enum_class)


def hub_weights_path(weights_enum: Any) -> Path:
    """Where torchvision keeps (and `load_model` looks for) a weights file: the torch hub cache."""
    filename = os.path.basename(urlparse(weights_enum.url).path)
    return Path(torch.hub.get_dir()) / "checkpoints" / filename


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise ConfigError(f"weights file {path} does not exist.")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"cannot read weights file {path} as a state dict ({first}).") from exc
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(payload, dict) and isinstance(payload.get(key), dict):
            payload = payload[key]
    if not isinstance(payload, dict) or not all(
        isinstance(v, torch.Tensor) for v in payload.values()
    ):
        raise ConfigError(f"{path} does not hold a state dict (name → tensor).")
    return {k.removeprefix("module."): v for k, v in payload.items()}


def _load_torchvision(
    architecture: str,
    weights: str | None,
    weights_file: str | Path | None,
    num_classes: int | None,
    input_size: int | None,
    seed: int = INIT_SEED,
) -> ModelInfo:
    from torchvision import models

    enum = (
        None
        if (weights is None or weights.lower() in RANDOM_WEIGHTS)
        else _resolve_weights_enum(architecture, weights)
    )
    kwargs: dict[str, Any] = {}
    if num_classes is not None:
        kwargs["num_classes"] = int(num_classes)
    file_path = Path(weights_file).expanduser() if weights_file is not None else None
    if enum is not None:
        cached = hub_weights_path(enum)
        if file_path is None and not cached.is_file():
            raise ConfigError(
                f"weights {enum} are not available offline: put the file {cached.name} at {cached} "
                "(or pass --weights-file PATH); unitcat never downloads weights."
            )
        if num_classes is not None and num_classes != len(enum.meta.get("categories", [])):
            raise ConfigError(
                f"weights {enum} have {len(enum.meta['categories'])} classes, not {num_classes}."
            )
        source = str(file_path or cached)
        module = _build_with_weights(architecture, enum, file_path)
        label = str(enum)
        categories = list(enum.meta.get("categories") or []) or None
        transform = RGBFirst(enum.transforms())
        crop = getattr(transform.inner, "crop_size", None) or [224]
        size = (int(crop[0]), int(crop[0]))
        if input_size is not None:
            transform = ImageNetTransform(input_size)
            size = (input_size, input_size)
    else:
        module = _seeded(lambda: models.get_model(architecture, weights=None, **kwargs), seed)
        label = random_label(seed)
        source = None
        categories = None
        side = input_size or 224
        transform, size = ImageNetTransform(side), (side, side)
        if file_path is not None:
            state = _read_state_dict(file_path)
            module = _load_state(module, state, architecture, kwargs)
            label = f"file:{file_path.name}"
            source = str(file_path)
    module = _no_inplace(module).eval()
    return ModelInfo(
        module=module,
        name=random_name(architecture, seed) if label == random_label(seed) else architecture,
        architecture=architecture,
        weights=label,
        checksum=weights_checksum(module),
        transform=transform,
        input_size=size,
        class_keys=None,
        class_names=categories,
        source=source,
    )


def _build_with_weights(architecture: str, enum: Any, file_path: Path | None) -> nn.Module:
    """Let torchvision's builder load ``enum`` (it sets model-specific options), from the cache or a file."""
    from torchvision import models

    if file_path is None:
        return models.get_model(architecture, weights=enum)
    if not file_path.is_file():
        raise ConfigError(f"weights file {file_path} does not exist.")
    previous = getattr(torch.hub, "_hub_dir", None)  # None: follow $TORCH_HOME, as before
    with tempfile.TemporaryDirectory(prefix="unitcat-hub-") as tmp:
        target = hub_weights_path_in(Path(tmp), enum)
        target.parent.mkdir(parents=True)
        target.symlink_to(file_path.resolve())
        torch.hub.set_dir(tmp)
        try:
            return models.get_model(architecture, weights=enum)
        except RuntimeError as exc:
            first = str(exc).splitlines()[0]
            raise ConfigError(
                f"{file_path} does not fit {architecture} with {enum} ({first})."
            ) from exc
        finally:
            torch.hub._hub_dir = previous


def hub_weights_path_in(hub_dir: Path, enum: Any) -> Path:
    return hub_dir / "checkpoints" / os.path.basename(urlparse(enum.url).path)


def _load_state(
    module: nn.Module, state: dict[str, torch.Tensor], architecture: str, kwargs: dict
) -> nn.Module:
    """Load a state dict; infer ``num_classes`` from the file when only the classifier differs."""
    from torchvision import models

    own = module.state_dict()
    mismatched = [k for k, v in state.items() if k in own and own[k].shape != v.shape]
    if mismatched and "num_classes" not in kwargs:
        heads = [k for k in mismatched if k.endswith(".weight") and state[k].ndim == 2]
        if heads and all(k.rsplit(".", 1)[0] == heads[-1].rsplit(".", 1)[0] for k in mismatched):
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(INIT_SEED)
                module = models.get_model(
                    architecture, weights=None, num_classes=int(state[heads[-1]].shape[0])
                )
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise ConfigError(f"the weights file does not fit {architecture} ({first}).") from exc
    return module


# ---------------------------------------------------------------- demo + TorchScript
def _load_demo(dataset: str | None) -> ModelInfo:
    if dataset is None:
        candidates = [
            d
            for d in ("fashion-mnist-colours", "fashion-mnist", "digits")
            if demo_cnn.checkpoint_path(d).is_file()
        ]
        if not candidates:
            raise ConfigError(
                f"no demo CNN checkpoint in {demo_cnn.checkpoint_path('digits').parent}; "
                "run `unitcat ingest train-demo --dataset digits` (or fashion-mnist) first."
            )
        dataset = candidates[0]
    if dataset not in demo_cnn.DEMO_DATASETS:
        raise NotFound(
            f"no demo CNN for {dataset!r}; choose demo:{' or demo:'.join(demo_cnn.DEMO_DATASETS)}."
        )
    path = demo_cnn.checkpoint_path(dataset)
    if not path.is_file():
        raise ConfigError(
            f"the demo CNN for {dataset} is not trained yet ({path} is missing); "
            f"run `unitcat ingest train-demo --dataset {dataset}`."
        )
    return load_demo_checkpoint(path, name=f"demo:{dataset}")


def _is_demo_checkpoint(path: Path) -> bool:
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            if any(name.endswith("constants.pkl") for name in archive.namelist()):
                return False  # a TorchScript archive
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # TorchScript archives and other files are not plain payloads
        return False
    return isinstance(payload, dict) and payload.get("format") == "unitcat-demo-cnn"


@records_recipe
def load_demo_checkpoint(path: str | Path, name: str | None = None) -> ModelInfo:
    """A demo CNN from a checkpoint written by `catalogue.models.demo_cnn.train_demo`."""
    path = Path(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ConfigError(
            f"cannot read demo checkpoint {path} ({str(exc).splitlines()[0]}); train it again."
        ) from exc
    if not isinstance(payload, dict) or payload.get("format") != "unitcat-demo-cnn":
        raise ConfigError(
            f"{path} is not a demo CNN checkpoint; run `unitcat ingest train-demo` again."
        )
    module = demo_cnn.DemoCNN(
        num_classes=int(payload["num_classes"]),
        conv_widths=tuple(payload["conv_widths"]),
        fc_widths=tuple(payload["fc_widths"]),
    )
    module.load_state_dict(payload["state_dict"])
    module.eval()
    size = int(payload["input_size"])
    return ModelInfo(
        module=module,
        name=name or f"demo:{payload['dataset']}",
        architecture=demo_cnn.ARCHITECTURE,
        weights=f"demo:{payload['dataset']}",
        checksum=weights_checksum(module),
        transform=_demo_transform(size, payload["mean"], payload["std"]),
        input_size=(size, size),
        class_keys=list(payload["class_keys"]),
        class_names=list(payload["class_names"]),
        leaf_modules=(demo_cnn.DemoBlock,),
        source=str(path),
        extra={"test_accuracy": float(payload["test_accuracy"]), "dataset": payload["dataset"]},
    )


def _demo_transform(size: int, mean: Any, std: Any) -> Any:
    """The checkpoint's input transform: per-channel for colour, one mean and std for grey."""
    if isinstance(mean, list | tuple):
        return demo_cnn.DemoRGBTransform(
            size, tuple(float(v) for v in mean), tuple(float(v) for v in std)
        )
    return demo_cnn.DemoTransform(size, float(mean), float(std))


@records_recipe
def random_demo_model(
    num_classes: int = 10, *, seed: int = INIT_SEED, mean: float = 0.5, std: float = 0.25
) -> ModelInfo:
    """The demo CNN with seeded random weights (tests, benchmarks): no checkpoint needed."""
    module = _seeded(lambda: demo_cnn.DemoCNN(num_classes=num_classes), seed).eval()
    size = demo_cnn.INPUT_SIZE
    return ModelInfo(
        module=module,
        name=random_name(demo_cnn.ARCHITECTURE, seed),
        architecture=demo_cnn.ARCHITECTURE,
        weights=random_label(seed),
        checksum=weights_checksum(module),
        transform=demo_cnn.DemoTransform(size, mean, std),
        input_size=(size, size),
        leaf_modules=(demo_cnn.DemoBlock,),
    )


def _load_torchscript(path: Path, input_size: int | None) -> ModelInfo:
    try:
        module = torch.jit.load(str(path), map_location="cpu")
    except Exception as exc:
        raise ConfigError(
            f"cannot load {path} as TorchScript ({str(exc).splitlines()[0]})."
        ) from exc
    module.eval()
    side = input_size or 224
    return ModelInfo(
        module=module,
        name=path.name,
        architecture="torchscript",
        weights=f"file:{path.name}",
        checksum=weights_checksum(module),
        transform=ImageNetTransform(side),
        input_size=(side, side),
        source=str(path),
    )


@records_recipe
def load_model(
    spec: str,
    *,
    weights: str | None = None,
    weights_file: str | Path | None = None,
    num_classes: int | None = None,
    input_size: int | None = None,
    seed: int = INIT_SEED,
    name: str | None = None,
) -> ModelInfo:
    """Load a classifier for extraction, in eval mode, on the CPU.

    ``spec``: a torchvision classification model name (``alexnet``, ``vgg16``,
    ``resnet18`` …); ``demo`` / ``demo:digits`` / ``demo:fashion-mnist`` (the
    trained demo CNN; bare ``demo`` prefers fashion-mnist); or a path to a
    file: a demo checkpoint, or TorchScript (written by ``torch.jit.save``).
    ``weights``: None/``none`` (random, seeded), ``DEFAULT`` or an enum name
    like ``AlexNet_Weights.IMAGENET1K_V1``; read from the torch hub cache, or
    from ``weights_file`` (which alone means a plain state dict).
    ``input_size``: the square input side for random weights (default 224).
    ``seed``: the initialisation of random weights; the model is then named by it
    (``resnet18@random-seed0``), so that every command means the same network.
    ``name``: register the model under this name instead (two models that would
    otherwise share a name, e.g. random weights with other output classes).
    """
    info = _load(spec, weights, weights_file, num_classes, input_size, seed)
    return renamed(info, name)


def renamed(model: ModelInfo, name: str | None) -> ModelInfo:
    """``model`` under another catalogue name (None or empty: as it is)."""
    if name is None or not name.strip():
        return model
    if "/" in name or name != name.strip():
        raise ConfigError(f"--name {name!r}: use a name without slashes or surrounding spaces.")
    return dataclasses.replace(model, name=name)


def _load(
    spec: str,
    weights: str | None,
    weights_file: str | Path | None,
    num_classes: int | None,
    input_size: int | None,
    seed: int,
) -> ModelInfo:
    if seed < 0:
        raise ConfigError(f"--seed must be 0 or more, got {seed}.")
    text = spec.strip()
    if text.lower() == "demo" or text.lower().startswith("demo:"):
        _, _, dataset = text.partition(":")
        return _load_demo(dataset.lower() or None)
    path = Path(text).expanduser()
    if path.suffix in (".pt", ".pth", ".ts", ".torchscript") or path.is_file():
        if not path.is_file():
            raise NotFound(f"model file {path} does not exist.")
        if _is_demo_checkpoint(path):
            return load_demo_checkpoint(path)
        return _load_torchscript(path, input_size)
    names = _torchvision_names()
    architecture = text.lower()
    if architecture not in names:
        close = difflib.get_close_matches(architecture, names, n=4)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise NotFound(
            f"unknown model {spec!r}: not a torchvision classifier, demo, or a file.{hint}"
        )
    return _load_torchvision(architecture, weights, weights_file, num_classes, input_size, seed)


# ---------------------------------------------------------------- random-weights baselines
def random_weights(model: ModelInfo, seed: int = INIT_SEED, name: str | None = None) -> ModelInfo:
    """The same network as ``model`` with seeded random weights: the baseline of a trained one.

    Same architecture, output classes, input transform and input size (so it sees
    the same images), initialised as its constructor initialises it: torchvision
    models and the demo CNN are built again with the global generator seeded
    (``seed``); any other module is copied and every submodule with a
    ``reset_parameters`` is reset in module order under the seed (a module that
    holds parameters but cannot reset them raises ConfigError). Named
    ``<name>@random-seed<seed>`` unless ``name`` is given.
    """
    if seed < 0:
        raise ConfigError(f"--seed must be 0 or more, got {seed}.")
    source = model.module
    if isinstance(source, demo_cnn.DemoCNN):
        module = _seeded(lambda: demo_cnn.DemoCNN(**_demo_shape(source)), seed)
    elif model.architecture in _torchvision_names():
        from torchvision import models

        kwargs: dict[str, Any] = {"num_classes": model.n_outputs}
        # GoogLeNet / Inception: the options torchvision's builder set for the trained weights
        for attr in ("transform_input", "aux_logits"):
            if hasattr(source, attr):
                kwargs[attr] = bool(getattr(source, attr))
                kwargs["init_weights"] = True
        module = _seeded(lambda: models.get_model(model.architecture, weights=None, **kwargs), seed)
    else:
        module = _seeded(lambda: _reset_copy(source), seed)
    _same_shapes(source, module, model.name)
    module = _no_inplace(module).eval()
    random = dataclasses.replace(
        model,
        module=module,
        name=name or random_name(model.name, seed),
        weights=random_label(seed),
        checksum=weights_checksum(module),
        source=None,
        extra={},
        recipe=None,
    )
    # loaded again elsewhere (a Ray worker) from the trained model's recipe, not pickled
    trained = model.recipe
    if trained is not None and trained.checksum == model.checksum == weights_checksum(source):
        random.recipe = recipe_of(load_random_weights, random.checksum, trained, seed, name)
    return random


def load_random_weights(
    source: ModelRecipe, seed: int = INIT_SEED, name: str | None = None
) -> ModelInfo:
    """`random_weights` of the model ``source`` loads: the recipe of a random-weights copy.

    A cluster worker (`catalogue.cluster.handles`) loads a random-weights baseline by
    loading the trained network from its own recipe and initialising it again under the
    seed; the weights' checksum tells that it got the same network.
    """
    return random_weights(source.load(), seed, name)


def _same_shapes(trained: nn.Module, random: nn.Module, name: str) -> None:
    """Refuse a rebuilt network whose parameters and buffers differ from the trained one's."""
    want = {k: tuple(v.shape) for k, v in trained.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in random.state_dict().items()}
    if want != got:
        differ = sorted(set(want) ^ set(got)) or sorted(k for k in want if want[k] != got[k])
        raise ConfigError(
            f"the random-weights copy of {name} is not the same network ({', '.join(differ[:3])} "
            "differ); build the random network yourself and pass it as a model."
        )


def _demo_shape(module: demo_cnn.DemoCNN) -> dict[str, Any]:
    """The constructor arguments of a demo CNN, read from its layers."""
    convs = [getattr(module, f"conv{i}") for i in range(1, 6)]
    fcs = [module.fc6, module.fc7]

    def width(block: nn.Module, kind: type[nn.Module]) -> int:
        layer = next(m for m in block.modules() if isinstance(m, kind))
        return int(layer.out_channels if isinstance(layer, nn.Conv2d) else layer.out_features)

    return {
        "num_classes": int(module.fc8.out_features),
        "conv_widths": tuple(width(b, nn.Conv2d) for b in convs),
        "fc_widths": tuple(width(b, nn.Linear) for b in fcs),
    }


def _reset_copy(source: nn.Module) -> nn.Module:
    if isinstance(source, torch.jit.ScriptModule):
        raise ConfigError(
            "a TorchScript model cannot be re-initialised; load the eager model to make its "
            "random-weights baseline."
        )
    module = copy.deepcopy(source)
    stuck = []
    for name, sub in module.named_modules():
        owns = any(True for _ in sub.parameters(recurse=False))
        if hasattr(sub, "reset_parameters"):
            sub.reset_parameters()
        elif owns:
            stuck.append(name or type(sub).__name__)
    if stuck:
        raise ConfigError(
            f"cannot re-initialise {', '.join(stuck[:3])}: the module holds parameters but has no "
            "reset_parameters(); build the random network yourself and pass it as a model."
        )
    return module
