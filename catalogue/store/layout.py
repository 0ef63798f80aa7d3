"""The HDF5 file's layout: datasets, chunking, format attributes, and the checks on opening.

See `catalogue.store` for the layout and why its chunks are tall and narrow.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import h5py
import numpy as np

import catalogue
from catalogue.errors import InputError, NotFound

FORMAT = "unitcat-activations"
FORMAT_VERSION = 1
DEFAULT_CHUNK_ROWS = 4096
DEFAULT_CHUNK_UNITS = 16
MAP_CHUNK_UNITS = 16
MAP_CHUNK_BYTES = 1 << 20
STR = h5py.string_dtype("utf-8")
READ_CACHE_BYTES = 64 << 20


@dataclass(frozen=True)
class LayerSpec:
    """A layer to store: its node name, width and (for conv layers) output shape.

    ``map_shape`` (H, W) asks for the spatial maps of a conv layer to be kept too.
    """

    name: str
    n_units: int
    kind: str = "fc"
    output_shape: tuple[int, ...] = ()
    position: int = 0
    reduce: str = "none"
    map_shape: tuple[int, int] | None = None


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def library_versions() -> dict[str, str]:
    """Versions that determine the numbers in a store (recorded as an attribute)."""
    versions = {"unitcat": catalogue.__version__, "h5py": h5py.__version__, "numpy": np.__version__}
    for package in ("torch", "torchvision"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:  # pragma: no cover - both are dependencies
            versions[package] = "absent"
    return versions


def open_h5(path: Path, mode: str, **kwargs: Any) -> h5py.File:
    if not path.exists():
        raise NotFound(
            f"activation file {path} does not exist; run `unitcat ingest extract` first."
        )
    if path.is_dir():
        raise InputError(f"{path} is a directory, not an HDF5 activation file.")
    try:
        handle = h5py.File(path, mode, **kwargs)
    except OSError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "lock" in first.lower():
            raise InputError(
                f"{path} is open in another process ({first}); wait for that extraction to finish."
            ) from exc
        raise InputError(
            f"{path} is not a readable HDF5 activation file ({first}); delete it and extract again."
        ) from exc
    if handle.attrs.get("format") != FORMAT:
        handle.close()
        raise InputError(
            f"{path} is an HDF5 file but not a unitcat activation store (no format={FORMAT!r} attribute)."
        )
    version = int(handle.attrs.get("format_version", 0))
    if version > FORMAT_VERSION:
        handle.close()
        raise InputError(
            f"{path} was written by a newer unitcat (store format {version} > {FORMAT_VERSION}); upgrade unitcat."
        )
    # A sharded run (`catalogue.store.shards`) reads its shards in place: without them HDF5 reads zeros.
    gone = [
        s for s in json.loads(handle.attrs.get("shards", "[]")) if not (path.parent / s).is_file()
    ]
    if gone:
        handle.close()
        raise NotFound(
            f"{path} reads its activations from shard files beside it, and {gone[0]} is missing; "
            f"keep the folder {gone[0].split('/')[0]} next to {path.name}."
        )
    return handle


def create_file(
    path: Path,
    layers: Sequence[LayerSpec],
    *,
    class_keys: Sequence[str],
    class_names: Sequence[str] | None,
    params: Mapping[str, Any] | None,
    runtime: Mapping[str, Any] | None,
    chunk_rows: int,
    chunk_units: int,
    overwrite: bool,
) -> h5py.File:
    """Create an empty store file (see `catalogue.store.ActivationStore.create`), flushed."""
    if not layers:
        raise InputError("an activation store needs at least one layer.")
    if chunk_rows < 1 or chunk_rows & (chunk_rows - 1):
        raise InputError(f"chunk_rows must be a power of two, got {chunk_rows}.")
    names = [layer.name for layer in layers]
    if len(set(names)) != len(names):
        raise InputError(f"layer names must be unique, got {names}.")
    for layer in layers:
        if not layer.name or "/" in layer.name:
            raise InputError(f"layer name {layer.name!r} is not a node name (empty or has '/').")
        if layer.n_units < 1:
            raise InputError(f"layer {layer.name} has {layer.n_units} units; need at least one.")
    class_keys = [str(k) for k in class_keys]
    class_names = [str(n) for n in (class_names if class_names is not None else class_keys)]
    if len(class_names) != len(class_keys):
        raise InputError(f"{len(class_keys)} class keys but {len(class_names)} class names.")
    if path.exists() and not overwrite:
        raise InputError(f"{path} already exists; resume it or delete it first.")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        h5 = h5py.File(path, "w")
    except OSError as exc:
        raise InputError(f"cannot create {path} ({str(exc).splitlines()[0]}).") from exc
    h5.attrs["format"] = FORMAT
    h5.attrs["format_version"] = FORMAT_VERSION
    h5.attrs["params"] = json.dumps(dict(params or {}), sort_keys=True, default=str)
    h5.attrs["runtime"] = json.dumps(dict(runtime or {}), sort_keys=True, default=str)
    h5.attrs["versions"] = json.dumps(library_versions(), sort_keys=True)
    h5.attrs["layer_order"] = json.dumps(names)
    h5.attrs["chunk_rows"] = chunk_rows
    h5.attrs["created_at"] = now()
    h5.attrs["status"] = "running"
    h5.attrs["n_consumed"] = 0

    group = h5.create_group("layers")
    maps = None
    for layer in layers:
        units = min(layer.n_units, chunk_units)
        ds = group.create_dataset(
            layer.name,
            shape=(0, layer.n_units),
            maxshape=(None, layer.n_units),
            dtype=np.float32,
            chunks=(chunk_rows, units),
            compression="lzf",  # no shuffle: it splits ReLU zeros' runs (see catalogue.store)
            fletcher32=True,  # a damaged chunk reads as an error, compressed or not
        )
        ds.attrs["kind"] = layer.kind
        ds.attrs["n_units"] = layer.n_units
        ds.attrs["output_shape"] = json.dumps(list(layer.output_shape))
        ds.attrs["position"] = layer.position
        ds.attrs["reduce"] = layer.reduce
        if layer.map_shape is not None:
            height, width = (int(x) for x in layer.map_shape)
            maps = maps if maps is not None else h5.create_group("maps")
            map_units = min(layer.n_units, MAP_CHUNK_UNITS)
            row_bytes = map_units * height * width * 2
            map_rows = max(
                1, min(chunk_rows, 2 ** int(math.log2(max(1, MAP_CHUNK_BYTES // row_bytes))))
            )
            mds = maps.create_dataset(
                layer.name,
                shape=(0, layer.n_units, height, width),
                maxshape=(None, layer.n_units, height, width),
                dtype=np.float16,
                chunks=(map_rows, map_units, height, width),
                compression="lzf",
                shuffle=True,
                fletcher32=True,
            )
            mds.attrs["n_units"] = layer.n_units
    row_chunks = (chunk_rows,)
    for name, dtype in (("labels", np.int64), ("predictions", np.int64), ("correct", bool)):
        h5.create_dataset(
            name,
            (0,),
            maxshape=(None,),
            dtype=dtype,
            chunks=row_chunks,
            compression="lzf",
            fletcher32=True,
        )
    h5.create_dataset("image_keys", (0,), maxshape=(None,), dtype=STR, chunks=row_chunks)
    classes = h5.create_group("classes")
    classes.create_dataset("keys", data=np.array(class_keys, dtype=object), dtype=STR)
    classes.create_dataset("names", data=np.array(class_names, dtype=object), dtype=STR)
    skipped = h5.create_group("skipped")
    for name, dtype in (("keys", STR), ("reasons", STR), ("source_index", np.int64)):
        skipped.create_dataset(name, (0,), maxshape=(None,), dtype=dtype, chunks=(1024,))
    h5.attrs["n_complete"] = 0
    h5.flush()
    return h5


def row_datasets(
    h5: h5py.File, layer_order: Sequence[str], map_layers: Sequence[str]
) -> list[h5py.Dataset]:
    """Every dataset with one row per image: they grow, and are cut back, together."""
    datasets = [h5["layers"][name] for name in layer_order]
    datasets += [h5["maps"][name] for name in map_layers]
    datasets += [h5["labels"], h5["predictions"], h5["correct"], h5["image_keys"]]
    return datasets
