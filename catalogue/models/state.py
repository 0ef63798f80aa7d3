"""A module's state as its owner gave it, captured and put back exactly.

Why: a computation that borrows the caller's network (extraction, dissection,
AM, later ablation) has to move it to a device, lay its weights out
channels-last, switch it to eval mode, maybe freeze it — and torchvision's
own tracing (`get_graph_node_names`, `create_feature_extractor`) calls
``model.train(mode)`` on the whole tree, which erases per-submodule flags such
as a dropout left in eval inside a training model. `ModelState` records what
those steps change and `restore` undoes all of it, so the caller's model comes
back as it was, whatever happened in between (exceptions included):

- every parameter and buffer: the tensor itself (so its device, memory
  format / strides and storage are the original ones), the parameter object
  in its module, its ``requires_grad`` flag and its ``.grad``;
- every submodule's ``training`` flag;
- every submodule's hook dictionaries (hooks added in between are dropped,
  hooks removed in between come back).

Restoring keeps the original tensors referenced while the computation runs:
for a model moved to another device that is one extra copy of the weights
(on the original device), which is what the caller had anyway. Values are not
copied back: computations under this contract read the weights, they never
write them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

HOOK_DICTS = (
    "_forward_hooks",
    "_forward_hooks_with_kwargs",
    "_forward_hooks_always_called",
    "_forward_pre_hooks",
    "_forward_pre_hooks_with_kwargs",
    "_backward_hooks",
    "_backward_pre_hooks",
)


@dataclass(frozen=True)
class _ParameterState:
    module: nn.Module
    name: str
    parameter: nn.Parameter
    data: torch.Tensor
    requires_grad: bool
    grad: torch.Tensor | None
    grad_data: torch.Tensor | None


@dataclass(frozen=True)
class _BufferState:
    module: nn.Module
    name: str
    buffer: torch.Tensor | None


@dataclass(frozen=True)
class ModelState:
    """What `restore` puts back (see the module docstring)."""

    parameters: tuple[_ParameterState, ...]
    buffers: tuple[_BufferState, ...]
    training: tuple[tuple[nn.Module, bool], ...]
    hooks: tuple[tuple[nn.Module, str, dict], ...]

    @classmethod
    def capture(cls, module: nn.Module) -> ModelState:
        modules = list(module.modules())
        parameters = []
        buffers = []
        for m in modules:
            for name, p in m._parameters.items():
                if p is None:
                    continue
                grad = p.grad
                parameters.append(
                    _ParameterState(
                        m,
                        name,
                        p,
                        p.data,
                        p.requires_grad,
                        grad,
                        grad.data if grad is not None else None,
                    )
                )
            buffers += [_BufferState(m, name, b) for name, b in m._buffers.items()]
        hooks = [
            (m, attr, dict(getattr(m, attr)))
            for m in modules
            for attr in HOOK_DICTS
            if getattr(m, attr, None) is not None
        ]
        return cls(
            tuple(parameters),
            tuple(buffers),
            tuple((m, m.training) for m in modules),
            tuple(hooks),
        )

    def restore(self) -> None:
        for state in self.parameters:
            if _entry(state.module._parameters, state.name) is not state.parameter:
                state.module._parameters[state.name] = state.parameter
            p = state.parameter
            p.data = state.data
            if p.requires_grad != state.requires_grad:
                p.requires_grad_(state.requires_grad)
            if state.grad is not None and state.grad_data is not None:
                state.grad.data = state.grad_data
            if p.grad is not state.grad:
                p.grad = state.grad
        for state in self.buffers:
            if _entry(state.module._buffers, state.name) is not state.buffer:
                state.module._buffers[state.name] = state.buffer
        for m, flag in self.training:
            m.training = flag
        for m, attr, saved in self.hooks:
            current = getattr(m, attr)
            if current != saved:
                current.clear()
                current.update(saved)


def _entry(table: Any, name: str) -> Any:
    """``table[name]`` or None (TorchScript modules hold their tensors in a dict-like wrapper)."""
    return table[name] if name in table else None  # noqa: SIM401 - the wrapper has no .get


@contextlib.contextmanager
def preserved(module: nn.Module) -> Iterator[nn.Module]:
    """Run a block on ``module`` and put its state back afterwards, exceptions included."""
    state = ModelState.capture(module)
    try:
        yield module
    finally:
        state.restore()
