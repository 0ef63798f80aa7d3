"""`unitcat export OUT`: the catalogue (or some models and runs) as a folder of Parquet files.

The folder is written as `OUT.partial` and renamed to `OUT` only when every file,
`manifest.json` (last) and `croissant.json` are written and flushed to disk, so a folder
named `OUT` is always complete: an export that is killed, or stops on a full disk, leaves
at most `OUT.partial` (removed by the next export to `OUT`), which `unitcat import`
refuses because it has no manifest.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from sqlalchemy import Engine

import catalogue
from catalogue.db.engine import database_identity
from catalogue.db.migrate import current_revision
from catalogue.errors import DiskFull, InputError
from catalogue.provenance import code_commit
from catalogue.share import images as dump_images
from catalogue.share.croissant import croissant
from catalogue.share.manifest import (
    CROISSANT,
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    Manifest,
    file_entry,
    write_manifest,
)
from catalogue.share.read import (
    Plan,
    Selection,
    Snapshot,
    chosen_studies,
    plan_export,
    resolve,
    select_sql,
    snapshot,
)
from catalogue.share.spec import TABLES, DumpTable

#: (what, rows so far) as the export goes
Progress = Callable[[str, int], None]
#: tables written at once (each by its own connection to the same snapshot)
WRITERS = 2
#: ranks of each unit whose top images go into the dump by default
IMAGES_PER_UNIT = 20


@dataclass(frozen=True)
class ExportOptions:
    selection: Selection = field(default_factory=Selection)
    images: bool = True
    images_per_unit: int = IMAGES_PER_UNIT
    overwrite: bool = False
    max_image_file_bytes: int = dump_images.MAX_FILE_BYTES


@dataclass
class ExportResult:
    path: Path
    manifest: Manifest
    seconds: float

    @property
    def rows(self) -> dict[str, int]:
        return {t.table: self.manifest.rows(t.table) for t in TABLES}

    @property
    def n_images(self) -> int:
        return sum(self.manifest.rows(f"images:{k}") for k in dump_images.IMAGES)

    @property
    def bytes(self) -> int:
        return sum(int(f["bytes"]) for f in self.manifest.files.values())


def _check_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not overwrite:
        raise InputError(
            f"{out} exists already; give another folder, or --overwrite to replace the dump there."
        )
    if out.exists() and not (out / MANIFEST).is_file():
        raise InputError(
            f"{out} exists and is not a unitcat dump; give another folder (it is not replaced)."
        )
    if not out.parent.is_dir():
        raise InputError(f"the folder {out.parent} does not exist; create it first.")


def export_catalogue(
    engine: Engine,
    out: Path,
    options: ExportOptions | None = None,
    on_progress: Progress | None = None,
) -> ExportResult:
    """Write the dump of the chosen models and runs to `out` (see the module docstring)."""
    options = options or ExportOptions()
    if options.images_per_unit < 1:
        raise InputError(f"--images-per-unit must be at least 1, got {options.images_per_unit}.")
    out = Path(out).expanduser().absolute()
    _check_out(out, options.overwrite)
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    started = time.monotonic()
    try:
        partial.mkdir()
        manifest = _write(engine, partial, options, on_progress or (lambda *_: None))
        _sync(partial)
        _replace(partial, out)
    except OSError as exc:
        shutil.rmtree(partial, ignore_errors=True)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT) or "No space left" in str(exc):
            raise DiskFull(
                f"the disk of {out} is full; nothing was left there (the partial export was "
                "removed): free some space, or export to another disk."
            ) from exc
        raise
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return ExportResult(out, manifest, time.monotonic() - started)


def _write(engine: Engine, folder: Path, options: ExportOptions, on_progress: Progress) -> Manifest:
    files: dict[str, dict[str, Any]] = {}
    with snapshot(engine) as snap:
        plan = plan_export(snap, options.selection)
        table_rows = write_tables(engine, snap, plan, folder, on_progress)
        for table in TABLES:
            files[table.file] = file_entry(folder, table.file, table.table, table_rows[table.table])
        if options.images:
            for name, rows, kind in _write_images(engine, snap, plan, folder, options):
                files[name] = file_entry(folder, name, f"images:{kind}", rows)
        server = snap.table("SELECT current_setting('server_version') AS v").column(0)[0].as_py()
    manifest = Manifest(
        {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "unitcat_version": catalogue.__version__,
            "schema_revision": current_revision(engine),
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "source": {
                "host": socket.gethostname(),
                "catalogue": database_identity(engine),
                "database": engine.url.database,
                "postgresql": server,
                "commit": code_commit(),
            },
            "selection": {
                **options.selection.describe(),
                "images": options.images,
                "images_per_unit": options.images_per_unit if options.images else None,
            },
            "files": files,
        }
    )
    write_manifest(folder, manifest.data)
    document = croissant(
        manifest,
        name=f"unitcat catalogue {manifest.data['source']['catalogue']}",
        description="The hidden units of image classifiers with every selectivity measure, "
        "network dissection, ablation, baselines, AM panels and human ratings, exported "
        "by unitcat.",
    )
    (folder / CROISSANT).write_text(json.dumps(document, indent=2) + "\n")
    return manifest


def write_tables(
    engine: Engine, snap: Snapshot, plan: Plan, folder: Path, on_progress: Progress
) -> dict[str, int]:
    """Every table of the dump, by `WRITERS` threads: this snapshot's and one more
    connection each that joins it, taking the tables largest first (by the server's
    estimate). On two cores the server's reading of one table, ADBC's decoding and
    Parquet's encoding of another overlap (both release the GIL). Rows by table."""
    estimate = {
        row["relname"]: row["reltuples"]
        for row in snap.table(
            "SELECT relname::text, reltuples::float8 FROM pg_class WHERE relkind = 'r'"
        ).to_pylist()
    }
    todo = sorted(TABLES, key=lambda t: -estimate.get(t.table, 0.0))
    lock = threading.Lock()
    stop = threading.Event()
    failures: list[BaseException] = []
    rows: dict[str, int] = {}

    def progress(table: str, n: int) -> None:
        if stop.is_set():
            raise _Stopped
        with lock:
            on_progress(table, n)

    def work(own: Snapshot) -> None:
        while True:
            with lock:
                if not todo:
                    return
                table = todo.pop(0)
            n = write_table(own, plan, table, folder, progress)
            with lock:
                rows[table.table] = n

    def joined(shared: str) -> None:
        with snapshot(engine, joining=shared) as own:
            work(own)

    def guarded(job: Callable[[], None]) -> None:
        """Run a writer; the first failure stops the others at their next batch."""
        try:
            job()
        except _Stopped:
            pass
        except BaseException as exc:
            with lock:
                failures.append(exc)
            stop.set()

    shared = snap.share()
    try:
        with ThreadPoolExecutor(max(WRITERS - 1, 1)) as pool:
            for _ in range(WRITERS - 1):
                pool.submit(guarded, lambda: joined(shared))
            guarded(lambda: work(snap))
    except BaseException:  # interrupted while waiting for the others: they stop too
        stop.set()
        raise
    if failures:
        raise failures[0]
    return rows


