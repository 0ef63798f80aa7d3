"""What an extraction will do, checked before anything runs, is written or recorded.

`plan_extraction` validates a request (classes, layer names, reduction, kept
maps, limit) and derives the run's parameters: the run's identity, compared
when a file is resumed. `check_options` and `check_output` refuse the options
and output paths that cannot work, and `check_images` reads every image's
header when an unreadable image must stop the run (``strict``), so that all of
these fail before a dataset, model or run row exists.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from catalogue.data import ImageDataset
from catalogue.errors import ConfigError, InputError
from catalogue.models import LayerInfo, ModelInfo, default_layers, list_layers
from catalogue.store import ActivationStore, LayerSpec

REDUCTIONS = ("max", "mean")
COMPARED_PARAMS = (
    "model",
    "architecture",
    "weights",
    "checksum",
    "dataset",
    "dataset_source",
    "n_items",
    "layers",
    "reduce",
    "keep_maps",
    "autocast",
    "input_size",
)


@dataclass
class ExtractionSummary:
    """What one extraction run produced (the run row's statistics are filled from this)."""

    path: Path
    n_images: int
    n_skipped: int
    skipped: list[tuple[str, str]]
    accuracy: float
    images_per_second: float
    seconds: float
    layers: list[LayerInfo]
    resumed_from: int
    params: dict[str, Any]
    runtime: dict[str, Any] = field(default_factory=dict)
    already_complete: bool = False


@dataclass(frozen=True)
class ExtractionPlan:
    """What an extraction will do, checked before anything runs or is recorded."""

    layers: list[LayerInfo]
    kept_maps: list[str]
    n_images: int
    params: dict[str, Any]


def check_classes(model: ModelInfo, dataset: ImageDataset) -> None:
    """Refuse a dataset whose classes cannot be the model's outputs (before any work)."""
    n_out = model.n_outputs
    if (
        model.class_keys is not None
        and dataset.class_keys != model.class_keys
        and len(dataset.class_keys) == len(model.class_keys)
    ):
        raise InputError(
            f"dataset {dataset.name} has classes {dataset.class_keys[:3]} … but model {model.name} was "
            f"trained on {model.class_keys[:3]} …; use the matching dataset.",
            argument="dataset",
        )
    if dataset.n_classes != n_out:
        raise InputError(
            f"model {model.name} has {n_out} outputs but dataset {dataset.name} has {dataset.n_classes} "
            "classes; use a matching dataset, a class mapping file, or another number of classes "
            "for the model.",
            argument="dataset",
        )


def run_params(
    model: ModelInfo,
    dataset: ImageDataset,
    layers: Sequence[LayerInfo],
    *,
    n_items: int,
    reduce: str,
    keep_maps: Sequence[str],
    autocast: bool,
) -> dict[str, Any]:
    """The parameters that define a run's content (compared when resuming)."""
    return {
        "model": model.name,
        "architecture": model.architecture,
        "weights": model.weights,
        "checksum": model.checksum,
        "dataset": dataset.name,
        "dataset_source": dataset.source,
        "n_items": n_items,
        "layers": [layer.name for layer in layers],
        "reduce": reduce,
        "keep_maps": list(keep_maps),
        "autocast": bool(autocast),
        "input_size": list(model.input_size),
    }


def compare_params(out_path: Path, old: dict[str, Any], params: dict[str, Any]) -> None:
    """Refuse to resume a file that holds a run with other parameters."""
    differ = [k for k in COMPARED_PARAMS if old.get(k) != params.get(k)]
    if differ:
        raise InputError(
            f"{out_path} holds a run with different parameters ({', '.join(differ)}); "
            "re-run with the same ones to resume, or choose another output file.",
            argument="out_path",
        )


def check_options(batch_size: int, workers: int, shard_images: int | None = None) -> None:
    """The runtime options every extraction takes (they change speed, not the values)."""
    if batch_size < 1:
        raise InputError(f"batch_size must be at least 1, got {batch_size}.", argument="batch_size")
    if workers < 0:
        raise InputError(f"workers must be 0 or more, got {workers}.", argument="workers")
    if shard_images is not None and shard_images < 1:
        raise InputError(
            f"shard_images must be at least 1, got {shard_images}.", argument="shard_images"
        )


def check_output(out_path: Path, params: dict[str, Any]) -> None:
    """Refuse an output path that cannot hold this run, before anything is written: a
    directory, a file of another run, a folder that cannot be created or written.

    A file that another process is writing is not refused here: if that process runs the
    same extraction, this one waits for it (`catalogue.db.runs.recorded_run`) and finds it
    done; the file's parameters are compared again when it is opened to be written."""
    if out_path.is_dir():
        raise InputError(
            f"out_path {out_path} is a directory; give a file name, e.g. "
            f"{out_path / 'activations.h5'}.",
            argument="out_path",
        )
    if out_path.exists():
        try:
            existing = ActivationStore.open(out_path)
        except InputError as exc:
            if "open in another process" in str(exc):
                return
            raise
        with existing:
            compare_params(out_path, existing.params, params)
        return
    try:
        out_path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"cannot create the folder {out_path.parent} ({exc.strerror or exc}); "
            "choose another out_path or UNITCAT_HOME.",
            argument="out_path",
        ) from exc
    if not os.access(out_path.parent, os.W_OK):
        raise ConfigError(
            f"cannot write to {out_path.parent} (permission denied or read-only); "
            "choose another out_path or UNITCAT_HOME.",
            argument="out_path",
        )


