"""Images in a dump: units' top images and AM panels as encoded bytes inside Parquet.

Each image is a `{bytes, path}` struct, the layout Hugging Face `datasets` reads as an
`Image` feature (the files carry its feature metadata, so `load_dataset("parquet", …)`
decodes them without being told). Images of a bundled dataset (arrays) and PNG files
are PNG; an image file in another format (an ImageNet JPEG) keeps its own bytes, since
re-encoding it as PNG would make it several times larger and change nothing it shows;
`path` names the file, so its format is known.

Top images: each distinct image (by dataset and key) once, for the top
`images_per_unit` ranks of each unit (the database keeps every rank's key and
activation in `unit_top_image.parquet`); AM panels: one per unit and AM run. Files
roll over at `max_file_bytes` (about 500 MB).

On import the bytes go to files under `UNITCAT_HOME/artifacts/imported/`, staged first
and moved into place just before the transaction commits (`StagedFiles`), so a failed
import leaves none behind and the UI shows them as it shows its own.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import Engine

from catalogue.errors import InputError
from catalogue.share.spec import IMAGES

MAX_FILE_BYTES = 500 * 1024 * 1024
_HF_TYPES = {pa.string(): "string", pa.int32(): "int32", pa.int64(): "int64"}


def hf_features(schema: pa.Schema) -> dict[str, Any]:
    """The Hugging Face `datasets` features of an image file's schema."""
    features: dict[str, Any] = {}
    for f in schema:
        if pa.types.is_struct(f.type):
            features[f.name] = {"_type": "Image"}
        else:
            features[f.name] = {"dtype": _HF_TYPES[f.type], "_type": "Value"}
    return features


def png_bytes(image: Any) -> bytes:
    """A PIL image as PNG."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def file_bytes(path: Path) -> bytes:
    return path.read_bytes()


class ImageFiles:
    """Writes rows of one image kind to `images/<kind>-00000.parquet`, … (≤ max_file_bytes)."""

    def __init__(self, folder: Path, kind: str, max_file_bytes: int = MAX_FILE_BYTES) -> None:
        self.folder = folder / "images"
        self.kind = kind
        self.schema = IMAGES[kind].with_metadata(
            {"huggingface": json.dumps({"info": {"features": hf_features(IMAGES[kind])}})}
        )
        self.max_file_bytes = max_file_bytes
        self.written: list[tuple[str, int]] = []  # (name relative to the dump, rows)
        self._rows: list[dict[str, Any]] = []
        self._bytes = 0
        self._writer: pq.ParquetWriter | None = None
        self._file_rows = 0
        self._file_bytes = 0

    def add(self, row: dict[str, Any]) -> None:
        self._rows.append(row)
        self._bytes += len(row["image"]["bytes"])
        if self._bytes >= 16 * 1024 * 1024:
            self._flush()

    def _flush(self) -> None:
        if not self._rows:
            return
        if self._writer is None or self._file_bytes + self._bytes > self.max_file_bytes:
            self._close_file()
            self.folder.mkdir(parents=True, exist_ok=True)
            name = f"images/{self.kind}-{len(self.written):05d}.parquet"
            self._writer = pq.ParquetWriter(
                self.folder.parent / name, self.schema, write_page_checksum=True
            )
            self.written.append((name, 0))
        table = pa.Table.from_pylist(self._rows, schema=self.schema)
        assert self._writer is not None
        self._writer.write_table(table)
        name, rows = self.written[-1]
        self.written[-1] = (name, rows + table.num_rows)
        self._file_bytes += self._bytes
        self._rows, self._bytes = [], 0

    def _close_file(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
            self._file_bytes = 0

    def close(self) -> list[tuple[str, int]]:
        self._flush()
        self._close_file()
        return self.written


# ------------------------------------------------------------------------------ export


@dataclass(frozen=True)
class TopImage:
    run_id: int
    dataset: str
    image_key: str
    class_index: int


def top_images_of_runs(rows: Iterable[TopImage]) -> dict[int, list[TopImage]]:
    by_run: dict[int, list[TopImage]] = {}
    seen: set[tuple[str, str]] = set()
    for row in rows:
        if (row.dataset, row.image_key) in seen:
            continue
        seen.add((row.dataset, row.image_key))
        by_run.setdefault(row.run_id, []).append(row)
    return by_run


def encoded_top_images(engine: Engine, rows: Iterable[TopImage]) -> Iterator[dict[str, Any]]:
    """Each distinct top image as a row of `images/image-*.parquet`, read where the UI
    finds it (`catalogue.query.files.attach_images`); a missing one stops the export."""
    from catalogue.query.files import attach_images

    for run_id, images in top_images_of_runs(rows).items():
        frame = attach_images(
            engine, run_id, pd.DataFrame({"image_key": [i.image_key for i in images]})
        )
        for image, found in zip(images, frame["image"], strict=True):
            if not isinstance(found, str) and not hasattr(found, "save"):  # None or NaN
                raise InputError(
                    f"image {image.image_key!r} of run {run_id} (dataset {image.dataset}) "
                    "is not readable on this machine; make the dataset's images readable where "
                    "the run read them, or export with --no-images."
                )
            if isinstance(found, str):
                data, path = file_bytes(Path(found)), image.image_key
            else:
                data, path = png_bytes(found), f"{image.image_key}.png"
            yield {
                "dataset": image.dataset,
                "image_key": image.image_key,
                "class_index": image.class_index,
                "image": {"bytes": data, "path": path},
            }


def panel_bytes(run_id: int, path: str) -> bytes:
    """An AM panel's PNG (stored relative to UNITCAT_HOME/artifacts, or absolute)."""
    from catalogue.config import get_settings
    from catalogue.query.files import artifact_path

    found = artifact_path(path)
    if found is None:
        where = get_settings().artifacts_dir / Path(path).expanduser()  # as UNITCAT_HOME reads it
        raise InputError(
            f"the AM panel {where} of run {run_id} is missing (or lies outside "
            "UNITCAT_HOME/artifacts); make AM panels again (`unitcat ingest am`), run with the "
            "UNITCAT_HOME that made them, or export with --no-images."
        )
    return Path(found).read_bytes()