class _Stopped(Exception):
    """Another writer failed: this one stops at its next batch."""


def write_table(
    snap: Snapshot, plan: Plan, table: DumpTable, folder: Path, on_progress: Progress
) -> int:
    """One table's rows of the plan into `<table>.parquet` (zstd); the number of rows."""
    schema = table.schema().with_metadata(
        {"unitcat:table": table.table, "unitcat:key": ",".join(table.key)}
    )
    rows = 0
    with pq.ParquetWriter(
        folder / table.file, schema, compression="zstd", write_page_checksum=True
    ) as writer:
        for batch in snap.batches(select_sql(table, plan)):
            resolved = resolve(batch, table, plan, schema)
            writer.write_table(resolved)
            rows += resolved.num_rows
            on_progress(table.table, rows)
    return rows


def _write_images(
    engine: Engine, snap: Snapshot, plan: Plan, folder: Path, options: ExportOptions
) -> list[tuple[str, int, str]]:
    written: list[tuple[str, int, str]] = []
    top = dump_images.ImageFiles(folder, "image", options.max_image_file_bytes)
    rows = snap.table(_image_sql(plan, options.images_per_unit)).to_pylist()
    for row in dump_images.encoded_top_images(engine, (dump_images.TopImage(**r) for r in rows)):
        top.add(row)
    written += [(name, n, "image") for name, n in top.close()]
    panels = dump_images.ImageFiles(folder, "am_panel", options.max_image_file_bytes)
    keys = plan.lookups["layer"]
    for row in snap.table(
        "SELECT t.run_id, u.layer_id, u.unit_index, t.path FROM am_panel t "
        f"JOIN unit u ON u.id = t.unit_id WHERE t.run_id = ANY({plan.ids(plan.run_ids)}) "
        "ORDER BY t.run_id, u.layer_id, u.unit_index"
    ).to_pylist():
        model, layer = keys[row["layer_id"]]
        data = dump_images.panel_bytes(row["run_id"], row["path"])
        panels.add(
            {
                "run": plan.run_keys[row["run_id"]],
                "model": model,
                "layer": layer,
                "unit": row["unit_index"],
                "image": {"bytes": data, "path": os.path.basename(row["path"])},
            }
        )
    written += [(name, n, "am_panel") for name, n in panels.close()]
    return written


