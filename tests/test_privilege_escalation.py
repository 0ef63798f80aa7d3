"""The owner role cannot turn a superuser's maintenance script into its own superuser.

PostgreSQL resolves a function call to the best argument-type match among every
schema on the search path, pg_catalog included: a `public.format(text, name)`
beats pg_catalog's `format(text, VARIADIC "any")` for `format('…', current_database())`.
The owner owns the catalogue's database and may create functions, operators and
schemas in it, so every script a superuser runs there (`unitcat db roles`, the
embedded server's bootstrap, `unitcat db upgrade` as a superuser) resolves
names in pg_catalog only (`roles.PIN_SEARCH_PATH`) and qualifies its functions.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from catalogue.db import roles, server
from tests.cli import unitcat

OWNER = roles.OWNER_ROLE

#: What an owner could plant: each object, if a superuser's script calls it, makes the owner
#: a superuser and then does what the script expected, so the script still succeeds.
TRAPS = f"""
CREATE FUNCTION public.format(fmt text, arg name) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE 'ALTER ROLE {OWNER} SUPERUSER';
  RETURN pg_catalog.format(fmt, arg);
END $$;
CREATE FUNCTION public.escalating_ne(a oid, b regrole) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE 'ALTER ROLE {OWNER} SUPERUSER';
  RETURN a OPERATOR(pg_catalog.<>) b::oid;
END $$;
CREATE OPERATOR public.<> (LEFTARG = oid, RIGHTARG = regrole, FUNCTION = public.escalating_ne);
CREATE FUNCTION public.escalating_eq(a oid, b regnamespace) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE 'ALTER ROLE {OWNER} SUPERUSER';
  RETURN a OPERATOR(pg_catalog.=) b::oid;
END $$;
CREATE OPERATOR public.= (LEFTARG = oid, RIGHTARG = regnamespace, FUNCTION = public.escalating_eq);
CREATE SCHEMA postgres;
CREATE FUNCTION postgres.format(fmt text, arg name) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE 'ALTER ROLE {OWNER} SUPERUSER';
  RETURN pg_catalog.format(fmt, arg);
END $$;
"""

UNTRAP = """
DROP SCHEMA IF EXISTS postgres CASCADE;
DROP OPERATOR IF EXISTS public.<> (oid, regrole);
DROP OPERATOR IF EXISTS public.= (oid, regnamespace);
DROP FUNCTION IF EXISTS public.format(text, name);
DROP FUNCTION IF EXISTS public.escalating_ne(oid, regrole);
DROP FUNCTION IF EXISTS public.escalating_eq(oid, regnamespace);
"""


def _conninfo(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def _as(url: str, user: str) -> str:
    return make_url(url).set(username=user).render_as_string(hide_password=False)


def _owner_is_superuser(admin_url: str) -> bool:
    with psycopg.connect(_conninfo(admin_url), autocommit=True) as conn:
        row = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s", (OWNER,)).fetchone()
    assert row is not None
    return bool(row[0])


@pytest.fixture
def restore_owner(admin_url: str) -> Iterator[None]:
    """Whatever a failing test did, the shared test server's owner is no superuser afterwards."""
    yield
    with psycopg.connect(_conninfo(admin_url), autocommit=True) as conn:
        conn.execute(f"ALTER ROLE {OWNER} NOSUPERUSER")


def _plant(owner_url: str) -> None:
    with psycopg.connect(_conninfo(owner_url), autocommit=True) as conn:
        conn.execute(TRAPS)
        assert conn.execute(
            "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
        ).fetchone() == (False,)


def test_the_traps_are_real_for_an_unpinned_superuser_script(
    database_url: str, admin_url: str, restore_owner: None
) -> None:
    """Without the pinned search_path, the roles script's own SQL runs the owner's function."""
    _plant(database_url)
    superuser = _conninfo(_as(database_url, server.SUPERUSER))
    with psycopg.connect(superuser, autocommit=True) as conn:
        conn.execute("SELECT format('ALTER DATABASE %I OWNER TO x', current_database())")
    assert _owner_is_superuser(admin_url)


def test_db_roles_as_a_superuser_does_not_run_the_owners_functions(
    database_url: str, admin_url: str, restore_owner: None
) -> None:
    _plant(database_url)
    superuser = _as(database_url, server.SUPERUSER)
    made = unitcat("db", "roles", env={"DATABASE_URL": superuser})
    assert made.returncode == 0, made.stderr
    assert not _owner_is_superuser(admin_url)
    upgraded = unitcat("db", "upgrade", env={"DATABASE_URL": superuser})  # grants the reader again
    assert upgraded.returncode == 0, upgraded.stderr
    assert not _owner_is_superuser(admin_url)
    with psycopg.connect(_conninfo(database_url), autocommit=True) as conn:
        (may_create,) = conn.execute(
            "SELECT has_schema_privilege(current_user, 'pg_catalog', 'CREATE')"
        ).fetchone()
        assert may_create is False  # the only schema the scripts resolve names in
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(
                "CREATE FUNCTION pg_catalog.format(text, name) RETURNS text "
                "LANGUAGE sql AS 'SELECT 1::text'"
            )


def test_the_printed_roles_sql_does_not_run_the_owners_functions(
    database_url: str, admin_url: str, restore_owner: None, tmp_path: Path
) -> None:
    import subprocess

    _plant(database_url)
    printed = unitcat("db", "roles", "--print")
    assert printed.returncode == 0, printed.stderr
    script = tmp_path / "roles.sql"
    script.write_text(printed.stdout)
    psql = [str(server.bin_dir() / "psql"), "-X", "-v", "ON_ERROR_STOP=1"]
    target = _conninfo(_as(database_url, server.SUPERUSER))
    applied = subprocess.run(
        [*psql, "-d", target, "-f", str(script)], capture_output=True, text=True
    )
    assert applied.returncode == 0, applied.stderr
    assert not _owner_is_superuser(admin_url)


def test_the_embedded_servers_bootstrap_does_not_run_the_owners_functions(
    admin_url: str, unitcat_home: Path, restore_owner: None
) -> None:
    """`unitcat db roles` without DATABASE_URL re-runs the embedded server's bootstrap."""
    socket_dir = server.status(unitcat_home / "postgres").socket_dir
    assert socket_dir is not None
    owner_url = server.owner_url(socket_dir)
    _plant(owner_url)
    try:
        made = unitcat("db", "roles", env={"DATABASE_URL": None})
        assert made.returncode == 0, made.stderr
        assert not _owner_is_superuser(admin_url)
    finally:
        with psycopg.connect(
            _conninfo(server.superuser_url(socket_dir, server.DATABASE_NAME)), autocommit=True
        ) as conn:
            conn.execute(UNTRAP)
