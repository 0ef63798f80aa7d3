"""A model sent to Ray workers by its recipe, not by pickling the network.

`ModelHandle.of(model)` keeps what the catalogue knows about a `ModelInfo`
(name, transform, leaf modules, checksum …) and how to load its module again
(`catalogue.models.recipe`): ``load_model("alexnet", weights="DEFAULT")`` is
a few bytes where AlexNet's weights are 233 MB per worker. A worker loads the
module once per process (`ModelHandle.load` keeps the last one) and checks
the weights' checksum, so a node with another weights file fails loudly
instead of cataloguing another network under this one's name.

A model without a recipe (a bare module wrapped with `ModelInfo.from_module`),
or whose weights are not the ones its recipe loads (changed after loading, or a
copy with another module), travels pickled through Ray's object store, once
per call for all workers. Work that runs here (``cluster=None``) takes the
caller's model as it is (`LocalModel`; `handle_for` chooses).
"""

from __future__ import annotations

import dataclasses
import socket
from dataclasses import dataclass
from typing import Any

from torch import nn

from catalogue.cluster.session import Cluster
from catalogue.errors import ConfigError
from catalogue.models import ModelInfo, ModelRecipe, weights_checksum

#: the last module loaded in this worker process, by its weights' checksum
_modules: dict[str, nn.Module] = {}


@dataclass(frozen=True)
class ModelHandle:
    """Everything of a `ModelInfo` but its module, plus the recipe (or object ref) of the module."""

    metadata: dict[str, Any]
    checksum: str
    recipe: ModelRecipe | None
    module_ref: Any = None

    @classmethod
    def of(cls, model: ModelInfo) -> ModelHandle:
        """A handle for ``model``; call in the driver, connected to Ray."""
        metadata = {
            f.name: getattr(model, f.name)
            for f in dataclasses.fields(model)
            if f.name not in ("module", "recipe")
        }
        current = weights_checksum(model.module)
        if model.recipe is not None and current == model.checksum == model.recipe.checksum:
            return cls(metadata, current, model.recipe)
        import ray

        return cls(metadata, current, None, ray.put(model.module))

    @property
    def name(self) -> str:
        return str(self.metadata["name"])

    def load(self) -> ModelInfo:
        """The model, in this worker process (its module loaded once per process and kept).

        Only the module is kept, by checksum: two handles of the same weights
        with other metadata (a transform for another input size) each get their own.
        """
        module = _modules.get(self.checksum)
        if module is None:
            module = self._load_module()
            _modules.clear()
            _modules[self.checksum] = module
        return ModelInfo(module=module, recipe=self.recipe, **self.metadata)

    def _load_module(self) -> nn.Module:
        if self.recipe is not None:
            module = self.recipe.load().module
        else:
            import ray

            module = ray.get(self.module_ref)
        found = weights_checksum(module)
        if found != self.checksum:
            raise ConfigError(
                f"model {self.name} loads with other weights on {socket.gethostname()} "
                f"(checksum {found[:12]}, not {self.checksum[:12]}); give every node the same "
                "weights file (a shared file system or the same torch hub cache)."
            )
        return module


@dataclass(frozen=True)
class LocalModel:
    """The caller's model itself, for work that runs in this process: `load` returns it."""

    model: ModelInfo

    def load(self) -> ModelInfo:
        return self.model


def handle_for(model: ModelInfo, cluster: Cluster | None) -> ModelHandle | LocalModel:
    """How work reaches ``model``: by its recipe on ``cluster``'s workers, as it is here."""
    return ModelHandle.of(model) if cluster is not None else LocalModel(model)
