"""A `--cluster local:N` command says nothing about Ray's token authentication and keeps it
on: Ray printed its notice on every command whose RAY_AUTH_MODE was unset."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from catalogue.query.runs import run_records
from tests.cli import unitcat
from tests.lifecycle_builders import synthetic_extraction


def test_a_local_cluster_command_prints_no_token_notice_and_keeps_token_auth(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    run_id = synthetic_extraction(engine, tmp_path / "acts.h5", 120, 4)
    home = tmp_path / "home"  # where Ray keeps the token it makes
    home.mkdir()
    env = {"DATABASE_URL": database_url, "RAY_AUTH_MODE": None, "HOME": str(home)}
    result = unitcat("ingest", "score", str(run_id), "--cluster", "local:1", env=env)
    assert result.returncode == 0, result.stderr
    assert "Token authentication" not in result.stdout + result.stderr
    assert "auth_token" not in result.stdout + result.stderr
    assert (home / ".ray" / "auth_token").is_file()  # token authentication stayed on
    assert [r["status"] for r in run_records(engine) if r["kind"] == "score"] == ["done"]
