"""The catalogue's two database roles: an owner that ingest writes as, a reader that user SQL runs as.

Why: a READ ONLY transaction does not stop a superuser. As `postgres`, a
"read-only" query console runs `COPY (…) TO PROGRAM` (a shell command as the
server's OS user), reads server files with `pg_read_file`, writes them with
`COPY table TO '/path'`, and `SET ROLE` / `SET SESSION AUTHORIZATION` take it
anywhere. So user SQL (`unitcat query`, the UI's SQL page) runs as a role that
PostgreSQL itself stops:

- `unitcat_owner` (`OWNER_ROLE`) owns the catalogue database and its tables,
  views and sequences; migrations and every write command run as it. It is not
  a superuser and cannot create roles or databases.
- `unitcat_reader` (`READER_ROLE`) may connect and SELECT the catalogue's tables
  and views, and nothing else: not a superuser, no member of any role (so none
  of `pg_read_server_files`, `pg_write_server_files`,
  `pg_execute_server_program`), no write privilege, no CREATE on the schema, no
  TEMPORARY on the database (revoked from PUBLIC), no advisory locks (their
  functions are revoked from PUBLIC in the catalogue's database and granted to
  the owner: runs are serialised and known to be alive by them), and
  `default_transaction_read_only` on and a statement timeout by default.

Tables that later migrations create are readable by the reader through
`ALTER DEFAULT PRIVILEGES FOR ROLE <owner>` (objects the owner creates), and
`grant_reader` repeats the grants after each upgrade in case a migration ran as
another role (a superuser DATABASE_URL).

`setup_sql` is one idempotent script, run as a superuser connected to the
catalogue's database: the embedded server runs it when it creates its database
(and on an older data directory whose database `postgres` still owns), `unitcat
db roles` runs it on a DATABASE_URL server or prints it (`--print`) for an
administrator, and the tests' fixtures run it on every test database, so the
whole suite ingests as the owner and queries as the reader, as production does.

`reader_problems` is the check that user SQL runs before every statement: it
refuses a superuser, a member of a server-file role, and any role that can
write, create or keep state, naming the fix.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine import URL, make_url

from catalogue.db.revisions import catalogue_relations
from catalogue.errors import ConfigError

OWNER_ROLE = "unitcat_owner"
READER_ROLE = "unitcat_reader"
#: the reader's default per-statement limit (the console also sets its own per query)
READER_STATEMENT_TIMEOUT = "60s"
#: PostgreSQL's predefined roles that reach the server's files and programs (or write everything)
SERVER_ROLES = (
    "pg_read_server_files",
    "pg_write_server_files",
    "pg_execute_server_program",
    "pg_write_all_data",
)

_ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


@dataclass(frozen=True)
class Roles:
    """The names of the two roles (defaults: `unitcat_owner`, `unitcat_reader`)."""

    owner: str = OWNER_ROLE
    reader: str = READER_ROLE

    def __post_init__(self) -> None:
        for name in (self.owner, self.reader):
            _check_name(name)
        if self.owner == self.reader:
            raise ConfigError("the owner and the reader must be two different roles.")


def _check_name(name: str) -> str:
    """Role names go into SQL text: allow only plain identifiers."""
    if not _ROLE_NAME.match(name):
        raise ConfigError(
            f"role name {name!r} must be lower-case letters, digits and _ "
            "(starting with a letter or _); choose another name."
        )
    return name


def _array(names: Iterable[str]) -> str:
    quoted = ", ".join("'" + n.replace("'", "''") + "'" for n in sorted(set(names)))
    return f"ARRAY[{quoted}]::text[]"


def cluster_sql(roles: Roles = Roles()) -> str:
    """Create (or correct) the two roles; cluster-wide, idempotent."""
    owner, reader = roles.owner, roles.reader
    attributes = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"
    return f"""\
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{owner}') THEN
    CREATE ROLE {owner} LOGIN;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{reader}') THEN
    CREATE ROLE {reader} LOGIN;
  END IF;
END
$$;
ALTER ROLE {owner} {attributes};
ALTER ROLE {reader} {attributes};
ALTER ROLE {reader} SET default_transaction_read_only = on;
ALTER ROLE {reader} SET statement_timeout = '{READER_STATEMENT_TIMEOUT}';
ALTER ROLE {reader} SET idle_in_transaction_session_timeout = '{READER_STATEMENT_TIMEOUT}';
"""


def database_sql(roles: Roles = Roles(), relations: Iterable[str] | None = None) -> str:
    """Hand the current database and its catalogue relations to the owner; let the reader read.

    `relations`: the catalogue's table and view names (default: every name any
    revision creates). Only those change owner, so a database that also holds
    other tables keeps theirs.
    """
    owner, reader = roles.owner, roles.reader
    names = _array(catalogue_relations() if relations is None else relations)
    return f"""\
DO $$
DECLARE
  rel record;
BEGIN
  EXECUTE format('ALTER DATABASE %I OWNER TO {owner}', current_database());
  EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());
  EXECUTE format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO {owner}', current_database());
  EXECUTE format('GRANT CONNECT ON DATABASE %I TO {reader}', current_database());
  FOR rel IN
    SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm')
      AND c.relname = ANY ({names}) AND c.relowner <> '{owner}'::regrole
  LOOP
    EXECUTE format(
      'ALTER %s public.%I OWNER TO {owner}',
      CASE rel.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE 'TABLE' END,
      rel.relname
    );
  END LOOP;
END
$$;
DO $$
DECLARE
  fn regprocedure;
