"""User SQL cannot take the UI's memory, the server's disk, or every other visitor's turn.

- A result is streamed and cut at a number of rows or bytes, whichever comes first; the
  rest is never fetched (a 300 MB result took the UI from 1.2 to 1.8 GB for 5,000 rows).
- The reader role has a statement timeout and a temporary-file limit of its own.
- The reader's pool is small and waits a few seconds: ten links that each run a long
  query leave the next visitor one line ("busy"), not a 30 s hang and "this is a bug",
  and the pages that read as the owner keep working.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool
from streamlit.testing.v1 import AppTest

from catalogue.db import roles, server
from catalogue.db.engine import READER_MAX_OVERFLOW, READER_POOL_SIZE, get_reader_engine
from catalogue.db.readonly import run_readonly, value_bytes
from catalogue.errors import ConsoleBusy, InputError
from tests.ui_fixtures import UICatalogue

APP = Path(__file__).resolve().parents[1] / "ui" / "app.py"
WIDE = 100_000  # characters of one big value
#: the table the test locks to hold user queries: none of the pages the test opens reads it
HELD = "class_ablation_curve"


def _as_superuser(url: str) -> str:
    return make_url(url).set(username="postgres").render_as_string(hide_password=False)


def _conninfo(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


# --------------------------------------------------------------------- rows and bytes


def test_a_result_is_cut_by_bytes_and_the_rest_is_never_fetched(reader_engine: Engine) -> None:
    """Row 1,000 divides by zero: fetching the whole result would fail there."""
    statement = (
        f"SELECT g, CASE WHEN g < 1000 THEN repeat('x', {WIDE}) ELSE (1 / (g - 1000))::text END AS big "
        "FROM generate_series(1, 2000) g"
    )
    cap = 1 << 20
    result = run_readonly(reader_engine, statement, max_rows=5000, max_bytes=cap)
    assert result.truncated and result.cut_by_size
    assert result.columns == ["g", "big"]
    row_bytes = value_bytes(1) + value_bytes("x" * WIDE)
    assert row_bytes == 8 + WIDE
    assert len(result.rows) == math.ceil(cap / row_bytes) == 11  # the row that crosses the cap
    assert [g for g, _ in result.rows] == list(range(1, 12))
    assert all(big == "x" * WIDE for _, big in result.rows)
    # the connection went back to the pool clean: the next statement works
    assert run_readonly(reader_engine, "SELECT 41 + 1 AS n").rows == [(42,)]


def test_rows_cap_and_a_result_exactly_at_the_cap(reader_engine: Engine) -> None:
    three = run_readonly(reader_engine, "SELECT g FROM generate_series(1, 10) g", max_rows=3)
    assert three.rows == [(1,), (2,), (3,)] and three.truncated and not three.cut_by_size
    five = run_readonly(reader_engine, "SELECT g FROM generate_series(1, 5) g", max_rows=5)
    assert five.rows == [(g,) for g in range(1, 6)] and not five.truncated
    empty = run_readonly(reader_engine, "SELECT 1 AS one WHERE false", max_rows=5, max_bytes=10)
    assert (empty.columns, empty.rows, empty.truncated) == (["one"], [], False)
    everything = run_readonly(reader_engine, "SELECT g FROM generate_series(1, 1200) g")
    assert len(everything.rows) == 1200 and not everything.truncated  # the CLI: no cap


def test_two_statements_are_still_refused(reader_engine: Engine) -> None:
    with pytest.raises(InputError, match="one statement at a time"):
        run_readonly(reader_engine, "SELECT 1; SELECT 2")


# --------------------------------------------------------------------- the reader role


def test_the_reader_role_has_a_statement_timeout_and_a_temp_file_limit(
    reader_engine: Engine,
) -> None:
    with reader_engine.connect() as conn:
        assert conn.execute(text("SHOW temp_file_limit")).scalar_one() == "1GB"
        assert conn.execute(text("SHOW statement_timeout")).scalar_one() == "1min"
        with pytest.raises(Exception, match="permission denied to set parameter"):
            conn.execute(text("SET temp_file_limit = -1"))
    assert f"SET temp_file_limit = '{roles.READER_TEMP_FILE_LIMIT}'" in roles.cluster_sql()


@pytest.fixture
def small_temp_reader(database_url: str, admin_url: str) -> Iterator[str]:
    """A reader set up by the roles' script, whose temp-file limit is then made 1 MB."""
    name = "unitcat_probe_reader"
    probe = roles.Roles(reader=name)
    superuser = _conninfo(_as_superuser(database_url))
    with psycopg.connect(superuser) as conn:
        conn.execute(roles.cluster_sql(probe) + roles.database_sql(probe))
        conn.execute(f"ALTER ROLE {name} SET temp_file_limit = '1MB'")
    yield roles.url_as(database_url, name)
    with psycopg.connect(superuser, autocommit=True) as conn:
        conn.execute(f"DROP OWNED BY {name}")
        conn.execute(f"DROP ROLE {name}")


