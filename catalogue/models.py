"""Model loading and layer discovery: torchvision models, TorchScript files, the demo CNN.

Why offline-first: pretrained weights are large downloads and this project must
run without a network. `load_model` therefore never downloads: torchvision
weights come from the torch hub cache (``torch.hub.get_dir()/checkpoints``,
where torchvision itself stores them) or from an explicit file, and a missing
file is a `ConfigError` naming the exact path to put it at.

Layers are feature-extraction graph nodes (torchvision's
``get_graph_node_names``; e.g. ``features.10`` in AlexNet, ``layer4`` in a
ResNet, ``conv5`` in the demo CNN). Activations are read with
``create_feature_extractor`` for only the requested nodes, not with hooks on
every module. A module name that is not itself a node (``layer4``) selects the
module's last node, as in torchvision.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import os
import tempfile
import warnings
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
from PIL import Image
from torch import nn

from catalogue import demo_cnn
from catalogue.errors import ConfigError, InputError, NotFound

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
RANDOM_WEIGHTS = ("none", "random", "")
LOGITS = "__logits__"
INIT_SEED = 0


@dataclass
class ModelInfo:
    """A loaded classifier and what the catalogue records about it."""

    module: nn.Module
    name: str
    architecture: str
    weights: str
    checksum: str
    transform: Callable[[Image.Image], torch.Tensor]
    input_size: tuple[int, int]
    class_keys: list[str] | None = None
    class_names: list[str] | None = None
    leaf_modules: tuple[type[nn.Module], ...] = ()
    source: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def tracer_kwargs(self) -> dict[str, Any]:
        return tracer_kwargs(self.leaf_modules)

    @property
    def n_outputs(self) -> int:
        """Width of the model's output (number of classes), from one dummy forward."""
        if "n_outputs" not in self.extra:
            with torch.inference_mode():
                out = self.module(
                    torch.zeros(1, 3, *self.input_size, device=_device_of(self.module))
                )
            if not isinstance(out, torch.Tensor) or out.ndim != 2:
                raise InputError(
                    f"model {self.name} does not return a (batch × classes) tensor of logits."
                )
            self.extra["n_outputs"] = int(out.shape[1])
        return int(self.extra["n_outputs"])

    def describe(self) -> dict[str, Any]:
        """What the catalogue's ``model`` row needs."""
        return {
            "name": self.name,
            "architecture": self.architecture,
            "weights": self.weights,
            "checksum": self.checksum,
            "input_size": list(self.input_size),
            "n_classes": len(self.class_names) if self.class_names else None,
            "source": self.source,
        }


@dataclass(frozen=True)
class LayerInfo:
    """One feature-extraction node: ``kind`` is conv for (C, H, W) outputs, fc for (F,)."""

    name: str
    kind: str
    output_shape: tuple[int, ...]
    n_units: int
    position: int
    node: str

    @property
    def map_shape(self) -> tuple[int, int] | None:
        return (self.output_shape[1], self.output_shape[2]) if self.kind == "conv" else None


def tracer_kwargs(leaf_modules: Sequence[type[nn.Module]]) -> dict[str, Any]:
    return {"leaf_modules": list(leaf_modules)} if leaf_modules else {}


def _device_of(module: nn.Module) -> torch.device:
    for tensor in module.parameters():
        return tensor.device
    return torch.device("cpu")


def weights_checksum(module: nn.Module) -> str:
    """SHA-256 over the state dict (names and raw bytes): identifies the weights, however loaded."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        data = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(str(data.dtype).encode())
        digest.update(data.view(torch.uint8).numpy().tobytes() if data.numel() else b"")
    return digest.hexdigest()


def _no_inplace(module: nn.Module) -> nn.Module:
    """Turn off in-place activations: an in-place ReLU would overwrite a conv node's returned output."""
    for sub in module.modules():
        if getattr(sub, "inplace", False) is True:
            sub.inplace = False
    return module


class ImageNetTransform:
    """Resize (shorter side to size·256/224), centre crop, to tensor, ImageNet normalisation."""

    def __init__(self, size: int = 224) -> None:
        from torchvision.transforms import v2

        self.size = size
        self._pipeline = v2.Compose(
            [
                v2.PILToTensor(),
                v2.Resize(round(size * 256 / 224), antialias=True),
                v2.CenterCrop(size),
                v2.ToDtype(torch.float32, scale=True),
                v2.Normalize(IMAGENET_MEAN, IMAGENET_STD),
            ]
        )

    def __call__(self, image: Image.Image) -> torch.Tensor:
        return self._pipeline(image.convert("RGB"))


class RGBFirst:
    """Convert to RGB, then apply ``inner`` (torchvision's weight transforms keep grayscale as 1 channel)."""

    def __init__(self, inner: Callable[[Any], torch.Tensor]) -> None:
        self.inner = inner

    def __call__(self, image: Image.Image) -> torch.Tensor:
        return self.inner(image.convert("RGB"))

    def __repr__(self) -> str:
        return f"RGBFirst({self.inner!r})"


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
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(INIT_SEED)
            module = models.get_model(architecture, weights=None, **kwargs)
        label = "none"
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
        name=architecture,
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
            d for d in ("fashion-mnist", "digits") if demo_cnn.checkpoint_path(d).is_file()
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


