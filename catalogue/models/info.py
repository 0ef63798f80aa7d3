"""What the catalogue knows about a loaded classifier: `ModelInfo`, `LayerInfo`, checksums, input transforms.

`ModelInfo` is the one object every computation on a network takes
(extraction, dissection, AM; see `catalogue.models`). A model loaded by
`catalogue.models.load_model` comes with its name, weights label, checksum
and preprocessing; a bare ``nn.Module`` becomes one with
`ModelInfo.from_module`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from PIL import Image
from torch import nn

from catalogue.errors import InputError
from catalogue.models import demo_cnn
from catalogue.models.recipe import ModelRecipe
from catalogue.models.state import preserved

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


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
    #: how to load this model again on another process (`catalogue.models.recipe`); None for a bare module
    recipe: ModelRecipe | None = field(default=None, compare=False)

    @classmethod
    def from_module(
        cls,
        module: nn.Module,
        *,
        name: str | None = None,
        transform: Callable[[Image.Image], torch.Tensor] | None = None,
        input_size: int | tuple[int, int] = 224,
        leaf_modules: Sequence[type[nn.Module]] = (),
        weights: str = "module",
    ) -> ModelInfo:
        """Wrap a bare module (your own network, a test's toy net) so that every computation takes it.

        ``transform`` defaults to `ImageNetTransform` at ``input_size``; the
        demo CNN's leaf blocks are filled in when ``leaf_modules`` is empty.
        """
        size = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
        if not leaf_modules and isinstance(module, demo_cnn.DemoCNN):
            leaf_modules = (demo_cnn.DemoBlock,)
        return cls(
            module=module,
            name=name or type(module).__name__,
            architecture=type(module).__name__,
            weights=weights,
            checksum=weights_checksum(module),
            transform=transform if transform is not None else ImageNetTransform(int(size[0])),
            input_size=(int(size[0]), int(size[1])),
            leaf_modules=tuple(leaf_modules),
        )

    @property
    def tracer_kwargs(self) -> dict[str, Any]:
        return tracer_kwargs(self.leaf_modules)

    @property
    def n_outputs(self) -> int:
        """Width of the model's output (number of classes), from one dummy forward."""
        if "n_outputs" not in self.extra:
            # `prepared(self)` with its defaults, which this module cannot import (it is
            # built on ModelInfo): eval mode for one dummy forward, the module put back after
            with preserved(self.module) as module, torch.inference_mode():
                module.eval()
                height, width = self.input_size
                out = module(torch.zeros(1, 3, height, width, device=device_of(module)))
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


def require_model_info(model: object) -> ModelInfo:
    """``model`` itself if it is a `ModelInfo`; a TypeError saying how to wrap anything else."""
    if not isinstance(model, ModelInfo):
        raise TypeError(
            f"expected a catalogue.models.ModelInfo, got {type(model).__name__}; "
            "wrap a bare module with ModelInfo.from_module(module)."
        )
    return model


def tracer_kwargs(leaf_modules: Sequence[type[nn.Module]]) -> dict[str, Any]:
    return {"leaf_modules": list(leaf_modules)} if leaf_modules else {}


def device_of(module: nn.Module) -> torch.device:
    """The device of the module's first parameter (the CPU for a module without any)."""
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
