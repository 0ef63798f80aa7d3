"""Bad dumps and faults of `unitcat export` / `unitcat import`, through the real executable:
one line saying what is wrong and what to do, a non-zero exit, nothing half-written in the
database, and no folder that looks like a complete dump (docs/RELIABILITY.md)."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.pool import NullPool

from catalogue.db.identities import LayerSpec, register_model
from catalogue.share.manifest import sha256_file
from tests.cli import UNITCAT, unitcat
from tests.lifecycle_builders import assert_one_line_fault
from tests.share_builders import SharedCatalogue, table_counts, view_rows
from tests.test_faults import small_filesystem
from tests.ui_fixtures import UICatalogue

pytest_plugins = ("tests.share_fixtures",)


def _env(url: str, home: Path) -> dict[str, str]:
    return {"DATABASE_URL": url, "UNITCAT_HOME": str(home)}


def _artifacts(catalogue: UICatalogue) -> Path:
    """The artifacts folder the test catalogue's AM panel was made in (its stored path,
    am/…/fc6_3.png, is relative to it)."""
    return catalogue.panel_path.parents[2]


def _catalogue_env(catalogue: UICatalogue, home: Path) -> dict[str, str]:
    """The environment of a command on the test catalogue with a UNITCAT_HOME of the test's
    own that holds a copy of the catalogue's AM panels (stored relative to a home's
    artifacts), so that what one test moves or imports there no other test sees."""
    shutil.copytree(_artifacts(catalogue) / "am", home / "artifacts" / "am", dirs_exist_ok=True)
    return _env(catalogue.url, home)


def _nothing_written(engine: Engine) -> None:
    assert set(table_counts(engine).values()) == {0}


def _copy(dump: Path, tmp_path: Path) -> Path:
    out = tmp_path / "dump"
    shutil.copytree(dump, out)
    return out


def _rewrite_manifest(dump: Path, change: Callable[[dict], None]) -> None:
    manifest = json.loads((dump / "manifest.json").read_text())
    change(manifest)
    (dump / "manifest.json").write_text(json.dumps(manifest))


def _flip(path: Path, at: int) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))


def _recount(dump: Path, name: str) -> None:
    """The manifest's size and sha256 of a file made to agree with it again (a dump written
    wrong, not damaged in transit)."""

    def change(manifest: dict) -> None:
        manifest["files"][name]["bytes"] = (dump / name).stat().st_size
        manifest["files"][name]["sha256"] = sha256_file(dump / name)

    _rewrite_manifest(dump, change)


def _truncate(dump: Path) -> None:
    path = dump / "unit_metrics.parquet"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _changed_byte(dump: Path) -> None:
    path = dump / "unit_metrics.parquet"
    _flip(path, path.stat().st_size // 2)


def _damaged_page(dump: Path) -> None:
    path = dump / "unit_top_image.parquet"
    _flip(path, 64)  # inside the first data page; the footer is intact
    _recount(dump, "unit_top_image.parquet")


def _damaged_footer(dump: Path) -> None:
    path = dump / "unit_metrics.parquet"
    _flip(path, path.stat().st_size - 2)
    _recount(dump, "unit_metrics.parquet")


def _newer_format(dump: Path) -> None:
    _rewrite_manifest(dump, lambda m: m.update(format_version=m["format_version"] + 1))


def _other_revision(dump: Path) -> None:
    _rewrite_manifest(dump, lambda m: m.update(schema_revision="0001"))


def _missing_file(dump: Path) -> None:
    (dump / "images" / "am_panel-00000.parquet").unlink()


def _no_manifest(dump: Path) -> None:
    (dump / "manifest.json").unlink()


BAD_DUMPS = {
    "truncated": (_truncate, "is truncated or was changed"),
    "changed byte": (_changed_byte, "does not match its sha256"),
    "damaged page": (_damaged_page, "is not a readable Parquet file"),
    "damaged footer": (_damaged_footer, "is not a readable Parquet file"),
    "newer format": (_newer_format, "upgrade unitcat to import it"),
    "other schema revision": (_other_revision, "schema revision 0001"),
    "missing file": (_missing_file, "is missing from the dump"),
    "no manifest": (_no_manifest, "is not a unitcat dump"),
}


@pytest.mark.parametrize("case", list(BAD_DUMPS))
def test_a_bad_dump_is_refused_in_one_line_and_nothing_is_written(
    case: str, ui_dump: Path, empty: Engine, tmp_path: Path
) -> None:
    damage, message = BAD_DUMPS[case]
    dump = _copy(ui_dump, tmp_path)
    damage(dump)
    home = tmp_path / "home"
    line = assert_one_line_fault(
        unitcat("import", str(dump), env=_env(str(empty.url.render_as_string(False)), home)), 2
    )
    assert message in line, line
    _nothing_written(empty)
    assert not list((home / "artifacts").rglob("*.png"))


def test_a_model_name_used_by_other_weights_is_refused_naming_rename(
    shared_catalogue: SharedCatalogue, shared_dump: Path, empty: Engine, tmp_path: Path
) -> None:
    with empty.begin() as conn:
        register_model(
            conn, name=shared_catalogue.model, architecture="other", weights="other",
            checksum="0" * 64, layers=[LayerSpec("fc6", "fc", 3, 0)],
        )  # fmt: skip
    before = table_counts(empty)
    env = _env(empty.url.render_as_string(False), tmp_path / "home")
    line = assert_one_line_fault(unitcat("import", str(shared_dump), env=env), 2)
    assert f"model {shared_catalogue.model!r} of the dump has other weights" in line
    assert f"--rename {shared_catalogue.model}=" in line
    assert table_counts(empty) == before

    renamed = f"{shared_catalogue.model}-b"
    done = unitcat(
        "import", str(shared_dump), "--rename", f"{shared_catalogue.model}={renamed}", env=env
    )
    assert done.returncode == 0, done.stderr
    with empty.connect() as conn:
        models = dict(conn.execute(text("SELECT name, checksum FROM model")).all())
        extract = conn.execute(
            text(
                "SELECT r.params->>'model' FROM run r JOIN model m ON m.id = r.model_id "
                "WHERE r.kind = 'extract' AND m.name = :n"
            ),
            {"n": renamed},
        ).scalar_one()
    assert models[shared_catalogue.model] == "0" * 64
    assert models[renamed] == shared_catalogue.checksum
    assert extract == renamed


def _waiting_on_a_lock(engine: Engine, query: str) -> int | None:
    with engine.connect() as conn:
        return conn.execute(
            text(
                "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE :q"
            ),
            {"q": query},
        ).scalar_one_or_none()


def _hold_until_waiting(process: subprocess.Popen, engine: Engine, query: str) -> int:
    """The server pid of `process`'s backend once it waits for a lock the test holds."""
    while (pid := _waiting_on_a_lock(engine, query)) is None:
        if process.poll() is not None:
            raise AssertionError(f"the command ended first: {process.communicate()}")
        time.sleep(0.05)
    return pid