# ------------------------------------------------------------------------------ import


def _alive(pid: str) -> bool:
    import psutil

    return pid.isdigit() and psutil.pid_exists(int(pid))


def imported_dir(artifacts: Path) -> Path:
    return artifacts / "imported"


def top_image_relative(dataset: str, key: str) -> PurePosixPath | None:
    """Where an imported top image goes under `artifacts/imported/images/`: its dataset's
    folder, then the key as a relative path; None for a key that is absolute or leaves
    its folder (kept in the dump only)."""
    pure = PurePosixPath(key)
    if pure.is_absolute() or ".." in pure.parts or not pure.parts:
        return None
    from catalogue.query.files import dataset_folder

    return PurePosixPath(dataset_folder(dataset)) / pure


def panel_relative(data: bytes) -> PurePosixPath:
    """An imported AM panel's path under `artifacts/` (by content: the same panel once)."""
    return PurePosixPath("imported", "am", f"{hashlib.sha256(data).hexdigest()[:32]}.png")


@dataclass
class StagedFiles:
    """Files an import writes: staged in a folder beside their place, moved there by
    `place` just before the transaction commits, and removed again by `undo` if the
    commit fails. A file already there is left as it is (an import again changes nothing)."""

    root: Path
    staging: Path = field(init=False)
    pending: dict[Path, Path] = field(default_factory=dict)
    placed: list[Path] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.staging = self.root / "imported" / f".staging-{os.getpid()}"
        for old in self.staging.parent.glob(".staging-*"):  # left by a killed import
            if old != self.staging and not _alive(old.name.rpartition("-")[2]):
                shutil.rmtree(old, ignore_errors=True)

    def add(self, relative: PurePosixPath, data: bytes) -> None:
        target = self.root / relative
        if target.exists() or target in self.pending:
            return
        staged = self.staging / f"{len(self.pending):08d}"
        staged.parent.mkdir(parents=True, exist_ok=True)
        staged.write_bytes(data)
        self.pending[target] = staged

    def place(self) -> None:
        for target, staged in self.pending.items():
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staged, target)
            self.placed.append(target)

    def undo(self) -> None:
        for target in self.placed:
            target.unlink(missing_ok=True)

    def clean(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)
