"""The model and the images of an extraction run, loaded again (ablation, baselines).

A later computation on a run (ablating its units, extracting a random-weights
baseline over the same images) needs the very network and images of the run.
The catalogue records the model's name, architecture, weights label and
checksum, and the run's dataset name and source; from these the usual cases
load again by themselves: the demo CNN (``demo:<dataset>``), torchvision
weights from the hub cache, seeded random weights (``…@random-seed<N>``), and a
random-weights copy of any of these. Anything else (a weights file, a
TorchScript file, a renamed model) is given by the caller (on the command
line: the model options). Either way the checksum must be
the run's: other weights would answer for another network.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Engine

from catalogue.data import ImageDataset, resolve_dataset
from catalogue.errors import InputError, UnitcatError
from catalogue.models import ModelInfo, demo_cnn, load_model, random_weights
from catalogue.models.loading import _torchvision_names
from catalogue.query.models import model_identity

_RANDOM = re.compile(r"random-seed(\d+)")


def model_for_run(
    *,
    name: str,
    architecture: str,
    weights: str | None,
    params: Mapping[str, Any],
    n_classes: int,
) -> ModelInfo:
    """Load the model an extraction run used, from what the catalogue recorded about it."""
    random = _RANDOM.fullmatch(weights or "")
    base = name.split("@", 1)[0]
    size = params.get("input_size") or [None]
    input_size = int(size[0]) if size[0] else None
    hint = (
        f"cannot load model {name!r} again by itself ({architecture}, weights {weights}); "
        "pass the model of the extraction."
    )
    fix, command = (
        "pass the model of the extraction",
        ("pass the extraction's --model (and --weights / --weights-file)"),
    )
    try:
        if random and "@" in name:
            seed = int(random.group(1))
            if architecture in _torchvision_names() and base == architecture:
                return load_model(
                    architecture,
                    weights="none",
                    seed=seed,
                    num_classes=n_classes,
                    input_size=input_size,
                    name=name,
                )
            if architecture == demo_cnn.ARCHITECTURE and base == architecture:
                from catalogue.models import random_demo_model

                return _renamed(random_demo_model(n_classes, seed=seed), name)
            return random_weights(load_model(base), seed, name=name)
        if weights and weights.startswith("demo:"):
            return _renamed(load_model(weights), name)
        if architecture in _torchvision_names() and weights and not weights.startswith("file:"):
            return _renamed(load_model(architecture, weights=weights), name)
    except UnitcatError as exc:
        raise InputError(f"{hint} ({exc})", fix=fix, command=command) from exc
    raise InputError(hint, fix=fix, command=command)


def recorded_model(
    engine: Engine, model_id: int, params: Mapping[str, Any], n_classes: int
) -> ModelInfo:
    """`model_for_run` of the catalogue's record of model `model_id` (its name and
    architecture) and of the run's parameters (its weights)."""
    identity = model_identity(engine, model_id)
    return model_for_run(
        name=identity.name,
        architecture=identity.architecture,
        weights=params.get("weights"),
        params=params,
        n_classes=n_classes,
    )


def _renamed(model: ModelInfo, name: str) -> ModelInfo:
    from catalogue.models import renamed

    return renamed(model, name)


def check_same_weights(model: ModelInfo, params: Mapping[str, Any], run_id: int) -> None:
    """Refuse a model whose weights differ from those the run extracted with."""
    expected = params.get("checksum")
    if expected and model.checksum != expected:
        raise InputError(
            f"model {model.name} has other weights than extraction run {run_id} used "
            f"(checksum {model.checksum[:12]} ≠ {str(expected)[:12]}); pass the model and "
            "weights of that extraction."
        )


def dataset_for_run(
    params: Mapping[str, Any],
    model: ModelInfo,
    *,
    class_keys: list[str],
    class_names: list[str],
    spec: str | None = None,
) -> ImageDataset:
    """The run's images through ``model``'s transform: the dataset named by ``spec``, or by the
    run's dataset name (digits:test, fashion-mnist:test …), or its source folder."""
    candidates = [spec] if spec else [params.get("dataset"), params.get("dataset_source")]
    errors = []
    for candidate in candidates:
        if not candidate:
            continue
        try:
            dataset = resolve_dataset(
                str(candidate),
                transform=model.transform,
                class_keys=class_keys,
                class_names=class_names,
            )
        except UnitcatError as exc:
            errors.append(str(exc))
            continue
        if list(dataset.class_keys) != list(class_keys):
            errors.append(f"{candidate} has other classes than the run")
            continue
        return dataset
    detail = f" ({'; '.join(errors)})" if errors else ""
    raise InputError(
        f"cannot find the images of the extraction run (dataset {params.get('dataset')!r})"
        f"{detail}; give them as the dataset.",
        fix="give them as the dataset",
        command="pass them with --dataset",
    )