BEGIN
  FOR fn IN
    SELECT p.oid::regprocedure FROM pg_proc p
    WHERE p.pronamespace = 'pg_catalog'::regnamespace AND p.proname LIKE 'pg%advisory%'
  LOOP
    EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', fn);
    EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO {owner}', fn);
  END LOOP;
END
$$;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE, CREATE ON SCHEMA public TO {owner};
GRANT USAGE ON SCHEMA public TO {reader};
ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA public GRANT SELECT ON TABLES TO {reader};
{_grant_sql(reader, names)}"""


def _grant_sql(reader: str, names: str) -> str:
    """SELECT for the reader (if it exists) on the catalogue relations the current role may grant on."""
    return f"""\
DO $$
DECLARE
  rel record;
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{reader}') THEN
    RETURN;
  END IF;
  FOR rel IN
    SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm')
      AND c.relname = ANY ({names}) AND pg_has_role(current_user, c.relowner, 'USAGE')
  LOOP
    EXECUTE format('GRANT SELECT ON public.%I TO {reader}', rel.relname);
  END LOOP;
END
$$;
"""


def setup_sql(roles: Roles = Roles(), relations: Iterable[str] | None = None) -> str:
    """The whole script `unitcat db roles --print` prints (and the embedded server runs)."""
    return f"""\
-- unitcat: the catalogue's roles. Run as a superuser connected to the catalogue's
-- database, e.g.  psql -v ON_ERROR_STOP=1 -d <database> -f roles.sql
-- Idempotent: safe to run again (after an upgrade, or on an older catalogue).
-- {roles.owner}: owns the catalogue; ingest and migrations connect as it (DATABASE_URL).
-- {roles.reader}: SELECT only; `unitcat query` and the UI's SQL page connect as it
--   (DATABASE_URL with this user name, or UNITCAT_READER_URL). If the server asks
--   for passwords: ALTER ROLE {roles.reader} PASSWORD '…'; (and the same for the owner).
BEGIN;
{cluster_sql(roles)}{database_sql(roles, relations)}COMMIT;
"""


def grant_reader_sql(reader: str = READER_ROLE) -> str:
    """After an upgrade: SELECT on the catalogue relations, if the reader role exists."""
    return _grant_sql(_check_name(reader), _array(catalogue_relations()))


def url_as(url: str, role: str) -> str:
    """The same server and database as `url`, as `role` (no password: libpq's own
    sources apply, e.g. ~/.pgpass, PGPASSWORD or a trusting server)."""
    return render_url(make_url(url).set(username=role, password=None))


def render_url(url: URL) -> str:
    """The URL as text, a space in its query as %20 (SQLAlchemy writes +, which libpq and
    so psql read as a plus sign)."""
    text = url.render_as_string(hide_password=False)
    if "?" not in text:
        return text
    base, query = text.split("?", 1)
    return f"{base}?{query.replace('+', '%20')}"


def reader_url_for(url: str, reader: str = READER_ROLE) -> str:
    """The reader's URL on `url`'s server and database."""
    return url_as(url, reader)


def apply(engine: Engine, roles: Roles = Roles()) -> None:
    """Run `setup_sql` on `engine`'s database in one transaction (its user must be a superuser)."""
    import psycopg

    script = cluster_sql(roles) + database_sql(roles)
    with engine.connect() as conn:
        raw = conn.connection.driver_connection
        assert isinstance(raw, psycopg.Connection)
        try:
            raw.execute(script)
            raw.commit()
        except psycopg.Error as exc:
            raw.rollback()
            raise ConfigError(
                f"{engine.url.username} cannot create the roles "
                f"({exc.diag.message_primary or exc.__class__.__name__}); "
                "run `unitcat db roles --print` and have a superuser run that SQL in database "
                f"{engine.url.database}."
            ) from None


# ------------------------------------------------------------------ the reader check

READER_CHECK = f"""
WITH mine AS (
  SELECT r.oid, r.rolname, r.rolsuper, r.rolcreaterole, r.rolcreatedb, r.rolreplication
  FROM pg_roles r WHERE pg_has_role(current_user, r.oid, 'MEMBER')
), relations AS (
  SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
    AND n.nspname NOT LIKE 'pg_temp%' AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
)
SELECT
  current_user::text AS role,
  bool_or(m.rolsuper) AS superuser,
  bool_or(m.rolcreaterole OR m.rolcreatedb OR m.rolreplication) AS creates_roles,
  coalesce(array_agg(m.rolname::text) FILTER (WHERE m.rolname = ANY ({_array(SERVER_ROLES)})),
           '{{}}') AS server_roles,
  bool_or(EXISTS (
    SELECT 1 FROM relations c
    WHERE has_table_privilege(m.oid, c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')
  )) AS writes,
  bool_or(has_schema_privilege(m.oid, 'public', 'CREATE')
          OR has_database_privilege(m.oid, current_database(), 'CREATE, TEMPORARY')) AS creates,
  current_setting('default_transaction_read_only') AS read_only
FROM mine m
"""


def reader_problems(row: Mapping[str, Any]) -> list[str]:
    """What makes the role of a `READER_CHECK` row unfit to run user SQL (empty: fit).

    Every role the session's role is a member of counts (it could SET ROLE to it).
    """
    problems: list[str] = []
    if row["superuser"]:
        problems.append("is a superuser")
    if row["server_roles"]:
        problems.append(f"is a member of {', '.join(sorted(row['server_roles']))}")
    if row["creates_roles"] and not row["superuser"]:
        problems.append("may create roles or databases")
    if row["writes"] and not row["superuser"]:
        problems.append("can write to tables")
    if row["creates"] and not row["superuser"]:
        problems.append("can create tables")
    if row["read_only"] != "on":
        problems.append("does not default to read-only transactions")
    return problems
