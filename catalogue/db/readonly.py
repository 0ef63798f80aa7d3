"""Read-only SQL for the `unitcat query` command and the UI's SQL page.

User SQL is untrusted (the UI may listen on 0.0.0.0), and PostgreSQL, not this
module, is what stops it:

- It runs as the reader role (`catalogue.db.roles`), which can only SELECT the
  catalogue. Before each statement the role is checked (`roles.READER_CHECK`):
  a superuser, a member of a server-file role, or a role that can write or
  create is refused with the fix, since a READ ONLY transaction alone does not
  stop a superuser's `COPY … TO PROGRAM` or `pg_read_file`.
- One statement (the extended protocol takes one), in a READ ONLY transaction
  with a statement timeout, always rolled back.
- Bounded memory: rows come through a server-side cursor in batches sized to
  what the byte cap still allows, and the result is cut at `max_rows` rows or
  `max_bytes` bytes (about: the size of the values), whichever comes first;
  the rest is never computed. A 300 MB result must not take the UI's memory
  with it. Each FETCH gets only the time left of the statement's timeout.
- Bounded waiting: a reader engine (`catalogue.db.engine`) has a small pool
  that waits a few seconds for a free connection; when every connection is
  running a query, `ConsoleBusy` says so in one line.
- No state survives to the next query on the pooled connection: after each
  statement the session runs DISCARD ALL (settings made with `set_config(…,
  false)`, temporary tables, prepared statements, advisory locks, LISTEN, held
  cursors); if that fails the connection is thrown away.

Refusals (read-only, permission denied) raise `ReadOnlyViolation`; other SQL
errors `InputError`; an unfit role `ConfigError`.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg.rows import dict_row
from sqlalchemy import Connection, Engine

from catalogue.db import roles
from catalogue.db.engine import reader_connection
from catalogue.errors import ConfigError, InputError, ReadOnlyViolation

#: the most rows fetched from the server at a time
BATCH_ROWS = 500


@dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]
    truncated: bool
    #: the result was cut at `max_bytes` (not at `max_rows`)
    cut_by_size: bool = False


def value_bytes(value: Any) -> int:
    """About how much memory a fetched value takes (text and bytes by length; numbers,
    dates and NULL 8); the measure `max_bytes` counts."""
    if isinstance(value, str | bytes | bytearray | memoryview):
        return len(value)
    if isinstance(value, list | tuple | dict):
        return len(repr(value))
    return 8


def _check_role(raw: psycopg.Connection) -> None:
    """Refuse an unfit role; the check resolves names in pg_catalog only (it may be
    running as a superuser, before it refuses it)."""
    with raw.cursor(row_factory=dict_row) as cur:
        cur.execute(roles.PIN_SEARCH_PATH)
        row = cur.execute(roles.READER_CHECK).fetchone()
        cur.execute("SET LOCAL search_path TO DEFAULT")
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


#: Statements that write; found inside a statement that PostgreSQL names by its outer
#: command (a data-modifying WITH: "cannot execute SELECT in a read-only transaction").
_WRITES = re.compile(r"\b(INSERT|UPDATE|DELETE|MERGE)\b", re.IGNORECASE)


def _read_only_refusal(statement: str, exc: psycopg.Error) -> str:
    """The refusal of a statement that writes, naming what writes in it: PostgreSQL names
    the outer command, which for `WITH d AS (DELETE …) SELECT …` reads "SELECT"."""
    primary = exc.diag.message_primary or ""
    named = re.match(r"cannot execute (\w+)", primary)
    inner = _WRITES.search(statement)
    if named and named.group(1).upper() == "SELECT" and inner:
        what = f"its {inner.group(1).upper()} (in a WITH clause) writes"
    else:
        what = f"it writes ({primary})"
    return (
        f"refused: the query console is read-only and {what}; "
        "change the catalogue with the `unitcat ingest …` commands."
    )


def _fetch(
    raw: psycopg.Connection,
    statement: str,
    max_rows: int | None,
    max_bytes: int | None,
    timeout_s: float,
) -> QueryResult:
    """The statement's rows up to the caps, through a server-side cursor; a statement a
    cursor cannot run (SHOW, EXPLAIN, PREPARE, a write) runs plainly: its result is small."""
    raw.execute("SAVEPOINT console_statement")
    cursor = raw.cursor(name="console_statement", scrollable=False)
    try:
        cursor.execute(statement)
    except (pg_errors.SyntaxError, pg_errors.FeatureNotSupported):
        raw.execute("ROLLBACK TO SAVEPOINT console_statement")
        return _fetch_plain(raw, statement, max_rows)
    deadline = time.monotonic() + timeout_s
    columns = [d.name for d in cursor.description or []]
    rows: list[tuple[Any, ...]] = []
    size, batch = 0, 1
    while True:
        _limit_time(raw, deadline, timeout_s)
        chunk = cursor.fetchmany(batch)
        for row in chunk:
            if max_rows is not None and len(rows) >= max_rows:
                return QueryResult(columns, rows, truncated=True)
            if max_bytes is not None and size >= max_bytes:
                return QueryResult(columns, rows, truncated=True, cut_by_size=True)
            rows.append(tuple(row))
            size += sum(value_bytes(v) for v in row)
        if len(chunk) < batch:
            return QueryResult(columns, rows, truncated=False)
        batch = _next_batch(size, len(rows), max_bytes)


def _next_batch(size: int, n_rows: int, max_bytes: int | None) -> int:
    """Rows to fetch next: what fits in the bytes still allowed (by the rows so far), so
    that one batch never holds much more than the cap."""
    if max_bytes is None:
        return BATCH_ROWS
    room = max(0, max_bytes - size)
    return max(1, min(BATCH_ROWS, room * n_rows // max(size, 1) + 1))


def _limit_time(raw: psycopg.Connection, deadline: float, timeout_s: float) -> None:
    """Each FETCH is a statement of its own: give it only the time left of the query's."""
    left_ms = int((deadline - time.monotonic()) * 1000)
    if left_ms <= 0:
        raise InputError(f"the query ran longer than {timeout_s:g} s and was cancelled.")
    raw.execute(f"SET LOCAL statement_timeout = {left_ms}")


