"""A run extracted in shards: one store file per range of images, read as one store.

Why: on a cluster (`catalogue.cluster`) each worker writes its own file —
HDF5 files have one writer — and a killed run should redo only what is
missing. The images ``0:n`` are cut into consecutive shards whose starts are
multiples of the batch size, so every image is computed in the same batch as
in a one-process run and the values are identical. Each shard is an ordinary
store (`ActivationStore`, with its crash-safe bands) under ``<run>.shards/``,
named by its range, so that a re-run finds what is complete, what is partial
(resumed from its last band) and what is missing.

When every shard is complete, `write_master` writes the run's file itself: the
same layout as a one-process store (`catalogue.store`), where ``layers/*`` and
``maps/*`` are HDF5 *virtual datasets* that read the shards' rows in place
(no copy of the activations) and the small per-image datasets (labels,
predictions, keys …) are copied. `ActivationStore.open` therefore reads a
sharded run exactly like any other, so scoring, the UI and everything
downstream see one layer. The shard paths are stored relative to the run's
file; the ``.shards`` folder must stay beside it (`open_h5` refuses a run whose
shards are gone rather than reading HDF5's fill value of zeros).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from catalogue.errors import InputError
from catalogue.store.layout import STR, now, open_h5

#: default images per shard (rounded up to a multiple of the batch size)
DEFAULT_SHARD_IMAGES = 4096
SHARD_GLOB = "shard-*.h5"
ROW_DATASETS = ("labels", "predictions", "correct", "image_keys")


@dataclass(frozen=True)
class Shard:
    """Images ``start:stop`` of a run, written to ``path``."""

    index: int
    start: int
    stop: int
    path: Path

    @property
    def n_items(self) -> int:
        return self.stop - self.start

    def state(self) -> tuple[str, int]:
        """(``missing`` | ``unreadable`` | ``partial`` | ``complete``, images already gone through).

        ``unreadable``: a file cut off before its first flush (a kill during
        creation); it holds no rows and is written again. A shard that another
        process still writes raises the one-line lock error of `open_h5`.
        """
        if not self.path.exists():
            return "missing", 0
        try:
            h5 = open_h5(self.path, "r")
        except InputError as exc:
            if "open in another process" in str(exc):
                raise
            return "unreadable", 0
        with h5:
            if h5.attrs.get("status") == "complete":
                return "complete", self.n_items
            return "partial", max(0, int(h5.attrs.get("n_consumed", 0)) - self.start)


def shard_dir(run_path: str | os.PathLike[str]) -> Path:
    """Where the shards of the run stored at ``run_path`` live: ``<run>.shards/`` beside it."""
    path = Path(run_path)
    return path.with_name(path.stem + ".shards")


def plan_shards(
    run_path: str | os.PathLike[str], n_items: int, shard_images: int, batch_size: int
) -> list[Shard]:
    """Cut images ``0:n_items`` into shards of ``shard_images`` (a multiple of ``batch_size``).

    Shard files already in the folder must have come from the same cut (a
    re-run with another shard size would mix them): anything else is refused.
    """
    if shard_images < 1:
        raise InputError(f"--shard-images must be at least 1, got {shard_images}.")
    size = -(-shard_images // batch_size) * batch_size
    folder = shard_dir(run_path)
    shards = [
        Shard(
            i, start, min(start + size, n_items), folder / _name(start, min(start + size, n_items))
        )
        for i, start in enumerate(range(0, n_items, size))
    ]
    planned = {s.path.name for s in shards}
    foreign = sorted(p.name for p in folder.glob(SHARD_GLOB) if p.name not in planned)
    if foreign:
        raise InputError(
            f"{folder} holds shards of another cut ({foreign[0]} …); re-run with the shard size "
            f"and batch size used before, or delete {folder}."
        )
    return shards


def _name(start: int, stop: int) -> str:
    return f"shard-{start:010d}-{stop:010d}.h5"


def write_master(
    run_path: str | os.PathLike[str], shards: Sequence[Shard], runtime: dict[str, Any]
) -> Path:
    """Write the run's file over its complete shards (see the module docstring); returns its path.

    The file is written under a temporary name and renamed, so the run's path
    holds either nothing or a complete store.
    """
    path = Path(run_path)
    tmp = path.with_name(path.name + ".tmp")
    missing = [s.path.name for s in shards if not s.path.is_file()]
    if missing:
        raise InputError(f"shard {missing[0]} is missing; resume the extraction.")
    opened = [h5py.File(s.path, "r") for s in shards]
    try:
        incomplete = [
            s.path.name
            for s, h5 in zip(shards, opened, strict=True)
            if h5.attrs.get("status") != "complete"
        ]
        if incomplete:
            raise InputError(f"shard {incomplete[0]} is not complete; resume the extraction.")
        with h5py.File(tmp, "w") as out:
            _write_master(out, path.parent, shards, opened, runtime)
        os.replace(tmp, path)
    finally:
        for h5 in opened:
            h5.close()
        tmp.unlink(missing_ok=True)
    return path


def _write_master(
    out: h5py.File,
    folder: Path,
    shards: Sequence[Shard],
    opened: Sequence[h5py.File],
    runtime: dict[str, Any],
) -> None:
    first = opened[0]
    rows = [int(h5.attrs["n_complete"]) for h5 in opened]
    offsets = np.concatenate([[0], np.cumsum(rows)])
    n = int(offsets[-1])
    for key in ("format", "format_version", "params", "versions", "layer_order", "chunk_rows"):
        out.attrs[key] = first.attrs[key]
    out.attrs["runtime"] = json.dumps(runtime, sort_keys=True, default=str)
    out.attrs["created_at"] = min(str(h5.attrs["created_at"]) for h5 in opened)
    relative = [os.path.relpath(s.path, folder) for s in shards]
    out.attrs["shards"] = json.dumps(relative)

    def virtual(name: str) -> None:
        template = first[name]
        layout = h5py.VirtualLayout(shape=(n, *template.shape[1:]), dtype=template.dtype)
        for source, lo, count in zip(relative, offsets[:-1], rows, strict=True):
            if count:
                layout[lo : lo + count] = h5py.VirtualSource(
                    source, name, shape=(count, *template.shape[1:])
                )
        ds = out.create_virtual_dataset(name, layout)
        for key, value in template.attrs.items():
            ds.attrs[key] = value

    out.create_group("layers")
    for name in json.loads(first.attrs["layer_order"]):
        virtual(f"layers/{name}")
    if "maps" in first:
        out.create_group("maps")
        for name in first["maps"]:
            virtual(f"maps/{name}")
    for name in ROW_DATASETS:
        parts = [h5[name][0:count] for h5, count in zip(opened, rows, strict=True)]
        data = np.concatenate(parts) if parts else np.empty(0, dtype=first[name].dtype)
        kwargs: dict[str, Any] = {"dtype": STR} if name == "image_keys" else {}
        out.create_dataset(name, data=data, maxshape=(None,), chunks=first[name].chunks, **kwargs)
    out.create_group("classes")
    for name in ("keys", "names"):
        out.create_dataset(f"classes/{name}", data=first[f"classes/{name}"][...], dtype=STR)
    out.create_group("skipped")
    for name, dtype in (("keys", STR), ("reasons", STR), ("source_index", np.int64)):
        data = np.concatenate([h5[f"skipped/{name}"][...] for h5 in opened])
        out.create_dataset(
            f"skipped/{name}", data=data, dtype=dtype, maxshape=(None,), chunks=(1024,)
        )
    out.attrs["n_complete"] = n
    out.attrs["n_consumed"] = shards[-1].stop
    out.attrs["finished_at"] = now()
    out.attrs["status"] = "complete"
