"""Every fault ends in one line that says what is wrong and what to do, a non-zero exit, and a
log file with the details (docs/RELIABILITY.md lists them): no traceback, no crash.

Real faults on real things: the embedded server stopped under a scoring, a small tmpfs that
fills up, a read-only mount, bytes of a chunk overwritten on disk, real deadlocks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from catalogue.db import migrate, server
from catalogue.errors import DiskFull
from catalogue.faults import explain
from catalogue.query.runs import run_records
from catalogue.store import ActivationStore, LayerSpec
from tests.cli import UNITCAT, unitcat
from tests.lifecycle_builders import (
    assert_one_line_fault,
    held_unitcat,
    running_owner,
    synthetic_extraction,
    wait_for,
)

# ------------------------------------------------------------------------------ file systems


def _mount(path: Path, options: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting a small file system needs root")
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")


@contextmanager
def small_filesystem(path: Path, size: str) -> Iterator[Path]:
    """A real file system of `size` (a tmpfs) at `path`."""
    _mount(path, f"size={size}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def _grow(path: Path, size: str) -> None:
    subprocess.run(["mount", "-o", f"remount,size={size}", str(path)], check=True)


@contextmanager
def read_only_folder(path: Path) -> Iterator[Path]:
    """A folder nobody can write to: a read-only mount as root, else a mode-555 folder."""
    if os.geteuid() != 0:
        path.mkdir()
        path.chmod(0o555)
        try:
            yield path
        finally:
            path.chmod(0o755)
        return
    _mount(path, "ro,size=1m")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


# ------------------------------------------------------------------------------ the database


def test_db_stop_during_a_scoring_is_one_line_and_the_run_reads_interrupted(
    tmp_path: Path, initialised_data_dir: Callable[[Path], Path]
) -> None:
    home = tmp_path / "home"
    env = {**os.environ, "UNITCAT_HOME": str(home), "COLUMNS": "200"}
    env.pop("DATABASE_URL", None)
    data_dir = initialised_data_dir(home / "postgres")
    engine = create_engine(server.start(data_dir), poolclass=NullPool)
    try:
        migrate.upgrade(engine)
        extract = synthetic_extraction(engine, tmp_path / "acts.h5", 3000, 400)
        gate = tmp_path / "held"
        scoring = held_unitcat(gate, "ingest", "score", str(extract), "--block-units", "1", env=env)
        wait_for(gate.exists, "scoring", process=scoring)
        assert running_owner(engine, "score") == scoring.pid
        stop = subprocess.run([UNITCAT, "db", "stop"], env=env, capture_output=True, text=True)
        assert stop.returncode == 0, stop.stderr
        assert scoring.poll() is None, "the scoring ended before the server stopped"
        out, err = scoring.communicate()  # closes its stdin: the scoring goes on
        line = assert_one_line_fault(
            subprocess.CompletedProcess([], scoring.returncode, out, err), 3
        )
        assert "lost its database session" in line and "run the same command again" in line
        assert Path(line.rsplit("Details: ", 1)[1]).parent == home / "logs"

        runs = subprocess.run([UNITCAT, "runs"], env=env, capture_output=True, text=True)
        assert runs.returncode == 0, runs.stderr
        assert "interrupted" in next(li for li in runs.stdout.splitlines() if " score " in li)
        again = subprocess.run(
            [UNITCAT, "ingest", "score", str(extract)], env=env, capture_output=True, text=True
        )
        assert again.returncode == 0, again.stderr
        assert [r["status"] for r in run_records(engine, kinds=("score",))] == ["done"]
    finally:
        engine.dispose()
        server.stop(data_dir)


def test_sigterm_marks_the_run_interrupted_in_one_line(engine: Engine, tmp_path: Path) -> None:
    extract = synthetic_extraction(engine, tmp_path / "acts.h5", 3000, 400)
    gate = tmp_path / "held"
    scoring = held_unitcat(
        gate, "ingest", "score", str(extract), "--block-units", "1",
        env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    wait_for(gate.exists, "scoring", process=scoring)
    assert running_owner(engine, "score") == scoring.pid
    scoring.send_signal(signal.SIGTERM)
    scoring.wait()  # before communicate() closes its stdin, which would let it go on
    out, err = scoring.communicate()
    result = subprocess.CompletedProcess([], scoring.returncode, out, err)
    assert result.returncode == 130
    assert "Traceback" not in out + err
    (line,) = [li for li in err.splitlines() if li.startswith("error:")]
    assert "SIGTERM: interrupted" in line
    (record,) = run_records(engine, kinds=("score",))
    assert (record["status"], record["recorded_status"]) == ("interrupted", "interrupted")


def test_a_database_url_that_does_not_parse_is_one_line() -> None:
    result = unitcat("query", "select 1", env={"DATABASE_URL": "postgresql://[::1"})
    line = assert_one_line_fault(result, 2)
    assert "DATABASE_URL is not a valid database URL" in line


def test_a_database_with_a_foreign_model_table_is_refused(
    database_factory: Callable[..., str],
) -> None:
    url = database_factory(migrated=False)
    engine = create_engine(url, poolclass=NullPool)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE model (x integer)"))
    for command in (("runs",), ("db", "upgrade"), ("query", "select 1")):
        line = assert_one_line_fault(unitcat(*command, env={"DATABASE_URL": url}), 3)
        assert "already has model" in line and "empty database" in line
    with engine.connect() as conn:  # nothing was created beside it
        tables = conn.execute(text("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"))
        assert tables.scalar_one() == 1
    engine.dispose()


def test_a_database_with_a_foreign_alembic_version_is_refused(
    database_factory: Callable[..., str],
) -> None:
    url = database_factory(migrated=False)
    engine = create_engine(url, poolclass=NullPool)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY)"))
        conn.execute(text("INSERT INTO alembic_version VALUES ('ab12cd34ef56')"))
    engine.dispose()
    for command in (("runs",), ("db", "upgrade")):
        line = assert_one_line_fault(unitcat(*command, env={"DATABASE_URL": url}), 3)
        assert "'ab12cd34ef56', which is not a unitcat revision" in line


def test_downgrade_to_an_unknown_revision_is_one_line(database_url: str) -> None:
    line = assert_one_line_fault(unitcat("db", "downgrade", "nosuchrev"), 2)
    assert "nosuchrev" in line and "Revisions: base, 0001" in line


def _real_error(engine: Engine, collide: Callable[[Engine], None]) -> DBAPIError:
    """The error one of two transactions gets when `collide` runs in two threads at once."""
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def worker(first: int) -> None:
        try:
            with engine.begin() as conn:
                collide_one(conn, first, barrier)
        except BaseException as exc:
            errors.append(exc)

    def collide_one(conn, first: int, barrier: threading.Barrier) -> None:
        collide(conn, first, barrier)  # type: ignore[call-arg]

    threads = [threading.Thread(target=worker, args=(i,)) for i in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(errors) == 1, errors
    assert isinstance(errors[0], DBAPIError)
    return errors[0]


def test_a_deadlock_is_a_deadlock_not_an_unreachable_database(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE pair (id integer PRIMARY KEY, n integer)"))
        conn.execute(text("INSERT INTO pair VALUES (1, 0), (2, 0)"))

    def opposite_order(conn, first: int, barrier: threading.Barrier) -> None:
        conn.execute(text("UPDATE pair SET n = n + 1 WHERE id = :i"), {"i": first})
        barrier.wait()
        conn.execute(text("UPDATE pair SET n = n + 1 WHERE id = :i"), {"i": 3 - first})

    error = _real_error(engine, opposite_order)
    fault = explain(error)
    assert error.orig.sqlstate == "40P01"
    assert "deadlock" in fault.message and "run it again" in fault.message
    assert "cannot reach" not in fault.message and "DATABASE_URL" not in fault.message
    assert fault.exit_code == 5


def test_a_serialization_failure_is_named_and_asks_for_a_rerun(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE counter (id integer PRIMARY KEY, n integer)"))
        conn.execute(text("INSERT INTO counter VALUES (1, 0)"))

    def read_then_write(conn, first: int, barrier: threading.Barrier) -> None:
        conn.execute(text("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE"))
        conn.execute(text("SELECT n FROM counter WHERE id = 1")).scalar_one()
        barrier.wait()
        conn.execute(text("UPDATE counter SET n = n + 1 WHERE id = 1"))

    error = _real_error(engine, read_then_write)
    fault = explain(error)
    assert error.orig.sqlstate == "40001"
    assert "serialization failure" in fault.message and "cannot reach" not in fault.message


def test_other_database_errors_are_classified_honestly(
    engine: Engine, database_factory: Callable[..., str]
) -> None:
    def error_of(sql: str, url: str | None = None) -> DBAPIError:
        eng = create_engine(url, poolclass=NullPool) if url else engine
        try:
            with eng.begin() as conn:
                conn.execute(text(sql))
        except DBAPIError as exc:
            return exc
        finally:
            if url:
                eng.dispose()
        raise AssertionError(f"{sql} did not fail")

    constraint = explain(
        error_of("INSERT INTO model (id, name, architecture) VALUES (1, 'a', 'x'), (2, 'a', 'x')")
    )
    assert "refused the write (constraint uq_model_name)" in constraint.message
    assert constraint.exit_code == 5
    missing = explain(error_of("SELECT * FROM no_such_table", database_factory(migrated=False)))
    assert "does not have the catalogue" in missing.message and missing.exit_code == 3
    unreachable = create_engine(
        "postgresql+psycopg://nobody@/x?host=/nonexistent-socket-dir", poolclass=NullPool
    )
    with pytest.raises(DBAPIError) as caught:
        unreachable.connect()
    assert "cannot reach the database" in explain(caught.value).message


# ------------------------------------------------------------------------------ UNITCAT_HOME


def test_a_space_in_unitcat_home_works_with_the_embedded_server(tmp_path: Path) -> None:
    home = tmp_path / "with space" / "unitcat home"
    env = {"UNITCAT_HOME": str(home), "DATABASE_URL": None}
    try:
        started = unitcat("db", "start", env=env)
        assert started.returncode == 0, started.stderr
        query = unitcat("query", "SELECT count(*) AS n FROM run_status", "--csv", env=env)
        assert query.returncode == 0, query.stderr
        assert query.stdout.split() == ["n", "0"]
        status = unitcat("db", "status", env=env)
        assert "running" in status.stdout and "up to date" in status.stdout
    finally:
        assert unitcat("db", "stop", env=env).returncode == 0


def test_a_read_only_unitcat_home_is_one_line(tmp_path: Path, database_url: str) -> None:
    with read_only_folder(tmp_path / "ro") as home:
        embedded = unitcat("db", "start", env={"UNITCAT_HOME": str(home), "DATABASE_URL": None})
        line = assert_one_line_fault(embedded, 2)
        assert f"cannot write to {home}" in line and "writable UNITCAT_HOME" in line
        # with a server elsewhere, reading needs no home; writing a run file says where it cannot
        env = {"UNITCAT_HOME": str(home)}
        assert unitcat("query", "SELECT 1", env=env).returncode == 0
        extract = unitcat("ingest", "extract", "--model", "alexnet", "--weights", "none",
                          "--num-classes", "10", "--dataset", "digits", "--limit", "4",
                          "--layers", "classifier.5", env=env)  # fmt: skip
        line = assert_one_line_fault(extract, 2)
        assert f"cannot create the folder {home / 'runs'}" in line


# ------------------------------------------------------------------------------ input


@pytest.mark.parametrize(
    ("unit", "message"),
    [
        ("99999999999999999999", "unit 99999999999999999999 is out of range"),
        ("1\x00", "contains a NUL byte"),
    ],
)
def test_a_ratings_csv_with_a_huge_unit_or_a_nul_byte_is_one_line(
    engine: Engine, tmp_path: Path, unit: str, message: str
) -> None:
    csv = tmp_path / "ratings.csv"
    csv.write_text(
        f"participant,model,layer,unit,answer,estimate,names\np1,toy,conv5,{unit},yes,,\n"
    )
    line = assert_one_line_fault(unitcat("ingest", "ratings", str(csv)), 2)
    assert message in line
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM rating")).scalar_one() == 0


# ------------------------------------------------------------------------------ a full disk

_EXTRACT = ("ingest", "extract", "--model", "alexnet", "--weights", "none", "--num-classes",
            "10", "--dataset", "digits", "--limit", "32", "--layers", "features.1",
            "--keep-maps")  # fmt: skip


def test_a_full_disk_stops_extraction_cleanly_and_it_resumes(
    engine: Engine, tmp_path: Path
) -> None:
    with small_filesystem(tmp_path / "small", "2m") as small:
        out = small / "acts.h5"
        result = unitcat(*_EXTRACT, "--out", str(out))
        line = assert_one_line_fault(result, 4)
        assert f"the disk of {out} is full" in line and "it resumes there" in line
        with ActivationStore.open(out) as store:  # a valid store with its complete rows
            assert store.n_complete == 0 and not store.is_complete
        (run,) = run_records(engine)
        assert run["status"] == "failed" and "DiskFull" in run["error"]

        _grow(small, "64m")
        again = unitcat(*_EXTRACT, "--out", str(out))
        assert again.returncode == 0, again.stderr
        with ActivationStore.open(out) as store:
            assert store.is_complete and store.n_complete == 32
        assert [r["status"] for r in run_records(engine)] == ["done"]


def test_a_finished_extraction_retried_onto_a_full_disk_keeps_its_file(
    engine: Engine, tmp_path: Path
) -> None:
    first = unitcat(*_EXTRACT, "--out", str(tmp_path / "acts.h5"))
    assert first.returncode == 0, first.stderr
    (run,) = run_records(engine)
    content = (tmp_path / "acts.h5").read_bytes()
    with small_filesystem(tmp_path / "small", "2m") as small:
        assert_one_line_fault(unitcat(*_EXTRACT, "--out", str(small / "acts.h5")), 4)
    (after,) = run_records(engine)
    assert (after["status"], after["h5_path"]) == ("done", str(tmp_path / "acts.h5"))
    assert after["finished_at"] == run["finished_at"]
    assert (tmp_path / "acts.h5").read_bytes() == content


def _rows(store: ActivationStore, rng: np.random.Generator, n: int, units: int, *, zeros=False):
    values = np.zeros((n, units), np.float32) if zeros else rng.random((n, units), np.float32)
    labels = rng.integers(0, 2, n)
    store.append(
        {"fc": values}, labels=labels, predictions=labels, image_keys=[f"i{k}" for k in range(n)]
    )
    return values


def test_the_space_check_stops_between_bands_and_the_store_resumes(tmp_path: Path) -> None:
    with small_filesystem(tmp_path / "small", "3m") as small:
        path = small / "acts.h5"
        rng = np.random.default_rng(0)
        written: list[np.ndarray] = []
        with ActivationStore.create(path, [LayerSpec("fc", 256)], class_keys=["a", "b"],
                                    chunk_rows=256) as store:  # fmt: skip

            def fill() -> None:
                for _ in range(40):  # 256 KiB of random floats a band: about 10 fit
                    written.append(_rows(store, rng, 256, 256))

            with pytest.raises(DiskFull, match="it resumes there"):
                fill()
            assert store.stopped
        with ActivationStore.open(path) as store:
            complete = store.n_complete
            assert complete > 0 and complete % 256 == 0
            np.testing.assert_array_equal(
                store.read_units("fc", 0, 256), np.concatenate(written)[:complete]
            )
        _grow(small, "32m")
        with ActivationStore.open_append(path) as store:
            assert store.n_consumed == complete
            rest = np.concatenate(written)[complete:]
            store.append({"fc": rest}, labels=np.zeros(len(rest)), predictions=np.zeros(len(rest)),
                         image_keys=["x"] * len(rest))  # fmt: skip
            store.finish()
        with ActivationStore.open(path) as store:
            np.testing.assert_array_equal(store.read_units("fc", 0, 256), np.concatenate(written))


_RACE = """
import sys
import numpy as np
from ingest.console import run_reporting_errors
from catalogue.store import ActivationStore, LayerSpec

