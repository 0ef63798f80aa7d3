"""Reading a dump: every check an import makes before it writes, then the files as Arrow.

Before the import's transaction begins (`open_dump`): the manifest's format and version,
the schema revision, every file's size and sha256, and every Parquet file's footer — its
columns and types against the table's spec, its row count against the manifest. A file
damaged past its footer fails while its rows are read (every page carries a CRC, checked
on reading), inside the transaction, which then writes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from catalogue.errors import InputError
from catalogue.share.manifest import Manifest, check_revision, read_manifest, verify_files
from catalogue.share.spec import IMAGES, TABLES, DumpTable

BATCH_ROWS = 1 << 18


def _plain(kind: pa.DataType) -> pa.DataType:
    """A dictionary type as its value type (Parquet readers may give either)."""
    return kind.value_type if pa.types.is_dictionary(kind) else kind


def _compatible(found: pa.DataType, expected: pa.DataType) -> bool:
    found = _plain(found)
    if pa.types.is_large_string(found) and pa.types.is_string(expected):
        return True
    if pa.types.is_list(found) and pa.types.is_list(expected):
        return _compatible(found.value_type, expected.value_type)
    return found.equals(expected)


def damaged(path: Path, exc: BaseException) -> InputError:
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return InputError(
        f"{path} is not a readable Parquet file ({reason}); the dump is damaged: copy or "
        "export it again."
    )


@dataclass
class Dump:
    """A checked dump folder: its manifest and its files."""

    folder: Path
    manifest: Manifest

    def path(self, name: str) -> Path:
        return self.folder / name

    def batches(self, table: DumpTable) -> Iterator[pa.Table]:
        """A table's rows in batches, as the spec's schema (dictionaries decoded)."""
        yield from self._batches(table.file, table.schema())

    def read(self, table: DumpTable) -> pa.Table:
        parts = list(self.batches(table))
        return pa.concat_tables(parts) if parts else table.schema().empty_table()

    def image_batches(self, kind: str) -> Iterator[pa.Table]:
        for name in self.manifest.files_of(f"images:{kind}"):
            yield from self._batches(name, IMAGES[kind])

    def _batches(self, name: str, schema: pa.Schema) -> Iterator[pa.Table]:
        path = self.path(name)
        try:
            with pq.ParquetFile(path, page_checksum_verification=True) as handle:
                for batch in handle.iter_batches(batch_size=BATCH_ROWS, columns=schema.names):
                    yield pa.Table.from_batches([batch]).cast(schema)
        except (OSError, pa.ArrowException) as exc:
            raise damaged(path, exc) from exc


def _check_file(path: Path, schema: pa.Schema, rows: int) -> None:
    try:
        with pq.ParquetFile(path) as handle:
            found = handle.schema_arrow
            n = handle.metadata.num_rows
    except (OSError, pa.ArrowException) as exc:
        raise damaged(path, exc) from exc
    for f in schema:
        if f.name not in found.names:
            raise InputError(
                f"{path} has no column {f.name!r}; the dump does not follow its format: "
                "export it again."
            )
        if not _compatible(found.field(f.name).type, f.type):
            raise InputError(
                f"{path}: column {f.name!r} is {found.field(f.name).type}, not {f.type}; the "
                "dump does not follow its format: export it again."
            )
    if n != rows:
        raise InputError(
            f"{path} holds {n:,} rows, the manifest says {rows:,}; the dump is damaged: copy "
            "or export it again."
        )


def open_dump(folder: Path, head: str) -> Dump:
    """The dump in `folder`, every check before writing made (see the module docstring)."""
    folder = Path(folder).expanduser()
    manifest = read_manifest(folder)
    check_revision(manifest, head)
    missing = [t.file for t in TABLES if t.file not in manifest.files]
    if missing:
        raise InputError(
            f"the manifest of {folder} lists no {missing[0]}; the dump is incomplete: export "
            "it again."
        )
    verify_files(folder, manifest)
    for table in TABLES:
        _check_file(folder / table.file, table.schema(), manifest.rows(table.table))
    for kind, schema in IMAGES.items():
        for name in manifest.files_of(f"images:{kind}"):
            _check_file(folder / name, schema, int(manifest.files[name]["rows"]))
    return Dump(folder, manifest)
