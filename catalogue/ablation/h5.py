"""The ablation run's own HDF5 file: the full units × classes matrix of every layer.

The extraction run's file is never modified; each ablation run writes one file
(under ``$UNITCAT_HOME/runs``, named by its parameters), first as
``<name>.partial`` and renamed when complete, so a killed run leaves no file
that looks finished. Layout (format ``unitcat-ablation`` version 1)::

    /classes/keys, /classes/names   utf-8 str (C,)
    /images/rows      int64 (N,)    rows of the extraction store that were used
    /images/labels    int64 (N,)
    /layers/<layer>/  group         attrs: kind, value ("zero" | "mean"), baseline_accuracy
        class_sizes       int64 (C,)
        baseline_correct  int64 (C,)
        correct           int64 (U, C)   correct images per class with unit u replaced
        accuracy_change   float32 (U, C) ablated minus baseline accuracy (NaN: no images)
        replacement       float64 (U,)   the value each unit was replaced by
    attrs: format, format_version, params (JSON), extract_run, run_id, created_at
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from catalogue.ablation.core import LayerAblation
from catalogue.errors import InputError, NotFound

FORMAT = "unitcat-ablation"
FORMAT_VERSION = 1
_STR = h5py.string_dtype("utf-8")


def write_ablation_file(
    path: Path,
    *,
    params: Mapping[str, Any],
    run_id: int,
    extract_run: int,
    class_keys: Sequence[str],
    class_names: Sequence[str],
    rows: np.ndarray,
    labels: np.ndarray,
    layers: Sequence[LayerAblation],
) -> Path:
    """Write the file at ``path`` via ``path.partial`` and an atomic rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with h5py.File(partial, "w") as h5:
        h5.attrs["format"] = FORMAT
        h5.attrs["format_version"] = FORMAT_VERSION
        h5.attrs["params"] = json.dumps(dict(params), sort_keys=True, default=str)
        h5.attrs["run_id"] = int(run_id)
        h5.attrs["extract_run"] = int(extract_run)
        h5.attrs["created_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        classes = h5.create_group("classes")
        classes.create_dataset("keys", data=np.array(list(class_keys), dtype=object), dtype=_STR)
        classes.create_dataset("names", data=np.array(list(class_names), dtype=object), dtype=_STR)
        images = h5.create_group("images")
        images.create_dataset("rows", data=np.asarray(rows, dtype=np.int64))
        images.create_dataset("labels", data=np.asarray(labels, dtype=np.int64))
        group = h5.create_group("layers")
        for result in layers:
            g = group.create_group(result.layer)
            g.attrs["kind"] = result.kind
            g.attrs["value"] = result.value
            g.attrs["baseline_accuracy"] = result.baseline_accuracy
            g.create_dataset("class_sizes", data=result.class_sizes.astype(np.int64))
            g.create_dataset("baseline_correct", data=result.baseline_correct.astype(np.int64))
            g.create_dataset("correct", data=result.correct.astype(np.int64), compression="lzf")
            g.create_dataset(
                "accuracy_change",
                data=result.accuracy_change.astype(np.float32),
                compression="lzf",
            )
            g.create_dataset("replacement", data=result.replacement.astype(np.float64))
    os.replace(partial, path)
    return path


@dataclass(frozen=True)
class UnitAblationProfile:
    """One unit's accuracy change for every class (the Unit page's chart)."""

    change: np.ndarray  # (C,) float, NaN for a class without images
    baseline: np.ndarray  # (C,) baseline accuracy per class
    class_sizes: np.ndarray  # (C,)
    class_names: list[str]
    value: str


def _open(path: Path) -> h5py.File:
    if not path.is_file():
        raise NotFound(f"the ablation file {path} is missing; run `unitcat ingest ablate` again.")
    try:
        h5 = h5py.File(path, "r")
    except OSError as exc:
        raise InputError(f"{path} is not a readable ablation file ({exc}).") from exc
    if h5.attrs.get("format") != FORMAT:
        h5.close()
        raise InputError(f"{path} is not a unitcat ablation file.")
    return h5


def read_unit_profile(path: Path, layer: str, unit: int) -> UnitAblationProfile:
    """The per-class accuracy change of one unit of ``layer`` from an ablation file."""
    with _open(path) as h5:
        if layer not in h5["layers"]:
            raise NotFound(f"{path.name} has no layer {layer!r}.")
        g = h5["layers"][layer]
        sizes = g["class_sizes"][...]
        baseline = np.where(sizes > 0, g["baseline_correct"][...] / np.maximum(sizes, 1), np.nan)
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in h5["classes/names"][...]]
        return UnitAblationProfile(
            change=g["accuracy_change"][int(unit)].astype(np.float64),
            baseline=baseline,
            class_sizes=sizes,
            class_names=names,
            value=str(g.attrs["value"]),
        )
