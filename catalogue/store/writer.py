"""`ActivationStore`: create a store, resume it, append batches of rows, finish it; or open it to read."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from catalogue.errors import InputError
from catalogue.store.bands import BandWriter
from catalogue.store.layout import (
    DEFAULT_CHUNK_ROWS,
    DEFAULT_CHUNK_UNITS,
    READ_CACHE_BYTES,
    LayerSpec,
    create_file,
    now,
    open_h5,
)

#: Stores that HDF5 could not close after a failed write (see `ActivationStore.close`).
UNCLOSED: set[Path] = set()


def unclosed_stores() -> set[Path]:
    """Stores HDF5 could not close (a process should then exit with `os._exit`: HDF5's own
    clean-up at exit would try to flush them again and crash)."""
    return set(UNCLOSED)


def _as_1d(values: Any, dtype: Any, n: int, what: str) -> np.ndarray:
    array = np.asarray(values, dtype=dtype).reshape(-1)
    if array.shape[0] != n:
        raise InputError(f"append: {what} has {array.shape[0]} entries but the batch has {n} rows.")
    return array


class ActivationStore(BandWriter):
    """Read and write one extraction run's activations (see the module docstring).

    Use the classmethods: `create` (new run), `open_append` (resume a run),
    `open` (read-only). Instances are context managers; leaving the ``with``
    block flushes buffered rows and closes the file.
    """

    #: rows of a damaged last band that `open_append` dropped (to be computed again)
    dropped_rows: int = 0

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
        h5 = create_file(
            path,
            layers,
            class_keys=class_keys,
            class_names=class_names,
            params=params,
            runtime=runtime,
            chunk_rows=chunk_rows,
            chunk_units=chunk_units,
            overwrite=overwrite,
        )
        return cls(h5, path, writable=True)

    @classmethod
    def open_append(cls, path: str | os.PathLike[str]) -> ActivationStore:
        """Reopen a store to continue writing after its last complete row.

        Rows past ``n_complete`` (a band cut off by a kill) and skipped entries
        past ``n_consumed`` are discarded and will be written again, and so is a last
        band that does not read back (`dropped_rows` says how many rows that was).
        """
        path = Path(path)
        store = cls(open_h5(path, "r+"), path, writable=True)
        store.dropped_rows = store.drop_unreadable_bands()
        store._truncate_to_complete()
        store._h5.attrs["status"] = "running"
        store._h5.flush()
        return store

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> ActivationStore:
        """Open a store read-only (only its ``n_complete`` complete rows are visible)."""
        path = Path(path)
        return cls(open_h5(path, "r", rdcc_nbytes=READ_CACHE_BYTES), path, writable=False)

    def close(self) -> None:
        """Write buffered rows (if writable) and close the file; safe to call twice."""
        if not self._h5.id.valid:
            return
        try:
            if self.writable and not self.stopped:
                self._write(final=True)
        finally:
            try:
                self._h5.close()
            except (OSError, RuntimeError):
                if not self.stopped:
                    raise
                # After a failed write HDF5 cannot close the file; it would try again when the
                # interpreter exits, and crash. The CLI exits without that (`unclosed_stores`).
                UNCLOSED.add(self.path)

    def __enter__(self) -> ActivationStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

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
        h5.attrs["finished_at"] = finished_at or now()
        h5.flush()
        h5.attrs["status"] = "complete"
        h5.flush()
