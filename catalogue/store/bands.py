"""The crash-safe band protocol: how rows reach the file so that a kill never leaves a bad row.

Writes are buffered and go to disk in whole bands of ``chunk_rows`` rows, so
that every chunk is compressed once (partial-chunk writes would read, rewrite
and re-allocate the chunk for every batch). After each band the file is
flushed and only then is the ``n_complete`` attribute advanced and flushed: a
process killed at any point leaves a file whose first ``n_complete`` rows are
valid; rows past it are overwritten on resume (see `ActivationStore.open_append`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from catalogue.errors import InputError
from catalogue.store.layout import row_datasets
from catalogue.store.reader import StoreReader


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


class BandWriter(StoreReader):
    """Buffered rows written in whole bands of ``chunk_rows``; ``n_complete`` advanced after each flush."""

    def __init__(self, handle: h5py.File, path: Path, writable: bool) -> None:
        super().__init__(handle, path, writable)
        self._buffer = _Buffer()

    def _require_writable(self) -> None:
        if not self.writable:
            raise InputError(f"{self.path} was opened read-only.")

    def _next_source_index(self) -> int:
        if self._buffer.source_index:
            return int(self._buffer.source_index[-1][-1]) + 1
        return self._n_consumed

    def _row_datasets(self) -> list[h5py.Dataset]:
        return row_datasets(self._h5, self._layer_order, self.map_layer_names)

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
