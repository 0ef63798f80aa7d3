"""Alembic, driven from code: upgrade, downgrade, and the schema check at start.

The scripts and what they hold (revisions, the views of a revision) are read through
`catalogue.db.revisions`; this module runs them against a database, one migration at a
time, and grants the reader role SELECT on what an upgrade created.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from psycopg import errors as pg_errors
from sqlalchemy import Connection, Engine, column, func, inspect, select, table, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, ProgrammingError

from catalogue.config import get_settings
from catalogue.db import roles
from catalogue.db.engine import get_engine, get_reader_engine
from catalogue.db.revisions import (
    alembic_config,
    head_revision,
    revision_views,
    revisions,
    script_location,
    scripts_head,
)
from catalogue.errors import ConfigError, InputError, SchemaOutOfDate

__all__ = [
    "DroppedData",
    "alembic_config",
    "current_revision",
    "downgrade",
    "downgrade_drops",
    "ensure_current",
    "ensure_readable",
    "head_revision",
    "revision_views",
    "revisions",
    "script_location",
    "scripts_head",
    "upgrade",
]


def current_revision(engine: Engine) -> str | None:
    """The revision in the database's `alembic_version` (None: no catalogue yet).

    An `alembic_version` that Alembic cannot read (another application's table of that
    name) is a `SchemaOutOfDate` that says so."""
    from alembic.runtime.migration import MigrationContext
    from alembic.util.exc import CommandError

    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    except (ProgrammingError, CommandError) as exc:
        if isinstance(getattr(exc, "orig", None), pg_errors.InsufficientPrivilege):
            raise  # a role that may not read the catalogue (`ensure_readable` names the fix)
        raise SchemaOutOfDate(
            f"the database has an alembic_version table that is not unitcat's "
            f"({_first(exc)}); it belongs to another application: point DATABASE_URL at "
            "the catalogue's database, or at an empty one."
        ) from exc


def _first(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    return (str(orig).strip().splitlines() or [type(orig).__name__])[0]


def _check_known(engine: Engine, *, scripts: Path | None = None) -> str | None:
    """The current revision, refusing one that no unitcat revision has (a foreign
    `alembic_version`, or a newer unitcat's) and, without one, tables of the catalogue's
    names that someone else created (a foreign `model` table)."""
    from catalogue.db.schema import Base

    current = current_revision(engine)
    known = revisions(scripts=scripts)
    if current is not None and current not in known:
        raise SchemaOutOfDate(
            f"the database is at revision {current!r}, which is not a unitcat revision "
            f"(they are {known[0]} … {known[-1]}): it belongs to another application or a "
            "newer unitcat; point DATABASE_URL at the catalogue's database, or upgrade unitcat."
        )
    if current is None:
        names = set(inspect(engine).get_table_names()) | set(inspect(engine).get_view_names())
        ours = sorted(names & (set(Base.metadata.tables) | set(revision_views(scripts=scripts))))
        if ours:
            raise SchemaOutOfDate(
                f"the database already has {', '.join(ours[:5])}{' …' if len(ours) > 5 else ''}"
                " but no unitcat schema revision: these tables belong to something else. "
                "Point DATABASE_URL at an empty database for the catalogue "
                "(CREATE DATABASE unitcat), or at the catalogue's own."
            )
    return current


def _alembic(action: str, engine: Engine, revision: str, scripts: Path | None) -> None:
    from alembic import command
    from alembic.util.exc import CommandError

    url = engine.url.render_as_string(hide_password=False)
    try:
        getattr(command, action)(alembic_config(url, scripts=scripts), revision)
    except CommandError as exc:
        raise _unknown_revision(action, revision, exc, scripts) from exc


def _unknown_revision(
    action: str, revision: str, exc: Exception, scripts: Path | None = None
) -> InputError:
    """The one line for a revision Alembic cannot go to (`db upgrade/downgrade nosuchrev`)."""
    known = revisions(scripts=scripts)
    return InputError(
        f"cannot {action} to {revision!r}: {_first(exc)}. Revisions: base, "
        f"{', '.join(known)} (head = {known[-1]}); relative steps as -1 or +1."
    )


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    """One migration at a time per database: commands started at once on a fresh catalogue
    would otherwise all create its tables (and collide)."""
    with engine.connect() as conn:
        conn.execute(select(func.pg_advisory_lock(func.hashtext("unitcat.migrate"))))
        conn.commit()
        try:
            yield
        finally:
            conn.execute(select(func.pg_advisory_unlock(func.hashtext("unitcat.migrate"))))
            conn.commit()


def upgrade(engine: Engine, revision: str = "head", *, scripts: Path | None = None) -> None:
    with _migration_lock(engine):
        _check_known(engine, scripts=scripts)
        _alembic("upgrade", engine, revision, scripts)
        _grant_reader(engine)


def _grant_reader(engine: Engine) -> None:
    """The reader may SELECT what the upgrade created, also when it ran as a role other than
    the owner (whose default privileges cover the rest)."""
    settings = get_settings()
    reader = roles.READER_ROLE
    if settings.reader_url:
        reader = make_url(settings.reader_url).username or reader
    with engine.begin() as conn:
        conn.connection.driver_connection.execute(roles.grant_reader_sql(reader))


def downgrade(engine: Engine, revision: str, *, scripts: Path | None = None) -> None:
    with _migration_lock(engine):
        _check_known(engine, scripts=scripts)
        _alembic("downgrade", engine, revision, scripts)


def ensure_current(engine: Engine, *, upgrade_empty: bool = True) -> None:
    """Refuse to work on a schema this code does not expect, naming the fix.

    A database with no catalogue at all (a fresh embedded server, an empty
    DATABASE_URL database) is upgraded to head when `upgrade_empty` is set; a
    database at another revision is never changed behind the user's back.
    """
    if _at_head(engine):
        return
    current = _check_known(engine)
    head = head_revision()
    if current == head:
        return
    if current is None and upgrade_empty:
        with _migration_lock(engine):  # another command may have created it meanwhile
            if _check_known(engine) is None:
                _alembic("upgrade", engine, "head", None)
                _grant_reader(engine)
        return
    if current is None:
        raise SchemaOutOfDate(
            f"the catalogue is not initialised: database {engine.url.database} has no unitcat "
            "tables; run `unitcat db upgrade` to create them (or any `unitcat ingest …` command)."
        )
    raise SchemaOutOfDate(
        f"the catalogue schema is at revision {current or 'none'} but this unitcat needs {head}; "
        "run `unitcat db upgrade`."
    )


def _at_head(engine: Engine) -> bool:
    """Whether the database is at the scripts' head, known without Alembic (the common case
    of every command); anything else (no catalogue, another revision, a foreign or
    unreadable `alembic_version`) is left to the full check, which names the fix."""
    head = scripts_head()
    if head is None:
        return False
    try:
        with engine.connect() as conn:
            found = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    except DBAPIError:
        return False
    return found == [head]


def ensure_readable(engine: Engine | None = None) -> None:
    """`ensure_current` for commands that only read (`runs`, `query`, the UI).

    The embedded catalogue is created on first use, as before. A DATABASE_URL
    database is never changed by a read: an empty one is reported as not
    initialised, naming the command that initialises it. Without `engine`, the
    check runs as the reader on a DATABASE_URL server (user SQL may have no other
    credentials) and as the owner on the embedded one.
    """
    if get_settings().database_url is None:
        ensure_current(engine or get_engine())
        return
    engine = engine or get_reader_engine()
    try:
        ensure_current(engine, upgrade_empty=False)
    except ProgrammingError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else "permission denied"
        raise ConfigError(
            f"{engine.url.username} cannot read the catalogue ({reason}); run `unitcat db roles` "
            "(or have an administrator run the SQL of `unitcat db roles --print`)."
        ) from None


@dataclass(frozen=True)
class DroppedData:
    """What a downgrade drops: whole tables and single columns, with the rows they hold."""

    tables: dict[str, int]  # table -> rows
    columns: dict[str, int]  # "table.column" -> rows with a value

    @property
    def ratings(self) -> int:
        """Human ratings among the dropped rows: they cannot be computed again."""
        return self.tables.get("rating", 0)

    @property
    def twoafc_answers(self) -> int:
        """People's 2-AFC answers among the dropped rows: they cannot be computed again."""
        return self.tables.get("twoafc_response", 0)

    def __bool__(self) -> bool:
        return bool(self.tables or self.columns)

    def describe(self) -> str:
        """One line: what the downgrade drops (human ratings called out)."""
        full = {name: rows for name, rows in self.tables.items() if rows}
        empty = [name for name, rows in self.tables.items() if not rows]
        parts = [f"table {name} ({rows:,} rows)" for name, rows in full.items()]
        parts += [f"column {name} ({rows:,} values)" for name, rows in self.columns.items()]
        if empty:
            parts.append(f"{len(empty)} empty tables ({', '.join(empty)})")
        text = ", ".join(parts)
        if self.ratings:
            text += f"; including {self.ratings:,} human ratings, which cannot be recomputed"
        if self.twoafc_answers:
            text += (
                f"; including {self.twoafc_answers:,} people's 2-AFC answers, which cannot "
                "be recomputed"
            )
        return text