def test_a_query_past_the_temp_file_limit_is_one_line(small_temp_reader: str) -> None:
    engine = create_engine(small_temp_reader, poolclass=NullPool)
    with pytest.raises(InputError, match="more temporary disk space than the query console"):
        run_readonly(engine, "SELECT count(*) FROM generate_series(1, 1000000)")
    assert run_readonly(engine, "SELECT count(*) FROM generate_series(1, 1000)").rows == [(1000,)]
    engine.dispose()


# --------------------------------------------------------------------- a busy pool


def _app(page: str, **query: str) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=120)
    for name, value in query.items():
        at.query_params[name] = value
    at.switch_page(page)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_ten_long_queries_leave_others_one_busy_line_and_the_ui_usable(
    catalogue: UICatalogue, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ten user queries wait on a lock the test holds (as a 45 s query would run): the
    eleventh visitor gets one line, the owner's pages draw, and all finish when it lifts."""
    monkeypatch.setenv("DATABASE_URL", catalogue.url)
    reader = get_reader_engine()  # the engine the SQL page uses in this process
    n_busy = READER_POOL_SIZE + READER_MAX_OVERFLOW
    results: list[object] = []
    lock = psycopg.connect(_conninfo(catalogue.url))  # the owner
    lock.execute(f"LOCK TABLE {HELD} IN ACCESS EXCLUSIVE MODE")
    admin = psycopg.connect(_conninfo(_as_superuser(catalogue.url)), autocommit=True)

    def waiting() -> int:
        return admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE usename = %s AND wait_event_type = 'Lock'",
            (roles.READER_ROLE,),
        ).fetchone()[0]

    def query() -> None:
        try:
            held = f"SELECT count(*) AS n FROM {HELD}"  # no timeout: the lock decides
            results.append(run_readonly(reader, held, timeout_s=86400).rows)
        except Exception as exc:  # the assertion below shows it
            results.append(exc)

    threads = [threading.Thread(target=query) for _ in range(n_busy)]
    try:
        for thread in threads:
            thread.start()
        while waiting() < n_busy:  # until every query waits on the lock (none can finish)
            assert not results, results
            time.sleep(0.05)

        with pytest.raises(ConsoleBusy, match=f"all {n_busy} of its connections are running"):
            run_readonly(reader, "SELECT 1")
        at = _app("app_pages/sql.py", sql="SELECT 1")
        errors = [e.value for e in at.error]
        assert len(errors) == 1 and "the query console is busy" in errors[0], errors
        assert "this is a bug" not in errors[0] and "QueuePool" not in errors[0]
        search = _app("app_pages/search.py")  # the owner's pages are not held up
        assert not search.error and "units match" in " ".join(s.value for s in search.subheader)
    finally:
        lock.rollback()
        lock.close()
        for thread in threads:
            thread.join()
        admin.close()
    assert results == [[(0,)]] * n_busy
    at = _app("app_pages/sql.py", sql="SELECT 1 AS one")
    assert not at.error and "**1 row**" in [m.value for m in at.markdown]


def test_an_embedded_catalogue_whose_reader_lacks_the_limit_gets_it_on_its_next_start(
    admin_url: str, unitcat_home: Path
) -> None:
    """A catalogue made before the reader had a temp-file limit: the next start adds it."""
    status = server.status(unitcat_home / "postgres")
    if not status.running or status.socket_dir is None:
        pytest.skip("the embedded server is not the test server (DATABASE_URL is set)")
    settings = (
        "SELECT coalesce(s.setconfig, '{}') FROM pg_roles r LEFT JOIN pg_db_role_setting s "
        "ON s.setrole = r.oid AND s.setdatabase = 0 WHERE r.rolname = %s"
    )
    with psycopg.connect(_conninfo(admin_url), autocommit=True) as conn:
        conn.execute(f"ALTER ROLE {roles.READER_ROLE} RESET temp_file_limit")
        (before,) = conn.execute(settings, (roles.READER_ROLE,)).fetchone()
    try:
        assert roles.READER_LIMIT_SETTING not in before
        server.bootstrap(status.socket_dir)  # what every start of the embedded server runs
        with psycopg.connect(_conninfo(admin_url), autocommit=True) as conn:
            (after,) = conn.execute(settings, (roles.READER_ROLE,)).fetchone()
        assert roles.READER_LIMIT_SETTING in after
        assert "statement_timeout=60s" in after
    finally:
        with psycopg.connect(_conninfo(admin_url), autocommit=True) as conn:
            limit = roles.READER_TEMP_FILE_LIMIT
            conn.execute(f"ALTER ROLE {roles.READER_ROLE} SET temp_file_limit = '{limit}'")