def main():
    rng = np.random.default_rng(0)
    with ActivationStore.create(sys.argv[1], [LayerSpec("fc", 4096)], class_keys=["a", "b"],
                                chunk_rows=256) as store:
        for band in range(8):  # a band of zeros, then random floats that hardly compress
            values = np.zeros((256, 4096), np.float32) if band == 0 else rng.random((256, 4096), np.float32)
            store.append({"fc": values}, labels=np.zeros(256), predictions=np.zeros(256),
                         image_keys=["k"] * 256)

run_reporting_errors(main)
"""


def test_a_disk_that_fills_up_during_a_write_is_one_line_not_a_crash(tmp_path: Path) -> None:
    """The first band compresses to nothing, so the check lets the next (4 MiB) band through;
    the disk (3 MiB) fills up inside HDF5's write. One line, exit 4, no segfault."""
    with small_filesystem(tmp_path / "small", "3m") as small:
        path = small / "acts.h5"
        result = subprocess.run(
            [sys.executable, "-c", _RACE, str(path)], capture_output=True, text=True,
            env={**os.environ, "COLUMNS": "200"},
        )  # fmt: skip
        line = assert_one_line_fault(result, 4)
        assert f"the disk of {path} filled up while a band was being written" in line
        with ActivationStore.open(path) as store:  # the band of zeros survived
            assert store.n_complete == 256
            assert not store.read_units("fc", 0, 16).any()


