"""`manifest.json`: what a dump is, and the checks an import makes before it writes anything.

    {"format": "unitcat-dump", "format_version": 2, "unitcat_version": "0.1.0",
     "schema_revision": "0073", "created_at": "…", "source": {…}, "selection": {…},
     "files": {"unit_metrics.parquet": {"table": "unit_metrics", "rows": 1000000,
               "bytes": 123456789, "sha256": "…"}, …}}

The format version changes when the layout of the files changes (a file, a key, a
column's meaning); a reader refuses a newer one. The schema revision is the Alembic
revision of the exporting catalogue: the columns of the files follow the schema, so a
dump imports into a catalogue at the same revision (`unitcat db upgrade` brings an older
catalogue there; an older dump is exported again by the unitcat that wrote it, or
imported into a catalogue that it created at its revision).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from catalogue.errors import InputError

FORMAT = "unitcat-dump"
FORMAT_VERSION = 2
MANIFEST = "manifest.json"
CROISSANT = "croissant.json"
_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class Manifest:
    data: dict[str, Any]

    @property
    def files(self) -> dict[str, dict[str, Any]]:
        return self.data["files"]

    def files_of(self, table: str) -> list[str]:
        """The files holding a table (or an image kind), in name order."""
        return sorted(name for name, f in self.files.items() if f.get("table") == table)

    def rows(self, table: str) -> int:
        return sum(int(self.files[f]["rows"]) for f in self.files_of(table))


def file_entry(folder: Path, name: str, table: str, rows: int) -> dict[str, Any]:
    path = folder / name
    return {
        "table": table,
        "rows": int(rows),
        "bytes": path.stat().st_size,
        "sha256": sha256_file(path),
    }


def write_manifest(folder: Path, data: dict[str, Any]) -> None:
    (folder / MANIFEST).write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")


def read_manifest(folder: Path) -> Manifest:
    """The manifest of a dump folder, its format checked (not yet its files)."""
    path = folder / MANIFEST
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder; give the folder `unitcat export` wrote.")
    if not path.is_file():
        hint = (
            " (a folder ending in .partial is an export that did not finish: export again)"
            if folder.name.endswith(".partial")
            else ""
        )
        raise InputError(
            f"{folder} is not a unitcat dump: it has no {MANIFEST}{hint}; give the folder "
            "`unitcat export` wrote."
        )
    try:
        data = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(
            f"{path} is not valid JSON ({exc}); the dump is damaged: copy or export it again."
        ) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InputError(
            f"{path} does not describe a {FORMAT} (format {data.get('format') if isinstance(data, dict) else None!r}); "
            "give the folder `unitcat export` wrote."
        )
    version = data.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise InputError(f"{path} has no valid format_version ({version!r}); the dump is damaged.")
    if version > FORMAT_VERSION:
        raise InputError(
            f"{folder} is in dump format {version}, newer than this unitcat "
            f"(unitcat {data.get('unitcat_version', '?')} wrote it; this unitcat reads format "
            f"{FORMAT_VERSION}); upgrade unitcat to import it."
        )
    if not isinstance(data.get("files"), dict):
        raise InputError(f"{path} lists no files; the dump is damaged: export it again.")
    return Manifest(data)


def check_revision(manifest: Manifest, head: str) -> None:
    """Refuse a dump of another schema revision, naming the way out."""
    revision = manifest.data.get("schema_revision")
    if revision == head:
        return
    raise InputError(
        f"the dump was exported from a catalogue at schema revision {revision}, this unitcat "
        f"is at {head}: its columns differ. Import it with the unitcat that exported it "
        f"(version {manifest.data.get('unitcat_version', '?')}), or export it again with "
        "this one from a catalogue upgraded by `unitcat db upgrade`."
    )


def _safe_name(folder: Path, name: str) -> Path:
    pure = PurePosixPath(name)
    if pure.is_absolute() or ".." in pure.parts or not pure.parts:
        raise InputError(f"the manifest of {folder} names a file outside the dump ({name!r}).")
    return folder / pure


def verify_files(folder: Path, manifest: Manifest) -> None:
    """Every file the manifest lists is there, with its size and sha256."""
    for name, entry in manifest.files.items():
        path = _safe_name(folder, name)
        if not path.is_file():
            raise InputError(
                f"{path} is missing from the dump (the manifest lists it); copy the whole "
                "folder again."
            )
        size = path.stat().st_size
        if size != entry.get("bytes"):
            raise InputError(
                f"{path} has {size:,} bytes, the manifest says {entry.get('bytes'):,}: the file "
                "is truncated or was changed; copy the dump again."
            )
        if sha256_file(path) != entry.get("sha256"):
            raise InputError(
                f"{path} does not match its sha256 in the manifest: the file is damaged or was "
                "changed; copy the dump again."
            )
