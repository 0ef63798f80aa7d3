"""How a loaded model can be loaded again elsewhere: the loader and its arguments.

Why: the cluster path (`catalogue.cluster`) runs a model on other processes
and machines. Pickling a network ships hundreds of megabytes per worker; a
recipe — ``load_model("alexnet", weights="DEFAULT")``, or the demo CNN from
its checkpoint file — ships a few bytes, and the worker loads the same
weights from the same file (a shared file system or the same torch hub
cache). The weights' checksum, recorded on the `ModelInfo`, tells the worker
whether it really got the same network.

Every public loader in `catalogue.models.loading` is decorated with
`records_recipe`, so a new keyword argument of a loader (a seed, a name) is
part of the recipe without anyone remembering to add it.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec

if TYPE_CHECKING:
    from catalogue.models.info import ModelInfo

P = ParamSpec("P")


@dataclass(frozen=True)
class ModelRecipe:
    """``loader`` (``"module:function"``) called with ``arguments`` gives the model again.

    ``checksum`` is the weights' checksum the call gave: a `ModelInfo` copied
    with another module (``dataclasses.replace``) keeps the field, and the
    checksum tells that the recipe no longer makes it.
    """

    loader: str
    arguments: tuple[tuple[str, Any], ...]
    checksum: str

    def load(self) -> ModelInfo:
        module_name, _, function_name = self.loader.partition(":")
        function = getattr(importlib.import_module(module_name), function_name)
        return function(**dict(self.arguments))


def _portable(value: Any) -> Any:
    """Paths that name an existing file or folder become absolute (a worker's cwd differs)."""
    if isinstance(value, str | os.PathLike):
        path = Path(value).expanduser()
        if not path.is_absolute() and path.exists():
            return str(path.resolve())
        return str(value) if isinstance(value, os.PathLike) else value
    return value


def recipe_of(
    function: Callable[..., ModelInfo], checksum: str, *args: Any, **kwargs: Any
) -> ModelRecipe:
    """The recipe of the call ``function(*args, **kwargs)``, whose weights have ``checksum``.

    For a model made by other means than that call (a random-weights copy of a loaded
    model, `catalogue.models.loading.random_weights`) that the call makes again.
    """
    function = inspect.unwrap(function)
    bound = inspect.signature(function).bind(*args, **kwargs)
    bound.apply_defaults()
    arguments = tuple((name, _portable(value)) for name, value in bound.arguments.items())
    return ModelRecipe(f"{function.__module__}:{function.__qualname__}", arguments, checksum)


def records_recipe(function: Callable[P, ModelInfo]) -> Callable[P, ModelInfo]:
    """Decorate a loader so that the `ModelInfo` it returns carries the recipe of the call."""

    @functools.wraps(function)
    def load(*args: P.args, **kwargs: P.kwargs) -> ModelInfo:
        info = function(*args, **kwargs)
        info.recipe = recipe_of(function, info.checksum, *args, **kwargs)
        return info

    return load