def _fetch_plain(raw: psycopg.Connection, statement: str, max_rows: int | None) -> QueryResult:
    cursor = raw.execute(statement, prepare=True)
    if cursor.description is None:
        return QueryResult(columns=[], rows=[], truncated=False)
    columns = [d.name for d in cursor.description]
    rows = cursor.fetchall() if max_rows is None else cursor.fetchmany(max_rows + 1)
    truncated = max_rows is not None and len(rows) > max_rows
    return QueryResult(columns, [tuple(r) for r in rows[:max_rows]], truncated)


def run_readonly(
    engine: Engine,
    statement: str,
    *,
    max_rows: int | None = None,
    max_bytes: int | None = None,
    timeout_s: float = 60.0,
) -> QueryResult:
    """Run one user statement as the reader of `engine` (see the module docstring)."""
    statement = statement.strip().rstrip(";").strip()
    if "\0" in statement:
        raise InputError("the query contains a NUL byte, which SQL text cannot hold; remove it.")
    if not statement:
        raise InputError(
            "the query is empty; give one SQL statement, e.g. SELECT * FROM layer_summary."
        )
    with reader_connection(engine) as conn:
        raw = conn.connection.driver_connection
        assert isinstance(raw, psycopg.Connection)
        try:
            raw.execute("SET TRANSACTION READ ONLY")
            _check_role(raw)
            raw.execute(f"SET LOCAL statement_timeout = {int(timeout_s * 1000)}")
            return _fetch(raw, statement, max_rows, max_bytes, timeout_s)
        except pg_errors.ConfigurationLimitExceeded as exc:
            raise InputError(
                f"the query needs more temporary disk space than the query console allows "
                f"({exc.diag.message_primary}); narrow it (fewer rows, a LIMIT, less sorting)."
            ) from None
        except pg_errors.ReadOnlySqlTransaction as exc:
            raise ReadOnlyViolation(_read_only_refusal(statement, exc)) from None
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
