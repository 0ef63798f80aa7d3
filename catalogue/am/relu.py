"""Lucid's redirected ReLU gradient: a unit that is silent on the grey start image can still take off.

Olah et al. (2017) replace, for the first steps of the optimisation, the
gradient of every ReLU: where no gradient gets through for an image, the
gradient that would raise the ReLU's input passes anyway. `RedirectedReLUs`
does this for every ReLU call in its context without modifying the model.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.overrides import TorchFunctionMode


class _RedirectedReLU(torch.autograd.Function):
    """ReLU whose backward, for an image where no gradient gets through, passes what raises the input.

    Lucid's ``redirected_relu_grad`` (Olah et al. 2017): ``grad`` is the
    gradient of the loss (the negated objective) with respect to the output; an
    image whose ordinary ReLU gradient is zero everywhere gets ``grad`` except
    where the input is negative and ``grad`` would push it lower.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        negative = x < 0
        relu_grad = grad.masked_fill(negative, 0.0)
        if x.ndim < 2:
            return relu_grad
        redirected = grad.masked_fill(negative & (grad > 0), 0.0)
        alive = relu_grad.flatten(1).abs().amax(dim=1) > 0
        return torch.where(alive.view(-1, *([1] * (x.ndim - 1))), relu_grad, redirected)


_RELU_FUNCTIONS = frozenset(
    {torch.nn.functional.relu, torch.relu, torch.relu_, torch.Tensor.relu, torch.Tensor.relu_}
)


class RedirectedReLUs(TorchFunctionMode):
    """Within this context every ReLU call (``nn.ReLU``, ``F.relu``, ``torch.relu``, in-place or
    not, also inside FX leaf modules) computes a `_RedirectedReLU`, out of place.

    Forward values are unchanged; only gradients differ. The model is not modified.
    """

    def __torch_function__(
        self,
        func: Any,
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        if func in _RELU_FUNCTIONS:
            return _RedirectedReLU.apply(args[0] if args else kwargs["input"])
        return func(*args, **(kwargs or {}))
