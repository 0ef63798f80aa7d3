"""Commands that must not lose or mix up data, and small CLI behaviours:
`db downgrade` asks before it drops tables, two databases sharing one UNITCAT_HOME keep
their own AM panels, `db downgrade -1`, a query starting with `--`, `runs --kind bogus`,
and reads that never create tables in an empty DATABASE_URL database."""

from __future__ import annotations

import hashlib
import os
import re
import select
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.pool import NullPool
from streamlit.testing.v1 import AppTest

from catalogue.config import get_settings
from catalogue.data import load_digits
from catalogue.db import migrate
from catalogue.db.engine import database_identity
from catalogue.models import random_demo_model
from catalogue.pipeline.am import am_into_catalogue
from catalogue.pipeline.extract import extract_into_catalogue
from tests.catalogue_builders import register_toy
from tests.cli import UNITCAT, unitcat

APP = Path(__file__).resolve().parents[1] / "ui" / "app.py"


def _one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def _tables(url: str) -> int:
    engine = create_engine(url, poolclass=NullPool)
    with engine.connect() as conn:
        n = conn.execute(
            text(
                "SELECT count(*) FROM pg_tables "
                "WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
            )
        ).scalar_one()
    engine.dispose()
    return n


# ------------------------------------------------------------------ db downgrade


@pytest.fixture
def rated(engine: Engine) -> Engine:
    """A catalogue with 10 units and two human ratings."""
    register_toy(engine)
    with engine.begin() as conn:
        unit_ids = list(conn.execute(text("SELECT id FROM unit ORDER BY id LIMIT 2")).scalars())
        pid = conn.execute(
            text("INSERT INTO participant (code) VALUES ('ada') RETURNING id")
        ).scalar_one()
        for uid in unit_ids:
            conn.execute(
                text(
                    "INSERT INTO rating (participant_id, unit_id, answer, source) "
                    "VALUES (:p, :u, false, 'ui')"
                ),
                {"p": pid, "u": uid},
            )
    return engine


def test_downgrade_without_a_terminal_refuses_and_drops_nothing(
    rated: Engine, database_url: str
) -> None:
    result = unitcat("db", "downgrade", "base", env={"DATABASE_URL": database_url})
    assert result.returncode == 2
    line = _one_line(result.stderr)
    assert "refused" in line and "--yes" in line
    assert "table unit (10 rows)" in line and "table rating (2 rows)" in line
    assert "2 human ratings" in line
    assert migrate.current_revision(rated) == migrate.head_revision()
    with rated.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM rating")).scalar_one() == 2


def test_downgrade_with_yes_says_what_it_drops_and_drops_it(
    rated: Engine, database_url: str
) -> None:
    result = unitcat("db", "downgrade", "base", "--yes", env={"DATABASE_URL": database_url})
    assert result.returncode == 0, result.stderr
    said = result.stdout.replace("\n", " ")
    assert "table rating (2 rows)" in said and "2 human ratings" in said
    assert "base (empty)" in said
    assert _tables(database_url) == 0


def _in_a_terminal(args: list[str], answer: bytes, env: dict[str, str]) -> tuple[int, str]:
    """Run `unitcat` with a pseudo-terminal as stdin/stdout; answer its question."""
    import pty

    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [UNITCAT, *args], stdin=slave, stdout=slave, stderr=slave, env={**os.environ, **env}
    )
    os.close(slave)
    output = b""
    answered = False
    while True:
        ready, _, _ = select.select([master], [], [], 300)
        if not ready:
            proc.kill()
            break
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        output += chunk
        if not answered and b"Drop them?" in output:
            os.write(master, answer)
            answered = True
    os.close(master)
    text_out = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", output.decode(errors="replace"))
    return proc.wait(), text_out


def test_downgrade_in_a_terminal_asks_and_no_keeps_everything(
    rated: Engine, database_url: str
) -> None:
    code, out = _in_a_terminal(
        ["db", "downgrade", "base"], b"n\n", {"DATABASE_URL": database_url, "COLUMNS": "300"}
    )
    assert code == 1, out
    assert "Drop them?" in out and "2 human ratings" in out and "nothing was dropped" in out
    assert "Traceback" not in out
    assert migrate.current_revision(rated) == migrate.head_revision()

    code, out = _in_a_terminal(
        ["db", "downgrade", "base"], b"y\n", {"DATABASE_URL": database_url, "COLUMNS": "300"}
    )
    assert code == 0, out
    assert _tables(database_url) == 0


