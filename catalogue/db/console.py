"""Read-only SQL for the `unitcat query` command and the UI's SQL page.

User SQL runs as a prepared statement (so one statement only) in a READ ONLY
transaction that is always rolled back: PostgreSQL itself refuses any write.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from sqlalchemy import Engine

from catalogue.errors import InputError, ReadOnlyViolation


@dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]
    truncated: bool


def run_readonly(
    engine: Engine, statement: str, *, max_rows: int | None = None, timeout_s: float = 60.0
) -> QueryResult:
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
            conn.rollback()