def _image_sql(plan: Plan, per_unit: int) -> str:
    """Each image the dump shows once, by (dataset, key): the top and the least activating
    `per_unit` ranks of each unit, and every image of the exported 2-AFC trials (with the
    scoring run whose images they are, and a class where a ranked row gives one)."""
    runs, ranks = plan.ids(plan.run_ids), int(per_unit)
    ranked = [
        f"SELECT t.run_id, d.name AS dataset, t.image_key, t.class_index, {i} AS source "
        f"FROM {table} t JOIN run r ON r.id = t.run_id JOIN dataset d ON d.id = r.dataset_id "
        f"WHERE t.run_id = ANY({runs}) AND t.rank <= {ranks} AND t.image_key IS NOT NULL"
        for i, table in enumerate(("unit_top_image", "unit_bottom_image"))
    ]
    trials = (
        "SELECT s.score_run_id, d.name, k.key, NULL::integer, 2 FROM twoafc_trial tr "
        "JOIN twoafc_study s ON s.id = tr.study_id JOIN run r ON r.id = s.score_run_id "
        "JOIN dataset d ON d.id = r.dataset_id CROSS JOIN LATERAL unnest(ARRAY[tr.max_query_key, "
        "tr.min_query_key] || tr.max_reference_keys || tr.min_reference_keys) AS k(key) "
        f"WHERE tr.study_id IN ({chosen_studies(plan)}) AND k.key IS NOT NULL"
    )
    return (
        "SELECT run_id, dataset, image_key, class_index FROM (SELECT DISTINCT ON (dataset, "
        f"image_key) * FROM ({' UNION ALL '.join([*ranked, trials])}) a "
        "ORDER BY dataset, image_key, source, run_id) b ORDER BY run_id, image_key"
    )


def _sync(folder: Path) -> None:
    """Flush every file of the dump and the folders to disk before the rename."""
    for path in sorted(folder.rglob("*"), reverse=True):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _replace(partial: Path, out: Path) -> None:
    """`partial` becomes `out` (an existing dump there is replaced only once this one is whole)."""
    if out.exists():
        old = out.with_name(f"{out.name}.old-{os.getpid()}")
        os.rename(out, old)
        os.rename(partial, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(partial, out)
