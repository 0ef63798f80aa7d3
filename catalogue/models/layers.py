"""Layer discovery: which nodes a model has, their output shapes, and the ones to extract by default."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from catalogue.errors import InputError
from catalogue.models import demo_cnn
from catalogue.models.contract import prepared
from catalogue.models.graph import graph_nodes, node_of, resolve_layer_names
from catalogue.models.info import LayerInfo, ModelInfo


def list_layers(
    model: ModelInfo,
    input_size: tuple[int, int] | int | None = None,
    layers: Sequence[str] | None = None,
) -> list[LayerInfo]:
    """Nodes with output shapes from a real forward on a dummy batch (one image).

    ``layers`` restricts the answer (and the forward) to those names, in the
    order given; otherwise every node whose output is a (C, H, W) or (F,)
    tensor is listed in graph order. ``input_size`` defaults to the model's.
    """
    if input_size is None:
        input_size = model.input_size
    if isinstance(input_size, int):
        input_size = (input_size, input_size)
    nodes = graph_nodes(model)
    names = resolve_layer_names(layers, nodes) if layers is not None else nodes
    with prepared(model) as ready, torch.inference_mode():
        outputs = ready.extractor(names, with_logits=False)(ready.dummy_input(input_size))
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


def default_layers(model: ModelInfo, infos: Sequence[LayerInfo] | None = None) -> list[str]:
    """Sensible layers to extract when none are named.

    The demo CNN: conv1 … fc8. ResNet-style stages (``layer1`` … ``layer4``) and
    the classifier. The output of every ReLU module after a conv or linear
    layer (AlexNet, VGG: ``features.1`` … ``classifier.5``) and the logits.
    Otherwise the network's blocks: its top-level modules that hold a conv or
    linear layer, one level down inside a multi-block ``nn.Sequential``
    (GoogLeNet ``inception3a`` … ``inception5b``, DenseNet ``features.denseblock1``
    …, MobileNet ``features.0`` …), where they output a (C, H, W) or (F,) tensor.
    """
    module = model.module
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