def check_images(dataset: ImageDataset, n_items: int) -> None:
    """With ``strict``: open every image of the run now, so that an unreadable one stops the
    request before anything is recorded (`ImageDataset.check_image`; raises its one line)."""
    for index in range(n_items):
        dataset.check_image(index)


def plan_extraction(
    model: ModelInfo,
    dataset: ImageDataset,
    layers: Sequence[str] | None,
    *,
    reduce: str = "max",
    keep_maps: bool | Sequence[str] = False,
    limit: int | None = None,
    autocast: bool = False,
) -> ExtractionPlan:
    """Validate a request (classes, layer names, reduction, maps, limit) and derive its parameters.

    Raises the one-line errors for bad input (unknown layer, class mismatch,
    empty dataset) before any file or catalogue row is written.
    """
    if reduce not in REDUCTIONS:
        raise InputError(
            f"reduce must be one of {', '.join(REDUCTIONS)}, got {reduce!r}.", argument="reduce"
        )
    if limit is not None and limit < 0:
        raise InputError(f"limit must be 0 or more, got {limit}.", argument="limit")
    check_classes(model, dataset)
    names = list(layers) if layers else default_layers(model)
    infos = list_layers(model, layers=names)
    kept = _kept_maps(infos, keep_maps)
    n_total = len(dataset) if limit is None else min(limit, len(dataset))
    if n_total == 0:
        raise InputError(
            f"dataset {dataset.name} has no images to extract (limit {limit}).", argument="limit"
        )
    params = run_params(
        model, dataset, infos, n_items=n_total, reduce=reduce, keep_maps=kept, autocast=autocast
    )
    return ExtractionPlan(layers=infos, kept_maps=kept, n_images=n_total, params=params)


def _kept_maps(infos: Sequence[LayerInfo], keep_maps: bool | Sequence[str]) -> list[str]:
    conv = [i.name for i in infos if i.kind == "conv"]
    if keep_maps is True:
        return conv
    if not keep_maps:
        return []
    wanted = list(keep_maps)
    bad = [name for name in wanted if name not in conv]
    if bad:
        raise InputError(
            f"maps can be kept only for extracted conv layers ({', '.join(conv) or 'none'}), not {bad}.",
            argument="keep_maps",
        )
    return [name for name in conv if name in wanted]


def layer_specs(infos: Sequence[LayerInfo], kept: Sequence[str], reduce: str) -> list[LayerSpec]:
    """The store's layers for an extraction of ``infos`` (maps of the ``kept`` conv layers)."""
    return [
        LayerSpec(
            name=info.name,
            n_units=info.n_units,
            kind=info.kind,
            output_shape=info.output_shape,
            position=info.position,
            reduce=reduce if info.kind == "conv" else "none",
            map_shape=info.map_shape if info.name in kept else None,
        )
        for info in infos
    ]


def summarise(
    store: ActivationStore,
    plan: ExtractionPlan,
    runtime: dict[str, Any],
    *,
    resumed_from: int,
    n_new: int = 0,
    seconds: float = 0.0,
    already_complete: bool = False,
) -> ExtractionSummary:
    """The summary of a written store: rows, skips, accuracy and speed of this call."""
    correct = store.correct
    skipped = store.skipped
    return ExtractionSummary(
        path=store.path,
        n_images=store.n_complete,
        n_skipped=len(skipped),
        skipped=skipped,
        accuracy=float(np.mean(correct)) if correct.size else float("nan"),
        images_per_second=n_new / seconds if seconds > 0 else 0.0,
        seconds=seconds,
        layers=list(plan.layers),
        resumed_from=resumed_from,
        params=plan.params,
        runtime=runtime,
        already_complete=already_complete,
    )