def _table_columns(conn: Connection) -> dict[str, set[str]]:
    rows = conn.execute(
        text(
            "SELECT c.relname, a.attname FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
            "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') "
            "AND c.relname <> 'alembic_version'"
        )
    )
    tables: dict[str, set[str]] = {}
    for name, attribute in rows:
        tables.setdefault(name, set()).add(attribute)
    return tables


def downgrade_drops(engine: Engine, revision: str) -> DroppedData:
    """What `downgrade(engine, revision)` would drop, found by doing it and rolling it back.

    PostgreSQL's DDL is transactional, so the real migration scripts run inside
    one transaction that is rolled back: the answer holds for any revision,
    including columns a table revision removes.
    """
    from alembic import command
    from alembic.util.exc import CommandError

    url = engine.url.render_as_string(hide_password=False)
    with _migration_lock(engine), engine.connect() as conn:
        _check_known(engine)
        transaction = conn.begin()
        try:
            before = _table_columns(conn)
            cfg = alembic_config(url)
            cfg.attributes["connection"] = conn
            try:
                command.downgrade(cfg, revision)
            except CommandError as exc:
                raise _unknown_revision("downgrade", revision, exc) from None
            after = _table_columns(conn)
        finally:
            transaction.rollback()
        tables = sorted(set(before) - set(after))
        columns = sorted((t, c) for t in set(before) & set(after) for c in before[t] - after[t])
        counts = {
            t: conn.execute(select(func.count()).select_from(table(t))).scalar_one() for t in tables
        }
        values = {
            f"{t}.{c}": conn.execute(
                select(func.count(column(c))).select_from(table(t))
            ).scalar_one()
            for t, c in columns
        }
    return DroppedData(tables=counts, columns=values)
