"""The HDF5 activation store: one file per extraction run.

Why this layout: extraction produces activations image by image (rows) while
the scorer reads them unit by unit (columns) — every measure in DESIGN.md is a
function of one unit's activations over all images. Each layer is therefore an
(N images × U units) float32 dataset chunked in tall, narrow blocks
(``chunk_rows × 16`` = 4096 × 16 floats = 256 KiB by default, lzf + shuffle):
reading one unit of a 100,000-image layer decompresses 25 chunks (6 MiB raw),
whatever the layer's width, and a 16-unit block costs the same. Narrower
chunks would make single-unit reads (the UI's Unit page) cheaper still but
multiply the chunk count; wider ones (64 units, 1 MiB) made a unit of a
721,536-image layer cost 1.1 s of decompression instead of 0.3 s, while block
reads for scoring decompress the same bytes either way.

Writes are buffered and go to disk in whole bands of ``chunk_rows`` rows, so
that every chunk is compressed once (partial-chunk writes would read, rewrite
and re-allocate the chunk for every batch). After each band the file is
flushed and only then is the ``n_complete`` attribute advanced and flushed: a
process killed at any point leaves a file whose first ``n_complete`` rows are
valid; rows past it are overwritten on resume (see `ActivationStore.open_append`).

Layout (format ``unitcat-activations`` version 1)::

    /layers/<layer>     float32 (N, U)        attrs: kind, n_units, output_shape, position, reduce
    /maps/<layer>       float16 (N, U, H, W)  optional spatial maps of conv layers (dissection)
    /labels             int64 (N,)            true class index
    /predictions        int64 (N,)            model's arg-max class index
    /correct            bool (N,)             labels == predictions
    /image_keys         utf-8 str (N,)        the dataset's key of each image
    /classes/keys       utf-8 str (C,)        class keys (e.g. WordNet ids), in model output order
    /classes/names      utf-8 str (C,)
    /skipped/keys, /skipped/reasons  utf-8 str (S,), /skipped/source_index int64 (S,)
    attrs: format, format_version, params (JSON), versions (JSON), runtime (JSON),
           layer_order (JSON), n_complete, n_consumed, status ("running"|"complete"),
           created_at, finished_at

Layer names are feature-extraction node names (``features.10``, ``conv5``);
they contain dots, never slashes.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from catalogue.errors import InputError, NotFound

FORMAT = "unitcat-activations"
FORMAT_VERSION = 1
DEFAULT_CHUNK_ROWS = 4096
DEFAULT_CHUNK_UNITS = 16
MAP_CHUNK_UNITS = 16
MAP_CHUNK_BYTES = 1 << 20
_STR = h5py.string_dtype("utf-8")
_READ_CACHE_BYTES = 64 << 20


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


@dataclass
class _Buffer:
    activations: dict[str, list[np.ndarray]] = field(default_factory=dict)
    maps: dict[str, list[np.ndarray]] = field(default_factory=dict)
    labels: list[np.ndarray] = field(default_factory=list)
    predictions: list[np.ndarray] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    source_index: list[np.ndarray] = field(default_factory=list)
    skipped: list[tuple[str, str, int]] = field(default_factory=list)
    n_rows: int = 0


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def library_versions() -> dict[str, str]:
    """Versions that determine the numbers in a store (recorded as an attribute)."""
    from importlib.metadata import PackageNotFoundError, version

    import catalogue

    versions = {"unitcat": catalogue.__version__, "h5py": h5py.__version__, "numpy": np.__version__}
    for package in ("torch", "torchvision"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:  # pragma: no cover - both are dependencies
            versions[package] = "absent"
    return versions


def _open_h5(path: Path, mode: str, **kwargs: Any) -> h5py.File:
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
    return handle


def _as_1d(values: Any, dtype: Any, n: int, what: str) -> np.ndarray:
    array = np.asarray(values, dtype=dtype).reshape(-1)
    if array.shape[0] != n:
        raise InputError(f"append: {what} has {array.shape[0]} entries but the batch has {n} rows.")
    return array


class ActivationStore:
    """Read and write one extraction run's activations (see the module docstring).

    Use the classmethods: `create` (new run), `open_append` (resume a run),
    `open` (read-only). Instances are context managers; leaving the ``with``
    block flushes buffered rows and closes the file.
    """

    def __init__(self, handle: h5py.File, path: Path, writable: bool) -> None:
        self._h5 = handle
        self.path = path
        self.writable = writable
        self._buffer = _Buffer()
        self._layer_order: list[str] = json.loads(handle.attrs.get("layer_order", "[]"))
        self.chunk_rows = int(handle.attrs.get("chunk_rows", DEFAULT_CHUNK_ROWS))
        self._n_complete = int(handle.attrs.get("n_complete", 0))
        self._n_consumed = int(handle.attrs.get("n_consumed", 0))

    # ------------------------------------------------------------------ opening
    @classmethod
    def create(
        cls,
        path: str | os.PathLike[str],
        layers: Sequence[LayerSpec],
        *,
        class_keys: Sequence[str],
        class_names: Sequence[str] | None = None,
        params: Mapping[str, Any] | None = None,
        runtime: Mapping[str, Any] | None = None,
        chunk_rows: int = DEFAULT_CHUNK_ROWS,
        chunk_units: int = DEFAULT_CHUNK_UNITS,
        overwrite: bool = False,
    ) -> ActivationStore:
        """Start a new store at ``path`` (refuses to replace a file unless ``overwrite``).

        ``chunk_rows`` must be a power of two: it is both the chunk height and
        the write band, and map chunks use a power of two that divides it.
        """
        path = Path(path)
        if not layers:
            raise InputError("an activation store needs at least one layer.")
        if chunk_rows < 1 or chunk_rows & (chunk_rows - 1):
            raise InputError(f"chunk_rows must be a power of two, got {chunk_rows}.")
        names = [layer.name for layer in layers]
        if len(set(names)) != len(names):
            raise InputError(f"layer names must be unique, got {names}.")
        for layer in layers:
            if not layer.name or "/" in layer.name:
                raise InputError(
                    f"layer name {layer.name!r} is not a node name (empty or has '/')."
                )
            if layer.n_units < 1:
                raise InputError(
                    f"layer {layer.name} has {layer.n_units} units; need at least one."
                )
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
        h5.attrs["created_at"] = _now()
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
                compression="lzf",
                shuffle=True,
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
                )
                mds.attrs["n_units"] = layer.n_units
        row_chunks = (chunk_rows,)
        h5.create_dataset(
            "labels", (0,), maxshape=(None,), dtype=np.int64, chunks=row_chunks, compression="lzf"
        )
        h5.create_dataset(
            "predictions",
            (0,),
            maxshape=(None,),
            dtype=np.int64,
            chunks=row_chunks,
            compression="lzf",
        )
        h5.create_dataset(
            "correct", (0,), maxshape=(None,), dtype=bool, chunks=row_chunks, compression="lzf"
        )
        h5.create_dataset("image_keys", (0,), maxshape=(None,), dtype=_STR, chunks=row_chunks)
        classes = h5.create_group("classes")
        classes.create_dataset("keys", data=np.array(class_keys, dtype=object), dtype=_STR)
        classes.create_dataset("names", data=np.array(class_names, dtype=object), dtype=_STR)
        skipped = h5.create_group("skipped")
        for name, dtype in (("keys", _STR), ("reasons", _STR), ("source_index", np.int64)):
            skipped.create_dataset(name, (0,), maxshape=(None,), dtype=dtype, chunks=(1024,))
        h5.attrs["n_complete"] = 0
        h5.flush()
        return cls(h5, path, writable=True)

    @classmethod
    def open_append(cls, path: str | os.PathLike[str]) -> ActivationStore:
        """Reopen a store to continue writing after its last complete row.

        Rows past ``n_complete`` (a band cut off by a kill) and skipped entries
        past ``n_consumed`` are discarded and will be written again.
        """
        path = Path(path)
        store = cls(_open_h5(path, "r+"), path, writable=True)
        store._truncate_to_complete()
        store._h5.attrs["status"] = "running"
        store._h5.flush()
        return store

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> ActivationStore:
        """Open a store read-only (only its ``n_complete`` complete rows are visible)."""
        path = Path(path)
        return cls(_open_h5(path, "r", rdcc_nbytes=_READ_CACHE_BYTES), path, writable=False)

    def close(self) -> None:
        """Write buffered rows (if writable) and close the file; safe to call twice."""
        if not self._h5.id.valid:
            return
        try:
            if self.writable:
                self._write(final=True)
        finally:
            self._h5.close()

    def __enter__(self) -> ActivationStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------------ writing
    def append(
        self,
        activations: Mapping[str, np.ndarray],
        *,
        labels: Sequence[int] | np.ndarray,
        predictions: Sequence[int] | np.ndarray,
        image_keys: Sequence[str],
        source_index: Sequence[int] | np.ndarray | None = None,
        maps: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        """Add one batch of rows: ``activations[layer]`` is (B, U) for every layer.

        ``source_index`` is each row's position in the dataset being extracted
        (default: consecutive after the last row); it lets a resumed run know
        where to continue when skipped images leave gaps. ``maps[layer]`` is
        (B, U, H, W) for the layers created with a ``map_shape``.
        """
        self._require_writable()
        n = len(image_keys)
        expected = set(self._layer_order)
        if set(activations) != expected:
            raise InputError(
                f"append: got layers {sorted(activations)} but the store has {sorted(expected)}."
            )
        if n == 0:
            return
        buf = self._buffer
        for name in self._layer_order:
            block = np.asarray(activations[name], dtype=np.float32)
            units = self._h5["layers"][name].shape[1]
            if block.shape != (n, units):
                raise InputError(
                    f"append: layer {name} block is {block.shape}, expected {(n, units)}."
                )
            buf.activations.setdefault(name, []).append(block)
        map_names = set(self.map_layer_names)
        given_maps = dict(maps or {})
        if set(given_maps) != map_names:
            raise InputError(
                f"append: got maps for {sorted(given_maps)} but the store keeps {sorted(map_names)}."
            )
        for name, block in given_maps.items():
            block = np.asarray(block, dtype=np.float16)
            expected_shape = (n, *self._h5["maps"][name].shape[1:])
            if block.shape != expected_shape:
                raise InputError(f"append: map {name} is {block.shape}, expected {expected_shape}.")
            buf.maps.setdefault(name, []).append(block)
        buf.labels.append(_as_1d(labels, np.int64, n, "labels"))
        buf.predictions.append(_as_1d(predictions, np.int64, n, "predictions"))
        if source_index is None:
            start = self._next_source_index()
            source = np.arange(start, start + n, dtype=np.int64)
        else:
            source = _as_1d(source_index, np.int64, n, "source_index")
        buf.source_index.append(source)
        buf.keys.extend(str(k) for k in image_keys)
        buf.n_rows += n
        self._write(final=False)

    def add_skipped(self, key: str, reason: str, source_index: int) -> None:
        """Record an image that could not be used (unreadable, corrupt …) and why."""
        self._require_writable()
        self._buffer.skipped.append((str(key), str(reason), int(source_index)))

    def flush(self) -> None:
        """Write every buffered row now (also partial bands) and advance ``n_complete``."""
        self._require_writable()
        self._write(final=True)

    def finish(self, n_consumed: int | None = None, *, finished_at: str | None = None) -> None:
        """Write everything, trim the datasets to ``n_complete`` and mark the run complete.

        ``n_consumed`` is the number of dataset items the run went through
        (rows plus skipped images); default: one past the last recorded item.
        """
        self._require_writable()
        self._write(final=True)
        self._flush_skipped(None)
        h5 = self._h5
        n = self._n_complete
        for ds in self._row_datasets():
            if ds.shape[0] != n:
                ds.resize(n, axis=0)
        if n_consumed is not None:
            self._n_consumed = max(self._n_consumed, int(n_consumed))
        h5.attrs["n_consumed"] = self._n_consumed
        h5.attrs["finished_at"] = finished_at or _now()
        h5.flush()
        h5.attrs["status"] = "complete"
        h5.flush()

    def set_attr(self, name: str, value: Any) -> None:
        """Record an extra run attribute (JSON-encoded unless it is a str or number)."""
        self._require_writable()
        if not isinstance(value, str | int | float):
            value = json.dumps(value, sort_keys=True, default=str)
        self._h5.attrs[name] = value

    def _require_writable(self) -> None:
        if not self.writable:
            raise InputError(f"{self.path} was opened read-only.")

    def _next_source_index(self) -> int:
        if self._buffer.source_index:
            return int(self._buffer.source_index[-1][-1]) + 1
        return self._n_consumed

    def _row_datasets(self) -> list[h5py.Dataset]:
        h5 = self._h5
        datasets = [h5["layers"][name] for name in self._layer_order]
        datasets += [h5["maps"][name] for name in self.map_layer_names]
        datasets += [h5["labels"], h5["predictions"], h5["correct"], h5["image_keys"]]
        return datasets

    def _truncate_to_complete(self) -> None:
        n = self._n_complete
        for ds in self._row_datasets():
            if ds.shape[0] > n:
                ds.resize(n, axis=0)
        group = self._h5["skipped"]
        index = group["source_index"][...]
        keep = int(np.count_nonzero(index < self._n_consumed))
        if keep != index.shape[0]:
            for name in ("keys", "reasons", "source_index"):
                group[name].resize(keep, axis=0)

    def _write(self, *, final: bool) -> None:
        """Write buffered rows up to the last whole band (all of them if ``final``)."""
        buf = self._buffer
        start = self._n_complete
        if final:
            stop = start + buf.n_rows
        else:
            stop = ((start + buf.n_rows) // self.chunk_rows) * self.chunk_rows
        if stop <= start:
            if final:
                self._flush_skipped(self._n_consumed)
            return
        take = stop - start
        h5 = self._h5

        def split(parts: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
            whole = np.concatenate(parts) if len(parts) > 1 else parts[0]
            rest = [whole[take:]] if whole.shape[0] > take else []
            return whole[:take], rest

        for ds in self._row_datasets():
            if ds.shape[0] < stop:
                ds.resize(stop, axis=0)
        for name in self._layer_order:
            block, buf.activations[name] = split(buf.activations[name])
            h5["layers"][name].write_direct(np.ascontiguousarray(block), dest_sel=np.s_[start:stop])
        for name in list(buf.maps):
            block, buf.maps[name] = split(buf.maps[name])
            h5["maps"][name][start:stop] = block
        labels, buf.labels = split(buf.labels)
        predictions, buf.predictions = split(buf.predictions)
        source, buf.source_index = split(buf.source_index)
        h5["labels"][start:stop] = labels
        h5["predictions"][start:stop] = predictions
        h5["correct"][start:stop] = labels == predictions
        h5["image_keys"][start:stop] = np.array(buf.keys[:take], dtype=object)
        del buf.keys[:take]
        buf.n_rows -= take
        consumed = int(source[-1]) + 1
        self._flush_skipped(consumed)
        h5.flush()
        # Only now are these rows complete: advance the counters, then flush again.
        self._n_complete = stop
        self._n_consumed = max(self._n_consumed, consumed)
        h5.attrs["n_consumed"] = self._n_consumed
        h5.attrs["n_complete"] = stop
        h5.flush()

    def _flush_skipped(self, before: int | None) -> None:
        """Write buffered skipped entries with a source index below ``before`` (all if None)."""
        buf = self._buffer
        ready = [s for s in buf.skipped if before is None or s[2] < before]
        if not ready:
            return
        buf.skipped = [s for s in buf.skipped if not (before is None or s[2] < before)]
        group = self._h5["skipped"]
        n_old = group["keys"].shape[0]
        n_new = n_old + len(ready)
        for name in ("keys", "reasons", "source_index"):
            group[name].resize(n_new, axis=0)
        group["keys"][n_old:] = np.array([s[0] for s in ready], dtype=object)
        group["reasons"][n_old:] = np.array([s[1] for s in ready], dtype=object)
        group["source_index"][n_old:] = np.array([s[2] for s in ready], dtype=np.int64)
        if before is None:
            self._n_consumed = max(self._n_consumed, max(s[2] for s in ready) + 1)

    # ------------------------------------------------------------------ reading
    @property
    def n_complete(self) -> int:
        """Rows written completely (the rows every reader sees)."""
        return self._n_complete

    @property
    def n_consumed(self) -> int:
        """Dataset items gone through (rows plus skipped images); where a resume continues."""
        return self._n_consumed

    @property
    def is_complete(self) -> bool:
        return self._h5.attrs.get("status") == "complete"

    @property
    def layer_names(self) -> list[str]:
        """Layer node names in the order they were given (network order)."""
        return list(self._layer_order)

    @property
    def map_layer_names(self) -> list[str]:
        if "maps" not in self._h5:
            return []
        return [name for name in self._layer_order if name in self._h5["maps"]]

    def _layer(self, name: str) -> h5py.Dataset:
        if name not in self._layer_order:
            raise NotFound(
                f"layer {name!r} is not in {self.path.name}; stored layers: {', '.join(self._layer_order)}."
            )
        return self._h5["layers"][name]

    def layer_shape(self, name: str) -> tuple[int, int]:
        """(complete rows, units) of a layer."""
        return (self._n_complete, int(self._layer(name).shape[1]))

    def layer_info(self, name: str) -> dict[str, Any]:
        """Kind, units, original output shape, position and reduction of a stored layer."""
        attrs = self._layer(name).attrs
        return {
            "name": name,
            "kind": str(attrs["kind"]),
            "n_units": int(attrs["n_units"]),
            "output_shape": tuple(json.loads(attrs["output_shape"])),
            "position": int(attrs["position"]),
            "reduce": str(attrs["reduce"]),
        }

    def _row_selection(self, rows: Any) -> np.ndarray | None:
        if rows is None:
            return None
        selection = np.asarray(rows)
        n = self._n_complete
        if selection.dtype == bool:
            if selection.shape != (n,):
                raise InputError(f"row mask has shape {selection.shape}; the store has {n} rows.")
            return selection
        selection = selection.astype(np.int64, copy=False).reshape(-1)
        if selection.size and (selection.min() < -n or selection.max() >= n):
            raise InputError(f"row index out of range for a store with {n} rows.")
        return selection

    def read_units(self, layer: str, start: int, stop: int, rows: Any = None) -> np.ndarray:
        """Activations of units ``start:stop`` of ``layer`` as an (N_rows × block) float32 array.

        ``rows`` selects images: a boolean mask over the complete rows (e.g.
        `correct`) or an array of row indices; None means every complete row.
        """
        ds = self._layer(layer)
        units = ds.shape[1]
        if not (0 <= start <= stop <= units):
            raise InputError(f"unit range {start}:{stop} is outside 0:{units} of layer {layer}.")
        n = self._n_complete
        block = np.empty((n, stop - start), dtype=np.float32)
        if n and stop > start:
            ds.read_direct(block, source_sel=np.s_[0:n, start:stop])
        selection = self._row_selection(rows)
        return block if selection is None else block[selection]

    def iter_unit_blocks(
        self, layer: str, block_units: int = DEFAULT_CHUNK_UNITS, rows: Any = None
    ) -> Iterator[tuple[int, int, np.ndarray]]:
        """Yield ``(start, stop, block)`` over a layer's units, ``block_units`` at a time.

        Multiples of the chunk width (16) read every chunk exactly once.
        """
        if block_units < 1:
            raise InputError(f"block_units must be positive, got {block_units}.")
        units = self.layer_shape(layer)[1]
        for start in range(0, units, block_units):
            stop = min(units, start + block_units)
            yield start, stop, self.read_units(layer, start, stop, rows=rows)

    def read_maps(self, layer: str, rows: Any = None, units: Any = None) -> np.ndarray:
        """Spatial maps (N_rows × U × H × W, float16) of a conv layer kept with ``keep_maps``."""
        if layer not in self.map_layer_names:
            kept = ", ".join(self.map_layer_names) or "none"
            raise NotFound(
                f"no spatial maps of layer {layer!r} in {self.path.name}; maps kept: {kept}."
            )
        ds = self._h5["maps"][layer]
        n = self._n_complete
        selection = self._row_selection(rows)
        if selection is not None and selection.dtype == bool:
            selection = np.flatnonzero(selection)
        unit_sel = slice(None) if units is None else np.asarray(units, dtype=np.int64)
        if selection is None:
            data = ds[0:n]
        elif selection.size and np.all(np.diff(selection) == 1) and selection[0] >= 0:
            data = ds[int(selection[0]) : int(selection[-1]) + 1]
        else:
            lo = int(selection.min()) if selection.size else 0
            hi = int(selection.max()) + 1 if selection.size else 0
            data = ds[lo:hi][selection - lo] if selection.size else ds[0:0]
        return data if units is None else data[:, unit_sel]

    def _read_rows(self, name: str) -> np.ndarray:
        return self._h5[name][0 : self._n_complete]

    @property
    def labels(self) -> np.ndarray:
        return self._read_rows("labels")

    @property
    def predictions(self) -> np.ndarray:
        return self._read_rows("predictions")

    @property
    def correct(self) -> np.ndarray:
        return self._read_rows("correct")

    @property
    def image_keys(self) -> list[str]:
        return [k.decode() if isinstance(k, bytes) else k for k in self._read_rows("image_keys")]

    def _strings(self, path: str) -> list[str]:
        return [k.decode() if isinstance(k, bytes) else str(k) for k in self._h5[path][...]]

    @property
    def class_keys(self) -> list[str]:
        return self._strings("classes/keys")

    @property
    def class_names(self) -> list[str]:
        return self._strings("classes/names")

    @property
    def n_classes(self) -> int:
        return int(self._h5["classes/keys"].shape[0])

    @property
    def skipped(self) -> list[tuple[str, str]]:
        """(image key, reason) of every image the run could not use."""
        return list(
            zip(self._strings("skipped/keys"), self._strings("skipped/reasons"), strict=True)
        )

    def _json_attr(self, name: str) -> dict[str, Any]:
        return json.loads(self._h5.attrs.get(name, "{}"))

    @property
    def params(self) -> dict[str, Any]:
        """The run parameters that define its content (compared on resume)."""
        return self._json_attr("params")

    @property
    def runtime(self) -> dict[str, Any]:
        """How the run was executed (device, batch size …); not compared on resume."""
        return self._json_attr("runtime")

    @property
    def versions(self) -> dict[str, str]:
        return self._json_attr("versions")

    @property
    def attrs(self) -> dict[str, Any]:
        """Every file attribute (JSON ones left as strings)."""
        return {k: (v.item() if hasattr(v, "item") else v) for k, v in self._h5.attrs.items()}
