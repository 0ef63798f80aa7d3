"""Models: loading, layer discovery, and the one contract by which computations borrow a network.

The contract (extraction, dissection, AM — and ablation and the cluster
path, which are built on it): a computation takes a `ModelInfo` (from
`load_model`, or `ModelInfo.from_module` for a bare ``nn.Module``) and uses
the module only inside `prepared`::

    from catalogue.models import ModelInfo, prepared

    def my_computation(model: ModelInfo, layers: list[str], device: str) -> ...:
        with prepared(model, device=device, channels_last=False) as ready:
            extractor = ready.extractor(layers, with_logits=False)
            ...

`prepared` moves the module to the device (and memory format), switches it to
eval mode, optionally freezes it, and on exit — exceptions included — puts
the caller's module back exactly as it was given: devices, memory formats,
train/eval flags of every submodule, ``requires_grad`` flags, and hooks.
``ready.extractor`` is the only feature-extractor builder (torchvision's
``create_feature_extractor`` on the requested nodes; `build_extractor`).

Modules: `info` (ModelInfo, LayerInfo, checksums, transforms), `loading`
(offline loading of torchvision models, TorchScript files, the demo CNN),
`graph` (node names, the extractor builder), `layers` (output shapes, default
layers), `state` (capture and restore a module's state), `contract` (`prepared`,
the context manager), `recipe` (how a loaded model is loaded again on a
cluster worker).
"""

from catalogue.models.contract import PreparedModel, prepared
from catalogue.models.graph import (
    LOGITS,
    build_extractor,
    graph_nodes,
    logits_of,
    node_of,
    resolve_layer_names,
)
from catalogue.models.info import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ImageNetTransform,
    LayerInfo,
    ModelInfo,
    RGBFirst,
    device_of,
    require_model_info,
    tracer_kwargs,
    weights_checksum,
)
from catalogue.models.layers import default_layers, list_layers
from catalogue.models.loading import (
    INIT_SEED,
    RANDOM_WEIGHTS,
    hub_weights_path,
    hub_weights_path_in,
    load_demo_checkpoint,
    load_model,
    random_demo_model,
    random_label,
    random_name,
    random_weights,
    renamed,
)
from catalogue.models.recipe import ModelRecipe, records_recipe
from catalogue.models.split import GraphSplit, repeat_batch, split_at
from catalogue.models.state import ModelState, preserved

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "INIT_SEED",
    "LOGITS",
    "RANDOM_WEIGHTS",
    "GraphSplit",
    "ImageNetTransform",
    "LayerInfo",
    "ModelInfo",
    "ModelRecipe",
    "ModelState",
    "PreparedModel",
    "RGBFirst",
    "build_extractor",
    "default_layers",
    "device_of",
    "graph_nodes",
    "hub_weights_path",
    "hub_weights_path_in",
    "list_layers",
    "load_demo_checkpoint",
    "load_model",
    "logits_of",
    "node_of",
    "prepared",
    "preserved",
    "random_demo_model",
    "random_label",
    "random_name",
    "random_weights",
    "records_recipe",
    "renamed",
    "repeat_batch",
    "require_model_info",
    "resolve_layer_names",
    "split_at",
    "tracer_kwargs",
    "weights_checksum",
]
