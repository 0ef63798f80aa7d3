"""Alembic, driven from code: upgrade, downgrade, the schema check at start, the views of a revision.

The migration scripts live at the top of the repository (`migrations/`, with
`alembic.ini` beside it, so `alembic -c alembic.ini upgrade head` works in a
checkout) and are installed inside this package as `catalogue/migrations` and
`catalogue/alembic.ini` (in the repository these two are symbolic links to the
top-level ones). They are found through importlib.resources, so an installed
wheel migrates a database with no repository anywhere; the Alembic
configuration is built here, not read from the ini file.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Engine, func, inspect, select
from sqlalchemy.exc import ProgrammingError

from catalogue.db.schema import Base
from catalogue.errors import ConfigError, InputError, SchemaOutOfDate


def script_location() -> Path:
    """The folder of env.py and versions/, as installed with this package."""
    folder = resources.files("catalogue") / "migrations"
    if not isinstance(folder, Path) or not (folder / "env.py").is_file():
        raise ConfigError(
            f"unitcat's migration scripts are missing from {folder}; "
            "reinstall unitcat (pip install --force-reinstall unitcat)."
        )
    return folder


def alembic_config(url: str, *, scripts: Path | None = None) -> Config:
    """An Alembic configuration for the database at `url` (scripts: another migrations folder)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(scripts or script_location()))
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["configure_logger"] = False
    return cfg


def _scripts(scripts: Path | None = None) -> ScriptDirectory:
    return ScriptDirectory.from_config(
        alembic_config("postgresql+psycopg://unused", scripts=scripts)
    )


def head_revision(*, scripts: Path | None = None) -> str:
    head = _scripts(scripts).get_current_head()
    if head is None:
        raise ConfigError(f"{scripts or script_location()} holds no revisions; reinstall unitcat.")
    return head


def revisions(*, scripts: Path | None = None) -> list[str]:
    """Every revision id, from the first to the head."""
    return [s.revision for s in reversed(list(_scripts(scripts).walk_revisions()))]


def revision_views(revision: str = "head", *, scripts: Path | None = None) -> dict[str, str]:
    """The views a database at `revision` has, name -> SELECT, from the revisions' literal SQL.

    Each revision that touches views says so in module constants: `VIEWS` (the
    views it creates) and `PREVIOUS_VIEWS` (the views it drops, as they were).
    """
    views: dict[str, str] = {}
    for script in reversed(list(_scripts(scripts).walk_revisions("base", revision))):
        for name in getattr(script.module, "PREVIOUS_VIEWS", {}):
            if name not in views:
                raise ConfigError(
                    f"revision {script.revision} replaces view {name}, which no earlier "
                    "revision created."
                )
            del views[name]
        views.update(getattr(script.module, "VIEWS", {}))
    return views


def current_revision(engine: Engine) -> str | None:
    """The revision in the database's `alembic_version` (None: no catalogue yet).

    An `alembic_version` that Alembic cannot read (another application's table of that
    name) is a `SchemaOutOfDate` that says so."""
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    except (ProgrammingError, CommandError) as exc:
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
    url = engine.url.render_as_string(hide_password=False)
    try:
        getattr(command, action)(alembic_config(url, scripts=scripts), revision)
    except CommandError as exc:
        known = revisions(scripts=scripts)
        raise InputError(
            f"cannot {action} to {revision!r}: {_first(exc)}. Revisions: base, "
            f"{', '.join(known)} (head = {known[-1]}); relative steps as -1 or +1."
        ) from exc


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
    current = _check_known(engine)
    head = head_revision()
    if current == head:
        return
    if current is None and upgrade_empty:
        with _migration_lock(engine):  # another command may have created it meanwhile
            if _check_known(engine) is None:
                _alembic("upgrade", engine, "head", None)
        return
    raise SchemaOutOfDate(
        f"the catalogue schema is at revision {current or 'none'} but this unitcat needs {head}; "
        "run `unitcat db upgrade`."
    )