def _gone(engine: Engine, pid: int) -> None:
    """Wait until the server has ended backend `pid`. Each look is a transaction of its own:
    within one transaction pg_stat_activity is a snapshot and would show the backend forever."""

    def alive() -> bool:
        with engine.connect() as conn:
            return bool(
                conn.execute(
                    text("SELECT count(*) FROM pg_stat_activity WHERE pid = :p"), {"p": pid}
                ).scalar_one()
            )

    for _ in range(6000):  # a guard against a hang, not a timing: the server ends it at once
        if not alive():
            return
        time.sleep(0.05)
    raise AssertionError(f"backend {pid} of the killed command is still there")


def test_an_import_killed_midway_leaves_the_catalogue_as_it_was(
    catalogue: UICatalogue, ui_dump: Path, empty: Engine, tmp_path: Path
) -> None:
    """The import has written its models, runs and results when it waits for the rating table
    (locked by the test); killed there with SIGKILL, the server rolls all of it back."""
    home = tmp_path / "home"
    env = {**_env(empty.url.render_as_string(False), home), "COLUMNS": "200"}
    import os

    holder = empty.connect()
    holder.execute(text("LOCK TABLE rating IN SHARE MODE"))
    process = subprocess.Popen(
        [UNITCAT, "import", str(ui_dump)], env={**os.environ, **env},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        backend = _hold_until_waiting(process, empty, 'COPY "rating"%')
        with empty.connect() as conn:  # midway: it has written into these (rows nobody sees)
            written = set(
                conn.execute(
                    text(
                        "SELECT c.relname FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                        "WHERE l.pid = :p AND l.mode = 'RowExclusiveLock' AND l.granted"
                    ),
                    {"p": backend},
                ).scalars()
            )
        process.kill()
        process.communicate()
    finally:
        holder.rollback()
        holder.close()
    _gone(empty, backend)
    assert {"model", "run", "unit_metrics", "unit_top_image", "dissection"} <= written
    _nothing_written(empty)
    again = unitcat("import", str(ui_dump), env=env)
    assert again.returncode == 0, again.stderr
    source = create_engine(catalogue.url, poolclass=NullPool)
    expected = view_rows(source)
    source.dispose()
    assert view_rows(empty) == expected
    assert not list((home / "artifacts" / "imported").glob(".staging-*"))


def test_an_interrupted_export_leaves_no_folder_that_looks_complete(
    catalogue: UICatalogue, empty: Engine, tmp_path: Path
) -> None:
    import os

    source = create_engine(catalogue.url, poolclass=NullPool)
    out = tmp_path / "out"
    env = {**os.environ, **_catalogue_env(catalogue, tmp_path / "home"), "COLUMNS": "200"}
    holder = source.connect()
    holder.execute(text("LOCK TABLE rating IN ACCESS EXCLUSIVE MODE"))
    process = subprocess.Popen(
        [UNITCAT, "export", str(out)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        backend = _hold_until_waiting(process, source, "%FROM rating t%")
        process.kill()
        process.communicate()
    finally:
        holder.rollback()
        holder.close()
    _gone(source, backend)
    source.dispose()
    partial = out.with_name("out.partial")
    assert not out.exists()
    assert (partial / "unit_metrics.parquet").is_file() and not (partial / "manifest.json").exists()
    line = assert_one_line_fault(
        unitcat("import", str(partial), env=_env(catalogue.url, tmp_path)), 2
    )
    assert "is not a unitcat dump" in line and "export again" in line

    again = unitcat("export", str(out), env=_catalogue_env(catalogue, tmp_path / "home"))
    assert again.returncode == 0, again.stderr
    assert (out / "manifest.json").is_file() and not partial.exists()


def test_a_full_disk_stops_the_export_in_one_line_and_leaves_nothing(
    catalogue: UICatalogue, tmp_path: Path
) -> None:
    with small_filesystem(tmp_path / "small", "64k") as small:
        out = small / "dump"
        line = assert_one_line_fault(
            unitcat("export", str(out), env=_catalogue_env(catalogue, tmp_path / "home")), 4
        )
        assert f"the disk of {out} is full" in line
        assert list(small.iterdir()) == []


def test_a_missing_image_stops_the_export_in_one_line_and_no_images_does_without(
    catalogue: UICatalogue, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    env = _catalogue_env(catalogue, home)
    panel = home / "artifacts" / catalogue.panel_path.relative_to(_artifacts(catalogue))
    panel.unlink()  # the test's copy
    line = assert_one_line_fault(unitcat("export", str(tmp_path / "a"), env=env), 2)
    without = unitcat("export", str(tmp_path / "b"), "--no-images", env=env)
    assert f"the AM panel {panel} of run {catalogue.am_run} is missing" in line
    assert "--no-images" in line
    assert not (tmp_path / "a").exists() and not (tmp_path / "a.partial").exists()
    assert without.returncode == 0, without.stderr
    assert not (tmp_path / "b" / "images").exists()

    engine = create_engine(catalogue.url, poolclass=NullPool)
    with engine.connect() as conn:
        first = conn.execute(
            text("SELECT image_key FROM unit_top_image WHERE rank = 1 ORDER BY image_key LIMIT 1")
        ).scalar_one()
    engine.dispose()
    key = catalogue.image_root / first
    moved = key.with_suffix(".away")
    key.rename(moved)
    try:
        line = assert_one_line_fault(unitcat("export", str(tmp_path / "c"), env=env), 2)
    finally:
        moved.rename(key)
    assert f"image {first!r} of run" in line
    assert not (tmp_path / "c").exists()


def test_an_existing_folder_is_not_overwritten_unless_asked(
    catalogue: UICatalogue, tmp_path: Path
) -> None:
    env = _catalogue_env(catalogue, tmp_path / "home")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "mine.txt").write_text("keep")
    line = assert_one_line_fault(
        unitcat("export", str(tmp_path / "notes"), "--overwrite", env=env), 2
    )
    assert "is not a unitcat dump" in line
    assert (tmp_path / "notes" / "mine.txt").read_text() == "keep"
    first = unitcat("export", str(tmp_path / "d"), "--no-images", env=env)
    assert first.returncode == 0, first.stderr
    line = assert_one_line_fault(unitcat("export", str(tmp_path / "d"), env=env), 2)
    assert "--overwrite" in line
    again = unitcat("export", str(tmp_path / "d"), "--overwrite", env=env)
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "d" / "images").is_dir()