def load_demo_checkpoint(path: str | Path, name: str | None = None) -> ModelInfo:
    """A demo CNN from a checkpoint written by `catalogue.demo_cnn.train_demo`."""
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
        transform=demo_cnn.DemoTransform(size, float(payload["mean"]), float(payload["std"])),
        input_size=(size, size),
        class_keys=list(payload["class_keys"]),
        class_names=list(payload["class_names"]),
        leaf_modules=(demo_cnn.DemoBlock,),
        source=str(path),
        extra={"test_accuracy": float(payload["test_accuracy"]), "dataset": payload["dataset"]},
    )


def random_demo_model(
    num_classes: int = 10, *, seed: int = INIT_SEED, mean: float = 0.5, std: float = 0.25
) -> ModelInfo:
    """The demo CNN with seeded random weights (tests, benchmarks): no checkpoint needed."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = demo_cnn.DemoCNN(num_classes=num_classes).eval()
    size = demo_cnn.INPUT_SIZE
    return ModelInfo(
        module=module,
        name="demo:random",
        architecture=demo_cnn.ARCHITECTURE,
        weights="none",
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


def load_model(
    spec: str,
    *,
    weights: str | None = None,
    weights_file: str | Path | None = None,
    num_classes: int | None = None,
    input_size: int | None = None,
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
    """
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
    return _load_torchvision(architecture, weights, weights_file, num_classes, input_size)


# ---------------------------------------------------------------- layers
@contextlib.contextmanager
def _quiet_tracing() -> Iterator[None]:
    """Silence torchvision's note that eval-mode graphs differ from train-mode ones: we only use eval."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="NOTE: The nodes obtained by tracing", category=UserWarning
        )
        yield


def graph_nodes(model: ModelInfo | nn.Module) -> list[str]:
    """Feature-extraction node names in execution order (eval graph), without the input node."""
    from torchvision.models.feature_extraction import get_graph_node_names

    if isinstance(model, ModelInfo) and "graph_nodes" in model.extra:
        return list(model.extra["graph_nodes"])
    module, kwargs = _module_and_tracer(model)
    if isinstance(module, torch.jit.ScriptModule):
        raise InputError(
            "TorchScript models cannot be traced for feature extraction; save the eager model's "
            "state_dict and load it with --weights-file."
        )
    with _quiet_tracing():
        _, eval_nodes = get_graph_node_names(module, tracer_kwargs=kwargs or None)
    nodes = [n for n in eval_nodes if n != "x"]
    if isinstance(model, ModelInfo):
        model.extra["graph_nodes"] = (
            nodes  # tracing is slow; the module's structure does not change
        )
    return nodes


def _module_and_tracer(model: ModelInfo | nn.Module) -> tuple[nn.Module, dict[str, Any]]:
    if isinstance(model, ModelInfo):
        return model.module, model.tracer_kwargs
    if isinstance(model, demo_cnn.DemoCNN):
        return model, tracer_kwargs((demo_cnn.DemoBlock,))
    return model, {}


def node_of(name: str, nodes: Sequence[str]) -> str | None:
    """The graph node a layer name selects: itself, or a module's last node (None if neither)."""
    if name in nodes:
        return name
    return next((n for n in reversed(nodes) if n.startswith(name + ".")), None)


def resolve_layer_names(requested: Sequence[str], nodes: Sequence[str]) -> list[str]:
    """Check requested layer names against the graph; unknown ones raise NotFound with close names.

    A module name that prefixes nodes (``layer4``) is accepted: it selects that module's last node.
    """
    known = set(nodes)
    out = []
    for name in requested:
        if name in known or any(n.startswith(name + ".") for n in nodes):
            out.append(name)
            continue
        close = difflib.get_close_matches(name, nodes, n=5, cutoff=0.5)
        hint = (
            f"closest: {', '.join(close)}"
            if close
            else f"valid names start {', '.join(nodes[:6])} …"
        )
        raise NotFound(
            f"layer {name!r} is not a node of this model ({hint}); see `unitcat ingest layers`."
        )
    selected: dict[str, str] = {}
    for name in out:
        node = node_of(name, nodes)
        if node in selected:
            raise InputError(
                f"layers {selected[node]!r} and {name!r} are the same node ({node}); name it once."
            )
        selected[node] = name
    return out


def build_extractor(
    model: ModelInfo | nn.Module, layers: Sequence[str], with_logits: bool = True
) -> nn.Module:
    """A graph module returning ``{layer: tensor}`` for ``layers`` (plus ``__logits__``) in one forward."""
    from torchvision.models.feature_extraction import create_feature_extractor

    module, kwargs = _module_and_tracer(model)
    nodes = graph_nodes(model)
    resolve_layer_names(layers, nodes)
    return_nodes = {name: name for name in layers}
    if with_logits and nodes[-1] not in return_nodes:
        return_nodes[nodes[-1]] = LOGITS
    with _quiet_tracing():
        return create_feature_extractor(
            module, return_nodes=return_nodes, tracer_kwargs=kwargs or None
        )


