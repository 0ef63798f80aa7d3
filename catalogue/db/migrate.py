"""Alembic, driven from code: upgrade, downgrade, and the schema check at start."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from catalogue.errors import SchemaOutOfDate

REPO_ROOT = Path(__file__).resolve().parents[2]


def alembic_config(url: str) -> Config:
    cfg = Config(str(REPO_ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(REPO_ROOT / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["configure_logger"] = False
    return cfg


def head_revision() -> str:
    script = ScriptDirectory.from_config(alembic_config("postgresql+psycopg://unused"))
    head = script.get_current_head()
    assert head is not None, "migrations/ has no revisions"
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    command.upgrade(alembic_config(engine.url.render_as_string(hide_password=False)), revision)


def downgrade(engine: Engine, revision: str) -> None:
    command.downgrade(alembic_config(engine.url.render_as_string(hide_password=False)), revision)


def ensure_current(engine: Engine, *, upgrade_empty: bool = True) -> None:
    """Refuse to work on a schema this code does not expect, naming the fix.

    A database with no catalogue at all (a fresh embedded server, an empty
    DATABASE_URL database) is upgraded to head when `upgrade_empty` is set; a
    database at another revision is never changed behind the user's back.
    """
    current = current_revision(engine)
    head = head_revision()
    if current == head:
        return
    if current is None and upgrade_empty:
        upgrade(engine)
        return
    raise SchemaOutOfDate(
        f"the catalogue schema is at revision {current or 'none'} but this unitcat needs {head}; "
        "run `unitcat db upgrade`."
    )
