"""The crash-safe band protocol: how rows reach the file so that a kill never leaves a bad row.

Writes are buffered and go to disk in whole bands of ``chunk_rows`` rows, so
that every chunk is compressed once (partial-chunk writes would read, rewrite
and re-allocate the chunk for every batch). After each band the file is
flushed and synced to the disk, and only then is the ``n_complete`` attribute
advanced and flushed: a process killed at any point leaves a file whose first
``n_complete`` rows are valid; rows past it are overwritten on resume (see
`ActivationStore.open_append`).

A full disk. HDF5 does not survive a write that fails for want of space: its
metadata is left half-written and the file may not open again. So before each
band the writer checks that the file system has room for it and stops cleanly
with `DiskFull` when it has not: nothing of that band is written, the file keeps
its complete bands, and a re-run resumes there once there is space. The room a
band needs is what earlier bands of the run took per row (for the first band,
`SAMPLE_ROWS` of its rows are compressed in memory to measure it), times
`SPACE_MARGIN`, plus
`HEADROOM_BYTES` for HDF5's metadata. Should the disk fill up anyway (another
process writing at the same moment), the write error is reported the same way
and the store is not written again.

A damaged last band. Chunks can still be lost after ``n_complete`` was written
(a power cut between the disk's caches, a copy of a file that was being
written): on resume `drop_unreadable_bands` reads the last complete band of
every dataset back and, while it does not decompress, steps ``n_complete`` back
to the band before; the dropped rows are computed again.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from catalogue.errors import DiskFull, InputError
from catalogue.store.layout import row_datasets
from catalogue.store.reader import StoreReader

#: Room kept free for HDF5's own metadata (chunk index, object headers) beyond a band's data.
HEADROOM_BYTES = 1 << 20
#: Bytes assumed per image key (a variable-length string) when sizing a band.
KEY_BYTES = 256
#: A band may compress worse than the bands before it: ask for this much more room.
SPACE_MARGIN = 1.5
#: Rows of the first band compressed in memory to measure what a band takes.
SAMPLE_ROWS = 512


def _first_rows(blocks: list[np.ndarray], n: int) -> np.ndarray:
    """The first `n` rows of a list of row blocks, copying no more than that."""
    parts, have = [], 0
    for block in blocks:
        parts.append(block[: n - have])
        have += parts[-1].shape[0]
        if have >= n:
            break
    return np.concatenate(parts) if len(parts) > 1 else parts[0]


def _size(n_bytes: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n_bytes < 1024 or unit == "GiB":
            return f"{n_bytes:,.0f} {unit}" if unit == "bytes" else f"{n_bytes:,.1f} {unit}"
        n_bytes /= 1024
    raise AssertionError("unreachable")


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
        #: set when a band could not be written: nothing more goes to the file
        self.stopped = False
        #: the most bytes per row a band of this session took on disk (None: none written yet)
        self._bytes_per_row: float | None = None

    def _require_writable(self) -> None:
        if not self.writable:
            raise InputError(f"{self.path} was opened read-only.")
        if self.stopped:
            raise InputError(f"{self.path} stopped taking rows (its disk was full).")

    def _band_bytes(self, take: int) -> int:
        """What writing the next `take` buffered rows adds to the file, about: the bytes per
        row that earlier bands of this session took, or (for the first band) the size of the
        band written with the same chunks and filters into an HDF5 file in memory."""
        if self._bytes_per_row is not None:
            return int(take * self._bytes_per_row)
        buf = self._buffer
        small = take * (8 + 8 + 1 + KEY_BYTES)  # labels, predictions, correct, a key
        sample = min(take, SAMPLE_ROWS)
        memory = io.BytesIO()
        with h5py.File(memory, "w") as probe:
            for group, parts in (("layers", buf.activations), ("maps", buf.maps)):
                for name, blocks in parts.items():
                    like = self._h5[group][name]
                    rows = _first_rows(blocks, sample)
                    probe.create_dataset(
                        f"{group}/{name}",
                        data=rows,
                        chunks=(min(like.chunks[0], sample), *like.chunks[1:]),
                        compression=like.compression,
                        shuffle=like.shuffle,
                        fletcher32=like.fletcher32,
                    )
        return small + int(memory.getbuffer().nbytes * take / sample)

    def _require_space(self, n_rows: int) -> None:
        """Raise `DiskFull` (and stop) unless the file system has room for `n_rows` more rows."""
        need = int(self._band_bytes(n_rows) * SPACE_MARGIN) + HEADROOM_BYTES
        free = shutil.disk_usage(self.path.parent).free
        if free < need:
            self.stopped = True
            raise DiskFull(
                f"the disk of {self.path} is full: {_size(free)} free, the next "
                f"{n_rows:,} rows need about {_size(need)}. The file keeps its "
                f"{self._n_complete:,} complete rows; free some space (or move the file and "
                "give --out), then run the same command again: it resumes there."
            )

    def _sync(self) -> None:
        """Flush HDF5's buffers and make the operating system write them to the disk."""
        self._h5.flush()
        with contextlib.suppress(OSError, TypeError, ValueError):  # a driver without an fd
            os.fsync(self._h5.id.get_vfd_handle())

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
        self._require_space(take)
        size_before = self.path.stat().st_size
        try:
            self._write_band(start, stop, take)
        except (OSError, RuntimeError) as exc:  # h5py raises either for a failed write
            self.stopped = True
            if getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT) or "errno = 28" in str(
                exc
            ):
                raise DiskFull(
                    f"the disk of {self.path} filled up while a band was being written (another "
                    f"process wrote at the same time?); the file kept {self._n_complete:,} "
                    "complete rows. Free some space, then run the same command again: it "
                    "resumes, or says that the file must be deleted if HDF5 cannot read it."
                ) from exc
            raise
        per_row = max(0, self.path.stat().st_size - size_before) / take
        self._bytes_per_row = max(self._bytes_per_row or 0.0, per_row)

    def _write_band(self, start: int, stop: int, take: int) -> None:
        buf = self._buffer
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
        self._sync()
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

    # -------------------------------------------------------------- damaged last band

    def drop_unreadable_bands(self) -> int:
        """Step ``n_complete`` back, a band at a time, while the last complete band of some
        row dataset does not read back (see the module docstring); the number of rows dropped."""
        before = self._n_complete
        while self._n_complete > 0:
            start = ((self._n_complete - 1) // self.chunk_rows) * self.chunk_rows
            if self._band_reads(start, self._n_complete):
                break
            self._n_complete = start
        if self._n_complete == before:
            return 0
        self._n_consumed = self._consumed_after(self._n_complete)
        self._h5.attrs["n_complete"] = self._n_complete
        self._h5.attrs["n_consumed"] = self._n_consumed
        self._sync()
        return before - self._n_complete

    def _band_reads(self, start: int, stop: int) -> bool:
        """Whether rows [start, stop) of every row dataset decompress, read chunk by chunk."""
        for ds in self._row_datasets():
            selection = (slice(start, stop),) + (slice(None),) * (ds.ndim - 1)
            try:
                for part in ds.iter_chunks(selection) if ds.chunks else [selection]:
                    ds[part]
            except (OSError, ValueError, RuntimeError):
                return False
        return True

    def _consumed_after(self, n_rows: int) -> int:
        """The dataset items gone through up to row `n_rows` (rows plus the skipped images
        among them): one past the source index of row ``n_rows - 1``."""
        if n_rows == 0:
            return 0
        skipped = np.sort(self._h5["skipped"]["source_index"][...])
        index = n_rows - 1
        while True:  # the smallest s with s = (n_rows - 1) + #skipped items at or before s
            moved = n_rows - 1 + int(np.searchsorted(skipped, index, side="right"))
            if moved == index:
                return index + 1
            index = moved
