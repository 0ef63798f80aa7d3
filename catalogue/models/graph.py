"""Layer names and the one feature-extractor builder: torchvision graph nodes of a model.

Layers are feature-extraction graph nodes (torchvision's
``get_graph_node_names``; e.g. ``features.10`` in AlexNet, ``layer4`` in a
ResNet, ``conv5`` in the demo CNN). Activations are read with
``create_feature_extractor`` for only the requested nodes, not with hooks on
every module. A module name that is not itself a node (``layer4``) selects the
module's last node, as in torchvision.

`build_extractor` is the only place that builds an extractor; computations
get one through `catalogue.models.prepared` (``ready.extractor(layers)``),
which also puts the model in the state the extractor needs and back.
Tracing switches the whole module tree between train and eval mode, so it
runs inside `catalogue.models.state.preserved`.
"""

from __future__ import annotations

import contextlib
import difflib
import warnings
from collections.abc import Iterator, Sequence

import torch
from torch import nn

from catalogue.errors import InputError, NotFound
from catalogue.models.info import ModelInfo
from catalogue.models.state import preserved

LOGITS = "__logits__"


@contextlib.contextmanager
def _quiet_tracing() -> Iterator[None]:
    """Silence torchvision's note that eval-mode graphs differ from train-mode ones: we only use eval."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="NOTE: The nodes obtained by tracing", category=UserWarning
        )
        yield


def graph_nodes(model: ModelInfo) -> list[str]:
    """Feature-extraction node names in execution order (eval graph), without the input node."""
    from torchvision.models.feature_extraction import get_graph_node_names

    if "graph_nodes" in model.extra:
        return list(model.extra["graph_nodes"])
    module = model.module
    if isinstance(module, torch.jit.ScriptModule):
        raise InputError(
            "TorchScript models cannot be traced for feature extraction; save the eager model's "
            "state_dict and load it with --weights-file."
        )
    with _quiet_tracing(), preserved(module):
        _, eval_nodes = get_graph_node_names(module, tracer_kwargs=model.tracer_kwargs or None)
    nodes = [n for n in eval_nodes if n != "x"]
    model.extra["graph_nodes"] = nodes  # tracing is slow; the module's structure does not change
    return list(nodes)


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


def build_extractor(model: ModelInfo, layers: Sequence[str], with_logits: bool = True) -> nn.Module:
    """A graph module returning ``{layer: tensor}`` for ``layers`` (plus ``__logits__``) in one forward.

    The extractor shares the model's submodules and parameters. Use it inside
    `catalogue.models.prepared`, which sets the model up for it and puts it back.
    """
    from torchvision.models.feature_extraction import create_feature_extractor

    nodes = graph_nodes(model)
    resolve_layer_names(layers, nodes)
    return_nodes = {name: name for name in layers}
    if with_logits and nodes[-1] not in return_nodes:
        return_nodes[nodes[-1]] = LOGITS
    with _quiet_tracing(), preserved(model.module):
        return create_feature_extractor(
            model.module, return_nodes=return_nodes, tracer_kwargs=model.tracer_kwargs or None
        )


def logits_of(outputs: dict[str, torch.Tensor], last_node: str) -> torch.Tensor:
    """The logits from an extractor's outputs (the last node may also be a requested layer)."""
    return outputs[LOGITS] if LOGITS in outputs else outputs[last_node]