# ------------------------------------------------------------------------------ a damaged band


def _overwrite_chunk(path: Path, dataset: str, row: int) -> None:
    """Replace the bytes of the chunk holding `row` (unit 0) with noise, on disk."""
    import h5py

    with h5py.File(path, "r") as h5:
        info = h5[dataset].id.get_chunk_info_by_coord((row,) + (0,) * (h5[dataset].ndim - 1))
    with open(path, "r+b") as handle:
        handle.seek(info.byte_offset)
        handle.write(np.random.default_rng(1).bytes(info.size))


def test_a_damaged_last_band_is_dropped_on_resume_and_computed_again(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    values = rng.random((200, 32), np.float32)
    labels = rng.integers(0, 3, 200)
    keys = [f"img{i}" for i in range(200)]
    skipped = {70: "corrupt", 150: "unreadable"}  # source indices of two skipped images
    sources = [i for i in range(202) if i not in skipped]  # each row's source index

    def _append(store: ActivationStore, rows: slice) -> None:
        added = {s for s in skipped if s < store.n_consumed}
        for i in range(rows.start, rows.stop):
            for s, reason in skipped.items():
                if s < sources[i] and s not in added:
                    store.add_skipped(f"bad{s}", reason, s)
                    added.add(s)
            store.append({"fc": values[i : i + 1]}, labels=labels[i : i + 1],
                         predictions=labels[i : i + 1], image_keys=keys[i : i + 1],
                         source_index=[sources[i]])  # fmt: skip

    def write(path: Path, rows: slice) -> ActivationStore:
        store = ActivationStore.create(path, [LayerSpec("fc", 32)], class_keys=["a", "b", "c"],
                                       chunk_rows=64)  # fmt: skip
        _append(store, rows)
        return store

    whole = tmp_path / "whole.h5"
    with write(whole, slice(0, 200)) as store:
        store.finish()

    damaged = tmp_path / "damaged.h5"
    store = write(damaged, slice(0, 192))  # three whole bands, as a killed run leaves them
    store._h5.close()  # killed: the buffered rows never reach the file
    _overwrite_chunk(damaged, "layers/fc", 128)  # the last complete band no longer reads

    with ActivationStore.open_append(damaged) as store:
        assert store.dropped_rows == 64 and store.n_complete == 128
        assert store.n_consumed == 129  # 128 rows and the image skipped at source index 70
        _append(store, slice(128, 200))
        store.finish()
    with ActivationStore.open(whole) as a, ActivationStore.open(damaged) as b:
        np.testing.assert_array_equal(a.read_units("fc", 0, 32), b.read_units("fc", 0, 32))
        np.testing.assert_array_equal(a.labels, b.labels)
        assert a.image_keys == b.image_keys and a.skipped == b.skipped
        assert a.n_consumed == b.n_consumed == 202


def test_an_unexpected_error_is_one_line_asking_for_a_report_with_its_log() -> None:
    script = (
        "from ingest.console import run_reporting_errors\nrun_reporting_errors(lambda: 1 / 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    line = assert_one_line_fault(result, 1)
    assert "unexpected error (ZeroDivisionError: division by zero)" in line
    assert "this is a bug" in line
    log = Path(line.rsplit("Details: ", 1)[1]).read_text()
    assert "ZeroDivisionError" in log and 'File "<string>"' in log
