"""Run status that tells the truth: owners, interrupted runs, one owner at a time, failed
retries that keep a finished run, validation that writes nothing, class groups per run.

The CLI runs in subprocesses against a real PostgreSQL; processes are really killed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import Engine, text

from catalogue.db.owner import owner_alive, this_process
from catalogue.db.runs import current_state, find_run, lock_key, recorded_run, run_key
from catalogue.errors import InputError
from catalogue.pipeline.scoring import score_extraction
from catalogue.query.runs import list_runs, run_records
from catalogue.store import ActivationStore
from tests.cli import UNITCAT, unitcat
from tests.lifecycle_builders import (
    assert_one_line_fault,
    kill,
    running_owner,
    synthetic_extraction,
    wait_for,
)

REPO = Path(__file__).resolve().parents[1]


def _count(engine: Engine, sql: str, **params: object) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(sql), params).scalar_one())


def _run_row(engine: Engine, run_id: int) -> dict:
    with engine.connect() as conn:
        return dict(
            conn.execute(text("SELECT * FROM run WHERE id = :r"), {"r": run_id}).one()._mapping
        )


def _popen(*args: str) -> subprocess.Popen:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.Popen(
        [UNITCAT, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


# ------------------------------------------------------------------------------ owners


def test_this_process_is_alive_and_a_recycled_pid_is_not_its_owner() -> None:
    me = this_process()
    assert owner_alive(me.host, me.pid, me.started_at) is True
    assert me.started_at is not None
    # the same pid with another start time: a process that got a dead owner's pid
    earlier = me.started_at.replace(year=me.started_at.year - 1)
    assert owner_alive(me.host, me.pid, earlier) is False
    assert owner_alive("another-host", me.pid, me.started_at) is None  # cannot be checked here


def test_the_lock_key_is_what_pg_locks_shows(engine: Engine) -> None:
    key = run_key("score", {"x": 1})
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": lock_key(key)})
        hi, lo = conn.execute(
            text(
                "SELECT classid::bigint, objid::bigint FROM pg_locks "
                "WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
            )
        ).one()
        conn.execute(text("SELECT pg_advisory_unlock_all()"))
    assert (hi, lo) == (int(key[:8], 16), int(key[8:16], 16))


def test_a_run_records_its_owner_and_reads_running_while_it_runs(engine: Engine) -> None:
    me = this_process()
    with recorded_run(engine, "score", {"owner": 1}) as run:
        row = _run_row(engine, run.id)
        assert (row["owner_host"], row["owner_pid"]) == (me.host, me.pid)
        assert row["owner_started_at"] == me.started_at
        assert [r["status"] for r in run_records(engine)] == ["running"]
        with engine.connect() as conn:
            assert current_state(conn, find_run(conn, run.id)) == "running"
    assert [r["status"] for r in run_records(engine)] == ["done"]


def test_a_running_run_without_a_live_owner_reads_interrupted_everywhere(engine: Engine) -> None:
    """The row a killed process leaves: recorded running, nobody holds its lock."""
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO run (kind, key, status, owner_host, owner_pid) "
                "VALUES ('score', :k, 'running', 'elsewhere', 4242)"
            ),
            {"k": run_key("score", {"dead": 1})},
        )
        view = conn.execute(text("SELECT status, recorded_status FROM run_status")).one()
    assert tuple(view) == ("interrupted", "running")
    assert [r["status"] for r in run_records(engine)] == ["interrupted"]
    assert list(list_runs(engine, statuses=("interrupted",))["status"]) == ["interrupted"]
    assert list_runs(engine, statuses=("running",)).empty
    result = unitcat("runs")
    assert result.returncode == 0, result.stderr
    assert "interrupted" in result.stdout and "pid 4242 on elsewhere is gone" in result.stdout


# ------------------------------------------------------------------------------ kill -9


def test_a_scoring_killed_with_sigkill_reads_interrupted_and_a_rerun_takes_it_over(
    engine: Engine, tmp_path: Path
) -> None:
    extract = synthetic_extraction(engine, tmp_path / "acts.h5", 3000, 400)
    process = _popen("ingest", "score", str(extract), "--block-units", "1")
    wait_for(lambda: running_owner(engine, "score") == process.pid, "scoring", process=process)
    kill(process)

    runs = unitcat("runs", "--kind", "score")
    assert runs.returncode == 0, runs.stderr
    line = next(li for li in runs.stdout.splitlines() if "synth-400" in li)
    assert "interrupted" in line and f"pid {process.pid}" in line
    assert _count(engine, "SELECT count(*) FROM unit_metrics") == 0

    again = unitcat("ingest", "score", str(extract))
    assert again.returncode == 0, again.stderr
    assert "Traceback" not in again.stderr
    (record,) = run_records(engine, kinds=("score",))
    assert record["status"] == "done"
    assert record["owner_pid"] != process.pid
    assert _count(engine, "SELECT count(*) FROM unit_metrics") == 400


def test_an_interrupted_extraction_is_refused_at_once_with_the_fix(
    engine: Engine, tmp_path: Path
) -> None:
    """Scoring never waits for an extraction whose process is gone."""
    extract = synthetic_extraction(engine, tmp_path / "acts.h5", 50, 4)
    with engine.begin() as conn:  # as a killed `unitcat ingest extract` leaves it
        conn.execute(
            text("UPDATE run SET status = 'running', owner_pid = 4242 WHERE id = :r"),
            {"r": extract},
        )
    with pytest.raises(
        InputError, match=r"was interrupted .*run the same extraction again to resume it"
    ):
        score_extraction(engine, extract)
    result = unitcat("ingest", "score", str(extract))
    line = assert_one_line_fault(result, 2)
    assert "interrupted" in line and "to resume it" in line
    assert "re-run the same `unitcat ingest extract` command" in line  # the CLI's words
    assert _count(engine, "SELECT count(*) FROM run WHERE kind = 'score'") == 0


def test_a_running_extraction_is_refused_with_who_runs_it(engine: Engine, tmp_path: Path) -> None:
    extract = synthetic_extraction(engine, tmp_path / "acts.h5", 50, 4)
    with engine.begin() as conn:
        key = conn.execute(text("SELECT key FROM run WHERE id = :r"), {"r": extract}).scalar_one()
        conn.execute(text("UPDATE run SET status = 'running' WHERE id = :r"), {"r": extract})
    with engine.connect() as owner:  # a live owner: it holds the run's lock
        owner.execute(text("SELECT pg_advisory_lock(:k)"), {"k": lock_key(key)})
        owner.commit()
        with pytest.raises(InputError, match="is still running"):
            score_extraction(engine, extract)
        owner.execute(text("SELECT pg_advisory_unlock_all()"))
        owner.commit()


# ------------------------------------------------------------------------------ one owner


def test_three_scorings_of_one_run_at_once_end_with_one_set_of_rows(
    engine: Engine, tmp_path: Path
) -> None:
    extract = synthetic_extraction(engine, tmp_path / "acts.h5", 3000, 300)
    processes = [_popen("ingest", "score", str(extract), "--block-units", "1") for _ in range(3)]
    outputs = [p.communicate() for p in processes]
    for process, (out, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err
        assert "Traceback" not in out + err and "UniqueViolation" not in out + err
    (record,) = run_records(engine, kinds=("score",))
    assert record["status"] == "done" and record["error"] is None
    assert _count(engine, "SELECT count(*) FROM unit_metrics") == 300
    assert _count(engine, "SELECT count(DISTINCT unit_id) FROM unit_metrics") == 300
    assert _count(engine, "SELECT count(*) FROM unit_top_image") > 0
    waited = [err for _, err in outputs if "already running" in err]
    for err in waited:  # those that waited said so, and did not score it again
        assert "waiting for it to finish" in err
    finished_by_other = [out for out, _ in outputs if "by another unitcat process" in out]
    assert len(finished_by_other) == len(waited)


def test_a_second_owner_waits_for_the_first_and_finds_the_run_done(engine: Engine) -> None:
    params = {"wait": 1}
    with recorded_run(engine, "score", params) as first:
        script = (
            "from sqlalchemy import create_engine; import os\n"
            "from catalogue.db.runs import recorded_run\n"
            "e = create_engine(os.environ['DATABASE_URL'])\n"
            "with recorded_run(e, 'score', {'wait': 1}) as r:\n"
            "    print('elsewhere' if r.finished_elsewhere else 'computed', r.id)\n"
        )
        import sys

        second = subprocess.Popen(
            [sys.executable, "-c", script],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

        def waiting() -> bool:
            with engine.connect() as conn:
                return bool(
                    conn.execute(
                        text(
                            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                            "AND NOT granted"
                        )
                    ).scalar_one()
                )

        wait_for(waiting, "the second owner waits", process=second)
        first.complete()
    out, err = second.communicate()
    assert second.returncode == 0, err
    assert out.split() == ["elsewhere", str(first.id)]
    assert "is already running" in err


# ------------------------------------------------------------------------------ failed retries


def test_a_failed_retry_of_a_finished_run_leaves_it_as_it_was(
    engine: Engine, tmp_path: Path
) -> None:
    extract = synthetic_extraction(engine, tmp_path / "acts.h5", 200, 8)
    scored = score_extraction(engine, extract)
    before = _run_row(engine, scored.run_id)
    rows_before = _count(
        engine, "SELECT count(*) FROM unit_metrics WHERE run_id = :r", r=scored.run_id
    )

    def retry() -> None:
        with recorded_run(engine, "score", before["params"]) as run:
            assert run.id == scored.run_id and run.retry_of_done
            raise RuntimeError("lost the GPU")

    with pytest.raises(RuntimeError, match="lost"):
        retry()
    after = _run_row(engine, scored.run_id)
    assert after == before
    assert (
        _count(engine, "SELECT count(*) FROM unit_metrics WHERE run_id = :r", r=scored.run_id)
        == rows_before
    )
    assert [r["status"] for r in run_records(engine, kinds=("score",))] == ["done"]


def test_a_retry_with_bad_options_leaves_the_finished_runs_and_files_intact(
    engine: Engine, tmp_path: Path
) -> None:
    extract = synthetic_extraction(engine, tmp_path / "acts.h5", 200, 8)
    assert unitcat("ingest", "score", str(extract)).returncode == 0
    runs_before = [_run_row(engine, r["id"]) for r in run_records(engine)]
    file_before = (tmp_path / "acts.h5").read_bytes()

    result = unitcat("ingest", "score", str(extract), "--block-units", "0")
    assert "--block-units must be at least 1" in assert_one_line_fault(result, 2)
    assert [_run_row(engine, r["id"]) for r in run_records(engine)] == runs_before
    assert (tmp_path / "acts.h5").read_bytes() == file_before
    assert _count(engine, "SELECT count(*) FROM unit_metrics") == 8


def test_an_extraction_retried_into_a_directory_keeps_its_run_and_file(
    engine: Engine, tmp_path: Path
) -> None:
    common = ("ingest", "extract", "--model", "alexnet", "--weights", "none", "--num-classes",
              "10", "--dataset", "digits", "--limit", "8", "--layers", "classifier.5")  # fmt: skip
    first = unitcat(*common, "--out", str(tmp_path / "a.h5"))
    assert first.returncode == 0, first.stderr
    (run,) = run_records(engine)
    before = _run_row(engine, run["id"])
    content = (tmp_path / "a.h5").read_bytes()
    (tmp_path / "folder").mkdir()

    result = unitcat(*common, "--out", str(tmp_path / "folder"))
    assert "is a directory" in assert_one_line_fault(result, 2)
    assert _run_row(engine, run["id"]) == before
    assert before["h5_path"] == str(tmp_path / "a.h5") and before["status"] == "done"
    assert (tmp_path / "a.h5").read_bytes() == content


# ------------------------------------------------------------------------------ validation


def _catalogue_counts(engine: Engine) -> dict[str, int]:
    tables = ("run", "dataset", "model", "layer", "image_class", "class_group", "unit_metrics")
    return {t: _count(engine, f"SELECT count(*) FROM {t}") for t in tables}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (("--batch-size", "0"), "--batch-size must be at least 1"),
        (("--workers", "-1"), "--workers must be 0 or more"),
        (("--layers", "nosuchlayer"), "nosuchlayer"),
        (("--shard-images", "-1"), "--shard-images must be at least 1, got -1"),
    ],
)
def test_a_bad_extraction_option_writes_nothing(
    engine: Engine, options: tuple[str, ...], message: str
) -> None:
    before = _catalogue_counts(engine)
    result = unitcat("ingest", "extract", "--model", "alexnet", "--weights", "none",
                     "--num-classes", "10", "--dataset", "digits", *options)  # fmt: skip
    assert message in assert_one_line_fault(result, 2)
    assert _catalogue_counts(engine) == before


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (("--block-units", "0"), "--block-units must be at least 1"),
        (("--layers", "fc9"), "no layer fc9"),
        (("--groups", "GROUPS"), "'k99' is not a class"),
    ],
)
def test_a_bad_scoring_option_writes_nothing(
    engine: Engine, tmp_path: Path, options: tuple[str, ...], message: str
) -> None:
    extract = synthetic_extraction(engine, tmp_path / "acts.h5", 100, 4)
    groups = tmp_path / "groups.yaml"
    groups.write_text("pair: [k0, k99]\n")
    before = _catalogue_counts(engine)
    result = unitcat(
        "ingest", "score", str(extract), *(str(groups) if o == "GROUPS" else o for o in options)
    )
    assert message in assert_one_line_fault(result, 2)
    assert _catalogue_counts(engine) == before


def test_probe_errors_write_nothing(engine: Engine, tmp_path: Path) -> None:
    from catalogue.pipeline.dissect import probe_items
    from catalogue.probe import make_probe

    probe = make_probe(probe_items("digits"), tmp_path / "probe", 12, 32, 0)
    (probe.directory / "images" / probe.keys[3]).unlink()
    before = _catalogue_counts(engine)
    result = unitcat("ingest", "dissect", "--model", "alexnet", "--weights", "none",
                     "--probe", str(probe.directory),
                     "--layers", "features.10")  # fmt: skip
    assert "missing" in assert_one_line_fault(result, 2)
    assert _catalogue_counts(engine) == before


# ------------------------------------------------------------------------------ class groups


def test_class_groups_are_versioned_per_run(engine: Engine, tmp_path: Path) -> None:
    """Redefining a group does not change what an earlier run's group results mean."""
    extract = synthetic_extraction(engine, tmp_path / "acts.h5", 300, 6)
    first = score_extraction(engine, extract, groups={"pair": ["k0", "k1"]})
    second = score_extraction(engine, extract, groups={"pair": ["k0", "k2", "k3"]})
    again = score_extraction(engine, extract, groups={"pair": ["k1", "k0"]})  # = the first set
    assert len({first.run_id, second.run_id, again.run_id}) == 3

    members_sql = (
        "SELECT DISTINCT g.name, g.version, ic.key FROM unit_group_metrics m "
        "JOIN class_group g ON g.id = m.group_id "
        "JOIN class_group_member cm ON cm.group_id = g.id "
        "JOIN image_class ic ON ic.id = cm.class_id WHERE m.run_id = :r ORDER BY ic.key"
    )
    with engine.connect() as conn:
        used = {
            run: [tuple(r) for r in conn.execute(text(members_sql), {"r": run})]
            for run in (first.run_id, second.run_id, again.run_id)
        }
        versions = conn.execute(
            text("SELECT name, version FROM class_group ORDER BY version")
        ).all()
    assert used[first.run_id] == [("pair", 1, "k0"), ("pair", 1, "k1")]
    assert used[second.run_id] == [("pair", 2, "k0"), ("pair", 2, "k2"), ("pair", 2, "k3")]
    assert used[again.run_id] == used[first.run_id]  # the same members: the same version
    assert [tuple(v) for v in versions] == [("pair", 1), ("pair", 2)]

    # the Unit page's group table (catalogue.query.units) joins each run to its own version
    from catalogue.query.units import unit_group_metrics

    with engine.connect() as conn:
        unit_id = conn.execute(
            text("SELECT min(unit_id) FROM unit_group_metrics WHERE run_id = :r"),
            {"r": first.run_id},
        ).scalar_one()
    shown = {
        run: unit_group_metrics(engine, unit_id, run)
        for run in (first.run_id, second.run_id, again.run_id)
    }
    assert shown[first.run_id][["group_name", "group_version"]].values.tolist() == [["pair", 1]]
    assert shown[second.run_id][["group_name", "group_version"]].values.tolist() == [["pair", 2]]
    assert shown[again.run_id].equals(shown[first.run_id])  # the same members, the same values