def test_downgrade_minus_one_works_and_asks_nothing_when_nothing_is_dropped(
    rated: Engine, database_url: str
) -> None:
    previous = migrate.revisions()[-2]
    result = unitcat("db", "downgrade", "-1", env={"DATABASE_URL": database_url})
    assert result.returncode == 0, result.stderr
    assert f"schema at revision {previous}" in result.stdout
    assert migrate.current_revision(rated) == previous


def test_downgrade_to_an_unknown_revision_is_one_line(database_url: str) -> None:
    result = unitcat("db", "downgrade", "nosuchrev", env={"DATABASE_URL": database_url})
    assert result.returncode == 2
    assert "nosuchrev" in _one_line(result.stderr)


# -------------------------------------------------------------------- small items


def test_query_may_start_with_a_sql_comment(database_url: str) -> None:
    result = unitcat(
        "query",
        "-- the units\nSELECT count(*) AS n FROM unit",
        "--csv",
        env={"DATABASE_URL": database_url},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["n", "0"]


def test_runs_with_an_unknown_kind_lists_the_kinds(database_url: str) -> None:
    result = unitcat("runs", "--kind", "bogus", env={"DATABASE_URL": database_url})
    assert result.returncode == 2
    line = _one_line(result.stderr)
    assert "'bogus'" in line
    for kind in ("extract", "score", "dissect", "am"):
        assert kind in line


def test_reads_on_an_empty_database_url_database_create_nothing(
    database_factory: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = database_factory(migrated=False)  # roles set up, no tables
    for args in (["runs"], ["query", "SELECT 1"]):
        result = unitcat(*args, env={"DATABASE_URL": url})
        assert result.returncode == 3, (args, result.stderr)
        line = _one_line(result.stderr)
        assert "not initialised" in line and "unitcat db upgrade" in line
    monkeypatch.setenv("DATABASE_URL", url)
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    assert not at.exception
    assert len(at.error) == 1 and "not initialised" in at.error[0].value
    assert "unitcat db upgrade" in at.error[0].value
    assert _tables(url) == 0


# -------------------------------------------------------- AM panels of two databases


def test_two_databases_sharing_a_home_keep_their_own_am_panels(
    database_factory: Callable[..., str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UNITCAT_HOME", str(tmp_path / "shared-home"))
    model = random_demo_model()
    data = load_digits("test", transform=model.transform)
    results = []
    for seed in (0, 1):
        engine = create_engine(database_factory(), poolclass=NullPool)
        extract_into_catalogue(
            engine, model, data, ["fc6"], limit=16, out_path=tmp_path / f"acts{seed}.h5"
        )
        am = am_into_catalogue(
            engine, model, "fc6", [0], n_images=4, steps=4, lr=0.1, seed=seed, device="cpu"
        )
        (panel,) = am.panels
        digest = hashlib.sha256(panel.path.read_bytes()).hexdigest()
        with engine.connect() as conn:
            stored = conn.execute(text("SELECT path FROM am_panel")).scalar_one()
        results.append((engine, am.run_id, panel.path, digest, stored))
    (a, run_a, path_a, digest_a, stored_a), (b, run_b, path_b, digest_b, stored_b) = results
    assert run_a == run_b  # the same run id in both: the collision the key prevents
    assert path_a != path_b and stored_a != stored_b
    assert database_identity(a) != database_identity(b)
    assert database_identity(a) in stored_a and database_identity(b) in stored_b
    artifacts = get_settings().artifacts_dir
    assert (artifacts / stored_a) == path_a and (artifacts / stored_b) == path_b
    assert digest_a != digest_b  # different seeds, different images
    assert hashlib.sha256(path_a.read_bytes()).hexdigest() == digest_a  # not overwritten
    for engine in (a, b):
        engine.dispose()
