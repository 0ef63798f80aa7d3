"""`unitcat db …` and `unitcat query` as a user runs them, including the failure lines."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from catalogue.db import server
from tests.cli import unitcat


@pytest.fixture
def fresh_home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    return home


def test_upgrade_then_query_with_the_embedded_server(fresh_home: Path) -> None:
    env = {"UNITCAT_HOME": str(fresh_home), "DATABASE_URL": None}
    try:
        upgraded = unitcat("db", "upgrade", env=env)
        assert upgraded.returncode == 0, upgraded.stderr
        result = unitcat("query", "select * from unit_catalogue limit 1", "--csv", env=env)
        assert result.returncode == 0, result.stderr
        header = result.stdout.splitlines()[0].split(",")
        assert header[:4] == ["run_id", "model", "architecture", "layer"]
        assert "false_alarm_rate" in header
        status = unitcat("db", "status", env=env)
        assert "running" in status.stdout and "up to date" in status.stdout
    finally:
        assert unitcat("db", "stop", env=env).returncode == 0


def test_a_stopped_embedded_server_is_one_line(fresh_home: Path) -> None:
    env = {"UNITCAT_HOME": str(fresh_home), "DATABASE_URL": None}
    result = unitcat("db", "status", env=env)
    assert result.returncode == 1
    assert "not created" in result.stdout


def test_a_wrong_database_url_is_one_clear_line() -> None:
    result = unitcat(
        "query", "select 1", env={"DATABASE_URL": "postgresql://nobody@127.0.0.1:9/none"}
    )
    assert result.returncode == 3
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "cannot connect to" in lines[0] and "DATABASE_URL" in lines[0]
    assert "Traceback" not in result.stderr


def test_a_database_url_that_is_not_postgres_is_refused() -> None:
    result = unitcat("query", "select 1", env={"DATABASE_URL": "sqlite:///x.db"})
    assert result.returncode == 2
    assert "must be a PostgreSQL URL" in result.stderr and "Traceback" not in result.stderr


def test_query_refuses_a_write(database_url: str) -> None:
    result = unitcat("query", "drop table unit cascade", env={"DATABASE_URL": database_url})
    assert result.returncode == 2
    assert "read-only" in result.stderr
    check = unitcat(
        "query", "select count(*) as n from unit", "--csv", env={"DATABASE_URL": database_url}
    )
    assert check.stdout.splitlines() == ["n", "0"]


def test_two_commands_starting_at_once_share_one_server(fresh_home: Path) -> None:
    data_dir = fresh_home / "postgres"
    code = f"from catalogue.db.server import start; print(start(__import__('pathlib').Path({str(data_dir)!r})))"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(3)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    try:
        assert all(p.returncode == 0 for p in procs), [err for _, err in outputs]
        urls = {out.strip() for out, _ in outputs}
        assert len(urls) == 1
        st = server.status(data_dir)
        assert st.running and st.pid is not None
    finally:
        server.stop(data_dir)
    assert not server.status(data_dir).running


def test_runs_lists_status_and_error(engine, database_url: str) -> None:
    from catalogue.db.runs import recorded_run

    with (
        pytest.raises(RuntimeError),
        recorded_run(engine, "score", {"layer": "fc6"}, label="broken"),
    ):
        raise RuntimeError("disk full")
    result = unitcat("runs", env={"DATABASE_URL": database_url})
    assert result.returncode == 0, result.stderr
    line = next(li for li in result.stdout.splitlines() if "broken" in li)
    assert "failed" in line
    assert "RuntimeError: disk full" in line
