"""The model contract, `prepared`: how every computation on a network borrows it.

A computation (extraction, dissection, AM; ablation and the cluster path
later) takes a `ModelInfo` and borrows its module like this::

    with prepared(model, device="cuda", channels_last=True) as ready:
        extractor = ready.extractor(["conv5"])      # the one extractor builder
        outputs = extractor(images.to(ready.device))

Inside the block the module is on ``device``, in eval mode (unless
``eval=False``), channels-last if asked, with ``requires_grad`` set if asked.
On leaving — normally or by an exception — the caller's module is exactly as
it was given: every parameter and buffer on its device with its memory
format, every submodule's train/eval flag, ``requires_grad`` flags and
gradients, and no hooks added (`catalogue.models.state.ModelState`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from catalogue.models.graph import build_extractor
from catalogue.models.info import ModelInfo, device_of, require_model_info
from catalogue.models.split import GraphSplit, split_at
from catalogue.models.state import ModelState


@dataclass(frozen=True)
class PreparedModel:
    """A model set up for one computation (see `prepared`)."""

    info: ModelInfo
    device: torch.device
    channels_last: bool

    @property
    def module(self) -> nn.Module:
        return self.info.module

    def extractor(self, layers: Sequence[str], *, with_logits: bool = True) -> nn.Module:
        """`catalogue.models.build_extractor` on the prepared module (in the module's mode)."""
        return build_extractor(self.info, layers, with_logits=with_logits)

    def split(self, layer: str) -> GraphSplit:
        """The rest of the network after ``layer`` (`catalogue.models.split`), on the prepared
        module; its head is ``self.extractor(split.extract)``."""
        return split_at(self.info, layer)

    def dummy_input(
        self, size: tuple[int, int] | None = None, batch: int = 1, channels: int = 3
    ) -> torch.Tensor:
        """Zeros of the model's input shape on its device (shape probes)."""
        height, width = size if size is not None else self.info.input_size
        memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
        return torch.zeros(batch, channels, height, width, device=self.device).contiguous(
            memory_format=memory_format
        )


@contextlib.contextmanager
def prepared(
    model: ModelInfo,
    *,
    device: str | torch.device | None = None,
    channels_last: bool = False,
    eval: bool = True,
    requires_grad: bool | None = None,
) -> Iterator[PreparedModel]:
    """Hand out ``model`` ready for a computation; put the caller's module back exactly on exit.

    Args:
        model: the loaded model.
        device: where to run (a torch device; None leaves every tensor where it is).
        channels_last: lay 4-d weights out channels-last (the fast layout for
            convolutions on GPUs and for oneDNN on CPUs).
        eval: switch every submodule to eval mode.
        requires_grad: set every parameter's flag (None leaves them).
    """
    module = require_model_info(model).module
    state = ModelState.capture(module)
    try:
        target = torch.device(device) if device is not None else None
        if channels_last:
            module.to(device=target, memory_format=torch.channels_last)
        elif target is not None:
            module.to(target)
        if eval:
            module.eval()
        if requires_grad is not None:
            for p in module.parameters():
                p.requires_grad_(requires_grad)
        yield PreparedModel(model, target or device_of(module), channels_last)
    finally:
        state.restore()