def logits_of(outputs: dict[str, torch.Tensor], last_node: str) -> torch.Tensor:
    """The logits from an extractor's outputs (the last node may also be a requested layer)."""
    return outputs[LOGITS] if LOGITS in outputs else outputs[last_node]


def list_layers(
    model: ModelInfo | nn.Module,
    input_size: tuple[int, int] | int | None = None,
    layers: Sequence[str] | None = None,
) -> list[LayerInfo]:
    """Nodes with output shapes from a real forward on a dummy batch (one image).

    ``layers`` restricts the answer (and the forward) to those names, in the
    order given; otherwise every node whose output is a (C, H, W) or (F,)
    tensor is listed in graph order.
    """
    from torchvision.models.feature_extraction import create_feature_extractor

    module, kwargs = _module_and_tracer(model)
    if input_size is None:
        if not isinstance(model, ModelInfo):
            raise InputError("list_layers needs input_size for a bare module.")
        input_size = model.input_size
    if isinstance(input_size, int):
        input_size = (input_size, input_size)
    nodes = graph_nodes(model)
    names = resolve_layer_names(layers, nodes) if layers is not None else nodes
    with _quiet_tracing():
        extractor = create_feature_extractor(
            module, return_nodes={n: n for n in names}, tracer_kwargs=kwargs or None
        )
    was_training = module.training
    module.eval()
    try:
        with torch.inference_mode():
            outputs = extractor(torch.zeros(1, 3, *input_size, device=_device_of(module)))
    finally:
        module.train(was_training)
    position = {n: i for i, n in enumerate(nodes)}
    infos = []
    for name in names:
        value = outputs[name]
        if (
            not isinstance(value, torch.Tensor)
            or value.ndim not in (2, 4)
            or not value.is_floating_point()
        ):
            continue
        shape = tuple(int(s) for s in value.shape[1:])
        node = node_of(name, nodes)
        infos.append(
            LayerInfo(
                name=name,
                kind="conv" if value.ndim == 4 else "fc",
                output_shape=shape,
                n_units=shape[0],
                position=position[node],
                node=node,
            )
        )
    if layers is not None and len(infos) != len(names):
        bad = sorted(set(names) - {i.name for i in infos})
        raise InputError(
            f"layers {bad} do not output a (C, H, W) or (F,) float tensor; choose other nodes."
        )
    return infos


def default_layers(
    model: ModelInfo | nn.Module, infos: Sequence[LayerInfo] | None = None
) -> list[str]:
    """Sensible layers to extract when none are named.

    The demo CNN: conv1 … fc8. ResNet-style stages (``layer1`` … ``layer4``) and
    the classifier. The output of every ReLU module after a conv or linear
    layer (AlexNet, VGG: ``features.1`` … ``classifier.5``) and the logits.
    Otherwise the network's blocks: its top-level modules that hold a conv or
    linear layer, one level down inside a multi-block ``nn.Sequential``
    (GoogLeNet ``inception3a`` … ``inception5b``, DenseNet ``features.denseblock1``
    …, MobileNet ``features.0`` …), where they output a (C, H, W) or (F,) tensor.
    """
    module, _ = _module_and_tracer(model)
    nodes = graph_nodes(model)
    if isinstance(module, demo_cnn.DemoCNN):
        return [n for n in nodes if n.startswith(("conv", "fc"))]
    stages = [f"layer{i}" for i in range(1, 5) if any(n.startswith(f"layer{i}.") for n in nodes)]
    if stages:
        return [*stages, nodes[-1]] if nodes[-1] not in stages else stages
    named = dict(module.named_modules())
    chosen = []
    previous: nn.Module | None = None
    for node in nodes:
        sub = named.get(node)
        if isinstance(sub, nn.ReLU) and isinstance(previous, nn.Conv2d | nn.Linear):
            chosen.append(node)
        if sub is not None and not isinstance(sub, nn.Dropout):
            previous = sub
    if not chosen:
        chosen = _block_layers(module, nodes, infos if infos is not None else list_layers(model))
    if all(node_of(name, nodes) != nodes[-1] for name in chosen):
        chosen.append(nodes[-1])
    return chosen


def _block_layers(module: nn.Module, nodes: Sequence[str], infos: Sequence[LayerInfo]) -> list[str]:
    """Top-level blocks (one level into multi-block Sequentials) that compute something."""

    def computes(sub: nn.Module) -> bool:
        return any(isinstance(m, nn.Conv2d | nn.Linear) for m in sub.modules())

    candidates = []
    for name, child in module.named_children():
        if isinstance(child, nn.Sequential) and len(child) > 1 and computes(child):
            candidates += [(f"{name}.{sub_name}", sub) for sub_name, sub in child.named_children()]
        else:
            candidates.append((name, child))
    shaped = {i.node for i in infos}
    position = {n: i for i, n in enumerate(nodes)}
    chosen = []
    for name, sub in candidates:
        if not computes(sub):
            continue
        node = node_of(name, nodes)
        if node is not None and node in shaped:
            chosen.append((position[node], name))
    return [name for _, name in sorted(chosen)]
