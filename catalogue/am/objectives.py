"""Objectives: what AM maximises — one unit of a layer per image.

For an fc layer (N × U) image i's objective is unit ``cols[i]``'s activation
(lucent's ``neuron`` at a flat layer); for a conv layer (N × U × H × W) it
is channel ``cols[i]`` reduced over space, by its ``mean`` (lucent's
``channel`` objective) or its ``max``. Each image of a batch may target a
different unit, so several units share one forward pass; the loss is minus
the sum over images, and since the network runs in eval mode and Adam is
element-wise, each image's optimisation is independent of the others.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from catalogue.errors import InputError

REDUCTIONS = ("mean", "max")


@dataclass(frozen=True)
class UnitObjective:
    """Per image: the activation of its unit in ``layer`` (conv maps reduced by ``reduce``)."""

    layer: str
    kind: str
    reduce: str = "mean"

    def __call__(self, outputs: dict[str, torch.Tensor], cols: torch.Tensor) -> torch.Tensor:
        """Row i's activation of unit ``cols[i]``: a tensor of one value per image."""
        out = outputs[self.layer]
        rows = torch.arange(out.shape[0], device=out.device)
        picked = out[rows, cols]
        if self.kind == "fc":
            return picked
        flat = picked.flatten(1)
        return flat.mean(dim=1) if self.reduce == "mean" else flat.amax(dim=1)

    @property
    def description(self) -> str:
        """As recorded in ``am_panel.params["objective"]``."""
        return f"channel {self.reduce}" if self.kind == "conv" else "unit"


def layer_units(
    extractor: torch.nn.Module,
    layer_name: str,
    channels: int,
    image_size: int,
    norm: Callable[[torch.Tensor], torch.Tensor],
    device: torch.device,
) -> tuple[int, str]:
    """Number of units and kind (fc: N × U, conv: N × U × H × W) of the layer, from a grey image."""
    probe = torch.full((1, channels, image_size, image_size), 0.5, device=device)
    try:
        with torch.no_grad():
            out = extractor(norm(probe))[layer_name]
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise InputError(
            f"the model does not accept {channels} × {image_size} × {image_size} images ({first}); "
            "check channels and image_size."
        ) from None
    if out.ndim == 2:
        return out.shape[1], "fc"
    if out.ndim == 4:
        return out.shape[1], "conv"
    raise InputError(
        f"layer {layer_name!r} outputs shape {tuple(out.shape)}; AM needs N × units or N × units × H × W."
    )
