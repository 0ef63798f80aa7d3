"""The read side of a store: column blocks of units, spatial maps, labels, attributes.

Only the first ``n_complete`` rows are visible (`catalogue.store.bands`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from catalogue.errors import InputError, NotFound
from catalogue.store.layout import DEFAULT_CHUNK_ROWS, DEFAULT_CHUNK_UNITS


class StoreReader:
    """Read one extraction run's activations; `catalogue.store.ActivationStore` adds the writing."""

    def __init__(self, handle: h5py.File, path: Path, writable: bool) -> None:
        self._h5 = handle
        self.path = path
        self.writable = writable
        self._layer_order: list[str] = json.loads(handle.attrs.get("layer_order", "[]"))
        self.chunk_rows = int(handle.attrs.get("chunk_rows", DEFAULT_CHUNK_ROWS))
        self._n_complete = int(handle.attrs.get("n_complete", 0))
        self._n_consumed = int(handle.attrs.get("n_consumed", 0))

    def close(self) -> None:
        """Close the file; safe to call twice."""
        if self._h5.id.valid:
            self._h5.close()

    def __enter__(self) -> StoreReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

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
        if selection is None:
            return block
        if selection.dtype == bool:
            # a mask of every row (all images correct) costs no copy; np.compress copies the
            # rows of a partial mask about twice as fast as boolean indexing
            return block if selection.all() else np.compress(selection, block, axis=0)
        return block[selection]

    def read_rows(self, layer: str, start: int, stop: int) -> np.ndarray:
        """Every unit of ``layer`` for the complete rows ``start:stop``: (rows × U) float32.

        Row bands of ``chunk_rows`` (aligned) read each chunk once; ablation reads a
        layer this way, a band of images at a time.
        """
        ds = self._layer(layer)
        if not (0 <= start <= stop <= self._n_complete):
            raise InputError(f"rows {start}:{stop} are outside 0:{self._n_complete} of {layer}.")
        block = np.empty((stop - start, int(ds.shape[1])), dtype=np.float32)
        if stop > start:
            ds.read_direct(block, source_sel=np.s_[start:stop, :])
        return block

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
