"""Read-only SQL for the `unitcat query` command and the UI's SQL page.

User SQL is untrusted (the UI may listen on 0.0.0.0), and PostgreSQL, not this
module, is what stops it:

- It runs as the reader role (`catalogue.db.roles`), which can only SELECT the
  catalogue. Before each statement the role is checked (`roles.READER_CHECK`):
  a superuser, a member of a server-file role, or a role that can write or
  create is refused with the fix, since a READ ONLY transaction alone does not
  stop a superuser's `COPY … TO PROGRAM` or `pg_read_file`.
- One statement (a prepared statement), in a READ ONLY transaction with a
  statement timeout, always rolled back.
- No state survives to the next query on the pooled connection: after each
  statement the session runs DISCARD ALL (settings made with `set_config(…,
  false)`, temporary tables, prepared statements, advisory locks, LISTEN, held
  cursors); if that fails the connection is thrown away.

Refusals (read-only, permission denied) raise `ReadOnlyViolation`; other SQL
errors `InputError`; an unfit role `ConfigError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg.rows import dict_row
from sqlalchemy import Connection, Engine

from catalogue.db import roles
from catalogue.errors import ConfigError, InputError, ReadOnlyViolation


@dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]
    truncated: bool


def _check_role(raw: psycopg.Connection) -> None:
    with raw.cursor(row_factory=dict_row) as cur:
        row = cur.execute(roles.READER_CHECK).fetchone()
    assert row is not None
    problems = roles.reader_problems(row)
    if problems:
        raise ConfigError(
            f"refused: user SQL would run as {row['role']}, which {' and '.join(problems)}; "
            "it must run as the SELECT-only reader role: run `unitcat db roles` (or have an "
            "administrator run the SQL of `unitcat db roles --print`) and connect user SQL as "
            f"{roles.READER_ROLE} (DATABASE_URL's server with that user, or UNITCAT_READER_URL)."
        )


def _discard_session_state(conn: Connection) -> None:
    """Leave nothing of the user's statement on the pooled connection."""
    raw = conn.connection.driver_connection
    try:
        assert isinstance(raw, psycopg.Connection)
        raw.rollback()
        raw.autocommit = True
        try:
            raw.execute("DISCARD ALL")
        finally:
            raw.autocommit = False
    except (psycopg.Error, AssertionError):
        conn.invalidate()


def run_readonly(
    engine: Engine, statement: str, *, max_rows: int | None = None, timeout_s: float = 60.0
) -> QueryResult:
    """Run one user statement as the reader of `engine` (see the module docstring)."""
    statement = statement.strip().rstrip(";").strip()
    if not statement:
        raise InputError(
            "the query is empty; give one SQL statement, e.g. SELECT * FROM layer_summary."
        )
    with engine.connect() as conn:
        raw = conn.connection.driver_connection
        assert isinstance(raw, psycopg.Connection)
        try:
            raw.execute("SET TRANSACTION READ ONLY")
            _check_role(raw)
            raw.execute(f"SET LOCAL statement_timeout = {int(timeout_s * 1000)}")
            cursor = raw.execute(statement, prepare=True)
            if cursor.description is None:
                return QueryResult(columns=[], rows=[], truncated=False)
            columns = [d.name for d in cursor.description]
            if max_rows is None:
                rows = cursor.fetchall()
                truncated = False
            else:
                rows = cursor.fetchmany(max_rows + 1)
                truncated = len(rows) > max_rows
                rows = rows[:max_rows]
            return QueryResult(columns=columns, rows=[tuple(r) for r in rows], truncated=truncated)
        except pg_errors.ReadOnlySqlTransaction as exc:
            raise ReadOnlyViolation(
                f"refused: the query console is read-only ({exc.diag.message_primary}); "
                "change the catalogue with the `unitcat ingest …` commands."
            ) from None
        except pg_errors.InsufficientPrivilege as exc:
            raise ReadOnlyViolation(
                f"refused: the query console is read-only and may only SELECT the catalogue "
                f"({exc.diag.message_primary})."
            ) from None
        except pg_errors.QueryCanceled:
            raise InputError(
                f"the query ran longer than {timeout_s:g} s and was cancelled."
            ) from None
        except psycopg.Error as exc:
            message = exc.diag.message_primary or str(exc).splitlines()[0]
            if "multiple commands" in message:
                message = "give one statement at a time"
            raise InputError(f"SQL error: {message}") from None
        finally:
            _discard_session_state(conn)
