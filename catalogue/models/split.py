"""The rest of a network from one layer on: a traced graph split at a node.

Why: ablating a unit changes only what comes after its layer. Running the
whole network once per unit repeats the layers before it for nothing; running
only the part after it, on the layer's output computed once (or read from the
activation store), is what makes ablation of every unit affordable (Bau et al.
2020 ablate units of one layer at a time; so does `catalogue.ablation`).

How: the model is traced once in eval mode with torchvision's feature-extraction
tracer (`NodePathTracer`, the tracer behind ``create_feature_extractor`` and
`catalogue.models.build_extractor`, with the model's leaf modules), so node
names are the same feature-extraction names everything else uses. The *rest*
of the network after node L is every node that depends on L (its
descendants), up to the output. It may also read values that do not depend on
L: the skip connection of a residual block that L sits in, a parallel branch
of an Inception block. Those are the split's ``inputs``: they are computed
before or beside L, are not changed by ablating L, and the one extractor
builder returns them together with L (``ready.extractor([L, *inputs])``). The
``tail`` is a ``torch.fx.GraphModule`` over the model's own submodules (shared
parameters, no copy) taking ``(value of L, *inputs)`` and returning the logits.

Limits (each raises InputError naming the layer):
- the model must be traceable (TorchScript and data-dependent control flow are not);
- the output must depend on L (not an auxiliary branch) and must be one tensor;
- the rest may not read the network's input image again;
- values the rest reads must be tensors with the batch first (they are
  repeated along the batch for many ablations at once); a graph that computes a
  batch size before L and uses it after L cannot be batched this way;
- a layer inside a residual block is fine: its skip tensor is an input. But the
  ablated value is L's output only: a module called twice (ResNet's shared
  ``relu``) is two nodes, and ablating one of them leaves the other, unlike a
  forward hook on the module, which would zero both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
from torch import fx, nn

from catalogue.errors import InputError
from catalogue.models.graph import _quiet_tracing, graph_nodes, node_of, resolve_layer_names
from catalogue.models.info import ModelInfo
from catalogue.models.state import preserved


@dataclass(frozen=True)
class GraphSplit:
    """A network split after one node (see the module docstring).

    ``tail(value, *input_values)`` returns the logits, where ``value`` is node
    ``node``'s output and ``input_values`` the outputs of the nodes ``inputs``.
    """

    layer: str
    node: str
    inputs: tuple[str, ...]
    tail: nn.Module

    @property
    def extract(self) -> list[str]:
        """The nodes a head extractor must return: the layer, then the tail's other inputs."""
        return [self.layer, *self.inputs]


def _tracer_kwargs(model: ModelInfo) -> dict:
    """torchvision's defaults (autowrapped ``math``/``torchvision.ops``, leaf ops) plus the model's."""
    from torchvision.models import feature_extraction

    kwargs = dict(model.tracer_kwargs)
    if "leaf_modules" in kwargs:
        kwargs["leaf_modules"] = list(kwargs["leaf_modules"])
    return feature_extraction._set_default_tracer_kwargs(kwargs)


def _placeholder_name(node: str) -> str:
    return "in_" + re.sub(r"\W", "_", node)


def split_at(model: ModelInfo, layer: str) -> GraphSplit:
    """Split ``model`` after ``layer`` (a feature-extraction node or a module name).

    Use inside `catalogue.models.prepared` (``ready.split(layer)``): the tail
    references the module's submodules, so build it after the model has moved.
    """
    from torchvision.models.feature_extraction import NodePathTracer

    nodes = graph_nodes(model)
    resolve_layer_names([layer], nodes)
    node_name = node_of(layer, nodes)
    assert node_name is not None  # resolve_layer_names checked it
    module = model.module
    with _quiet_tracing(), preserved(module):
        module.eval()
        tracer = NodePathTracer(**_tracer_kwargs(model))
        graph = tracer.trace(module)
    qualname = tracer.node_to_qualname
    by_name = {name: node for node, name in qualname.items()}
    target = by_name.get(node_name)
    if target is None:
        raise InputError(f"layer {layer!r} ({node_name}) is not a node of the traced graph.")

    order = list(graph.nodes)
    output = next(n for n in order if n.op == "output")
    result = output.args[0]
    if not isinstance(result, fx.Node):
        raise InputError(
            f"{model.name} returns {type(result).__name__}, not one tensor of logits; "
            "ablation needs a model whose output is the logits."
        )
    descendants: set[fx.Node] = set()
    for n in order[order.index(target) + 1 :]:
        if n.op != "output" and any(a is target or a in descendants for a in n.all_input_nodes):
            descendants.add(n)
    if result is not target and result not in descendants:
        raise InputError(
            f"the output of {model.name} does not depend on layer {layer!r}; "
            "ablating it cannot change the classification."
        )

    constant: set[fx.Node] = set()
    inputs: list[fx.Node] = []
    for n in order:
        if n not in descendants:
            continue
        for a in n.all_input_nodes:
            if a is target or a in descendants or a in constant or a in inputs:
                continue
            if a.op == "placeholder":
                raise InputError(
                    f"the network reads its input again after layer {layer!r}; "
                    "ablation cannot run the rest of it from that layer alone."
                )
            if _is_constant(a):
                constant.update(_with_ancestors(a))
            elif a in qualname and node_of(qualname[a], nodes) == qualname[a]:
                inputs.append(a)
            else:
                raise InputError(
                    f"the rest of the network after {layer!r} reads {a.name}, which the feature "
                    "extractor cannot return; choose another layer."
                )

    tail_graph = fx.Graph()
    env: dict[fx.Node, fx.Node] = {target: tail_graph.placeholder("ablated")}
    for a in inputs:
        env[a] = tail_graph.placeholder(_placeholder_name(qualname[a]))
    for n in order:
        if n in constant or n in descendants:
            env[n] = tail_graph.node_copy(n, lambda a: env[a])
    tail_graph.output(env[result])
    tail = fx.GraphModule(tracer.root, tail_graph, f"{type(module).__name__}After")
    return GraphSplit(
        layer=layer, node=node_name, inputs=tuple(qualname[a] for a in inputs), tail=tail
    )


def _is_constant(node: fx.Node) -> bool:
    """A node computed from no input at all (an attribute, a created tensor)."""
    if node.op == "get_attr":
        return True
    if node.op == "placeholder":
        return False
    return all(_is_constant(a) for a in node.all_input_nodes)


def _with_ancestors(node: fx.Node) -> set[fx.Node]:
    out = {node}
    for a in node.all_input_nodes:
        out |= _with_ancestors(a)
    return out


def repeat_batch(value: torch.Tensor | object, times: int) -> torch.Tensor | object:
    """``times`` copies of a batch, one after another along the batch (non-tensors as they are)."""
    if not isinstance(value, torch.Tensor) or value.ndim == 0:
        return value
    return value.unsqueeze(0).expand(times, *value.shape).reshape(-1, *value.shape[1:])