def test_three_upgrades_of_a_fresh_catalogue_at_once_take_turns(
    database_factory,
) -> None:
    """Commands started at once on an empty database do not all create its tables."""
    from catalogue.db import migrate

    url = database_factory(migrated=False)
    env = {**os.environ, "DATABASE_URL": url, "COLUMNS": "200"}
    processes = [
        subprocess.Popen(
            [UNITCAT, "db", "upgrade"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    for process in processes:
        out, err = process.communicate()
        assert process.returncode == 0, err
        assert f"schema at revision {migrate.head_revision()}" in out


def test_a_strict_extraction_with_an_unreadable_image_writes_nothing(
    engine: Engine, tmp_path: Path
) -> None:
    """Every image is opened before the model, dataset or run is recorded."""
    folder = tmp_path / "tree"
    for cls in ("cat", "dog", "eel"):
        (folder / cls).mkdir(parents=True)
        Image.new("RGB", (36, 40), (40, 90, 200)).save(folder / cls / "a.png")
    (folder / "dog" / "zz_broken.jpg").write_bytes(b"garbage")
    before = _catalogue_counts(engine)
    result = unitcat("ingest", "extract", "--model", "resnet18", "--weights", "none",
                     "--num-classes", "3", "--dataset", str(folder), "--layers", "fc",
                     "--strict", "--out", str(tmp_path / "run.h5"))  # fmt: skip
    line = assert_one_line_fault(result, 2)
    assert "cannot read image dog/zz_broken.jpg" in line
    assert _catalogue_counts(engine) == before
    assert not (tmp_path / "run.h5").exists()


TWICE = """
import sys
from pathlib import Path

from catalogue.data import load_digits
from catalogue.db.engine import get_engine
from catalogue.models import random_demo_model
from catalogue.pipeline.extract import extract_into_catalogue
from tests.cluster_datasets import GatedDataset

model = random_demo_model()
data = GatedDataset(load_digits("test", transform=model.transform), Path(sys.argv[1]), 40)
result = extract_into_catalogue(
    get_engine(), model, data, ["fc6"], limit=64, batch_size=16, out_path=sys.argv[2]
)
print("elsewhere" if result.finished_elsewhere else "extracted", result.run_id, flush=True)
"""


def test_the_same_extraction_to_the_same_file_twice_waits_for_the_first(
    engine: Engine, tmp_path: Path
) -> None:
    """The second finds the file open in the first, waits for the run, and finds it done."""
    from tests.cluster_gates import waiting_pid

    script, gate, out = tmp_path / "twice.py", tmp_path / "gate", tmp_path / "acts.h5"
    script.write_text(TWICE)
    gate.mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    def start() -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, str(script), str(gate), str(out)],
            env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip

    first = start()
    try:
        waiting_pid(gate, first)  # the first holds the file open and the run's lock
        second = start()
        try:
            seen = []
            for line in second.stderr:  # the second says it waits (a line, not a time)
                seen.append(line)
                if "is already running" in line:
                    break
            assert any("waiting for it to finish" in line for line in seen), seen
            (gate / "open").touch()
            out_first, err_first = first.communicate()
            out_second, err_second = second.communicate()
        finally:
            second.kill()
    finally:
        first.kill()
    assert first.returncode == 0, err_first
    assert second.returncode == 0, err_second
    (run,) = run_records(engine)
    assert out_first.split() == ["extracted", str(run["id"])]
    assert out_second.split() == ["elsewhere", str(run["id"])]
    assert run["status"] == "done"
    with ActivationStore.open(out) as store:
        assert store.is_complete and store.n_complete == 64


def test_train_demo_keeps_the_checkpoint_that_runs_were_made_with(tmp_path: Path) -> None:
    """Replacing it would leave those runs without their model: refused, naming the way out."""
    checkpoint = tmp_path / "checkpoints" / "demo-digits.pt"
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_bytes(b"the weights the catalogue's runs were extracted with")
    result = unitcat("ingest", "train-demo", "--dataset", "digits",
                     env={"UNITCAT_HOME": str(tmp_path)})  # fmt: skip
    line = assert_one_line_fault(result, 2)
    assert f"the checkpoint {checkpoint} exists" in line
    assert "--out FILE" in line and "--overwrite" in line
    assert checkpoint.read_bytes() == b"the weights the catalogue's runs were extracted with"
