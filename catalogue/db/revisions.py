"""What the migration scripts hold: the revisions, their order, and the views each creates.

The scripts live at the top of the repository (`migrations/`, with `alembic.ini`
beside it, so `alembic -c alembic.ini upgrade head` works in a checkout) and are
installed inside this package as `catalogue/migrations` and `catalogue/alembic.ini`
(in the repository these two are symbolic links to the top-level ones). They are
found through importlib.resources, so an installed wheel migrates a database with no
repository anywhere; the Alembic configuration is built here, not read from the ini
file.

Nothing here touches a database: the migrations runner (`catalogue.db.migrate`), the
roles' grants (`catalogue.db.roles`, which grant on every relation a revision creates)
and the view revisions (`catalogue.db.view_revision`) all read the scripts through
this module.
"""

from __future__ import annotations

import ast
import functools
import re
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from catalogue.errors import ConfigError

if TYPE_CHECKING:  # Alembic and the ORM schema load when used: `unitcat query` needs neither
    from alembic.config import Config
    from alembic.script import ScriptDirectory


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
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(scripts or script_location()))
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["configure_logger"] = False
    return cfg


def _scripts(scripts: Path | None = None) -> ScriptDirectory:
    from alembic.script import ScriptDirectory

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


def catalogue_relations() -> list[str]:
    """The names of every table and view any revision of the catalogue creates: the ORM's
    tables and every view a revision's `VIEWS` names (a view any revision has is created by
    one), read in one walk of the installed scripts, once per process (they do not change
    while it runs; every upgrade grants on these names)."""
    return list(_relations())


@functools.cache
def _relations() -> tuple[str, ...]:
    from catalogue.db.schema import Base

    names = set(Base.metadata.tables) | {"alembic_version"}
    for script in _scripts().walk_revisions():
        names |= set(getattr(script.module, "VIEWS", {}))
    return tuple(sorted(names))


#: `revision = "0019"` / `down_revision: str | None = "0018"` at the start of a line of a script.
_ASSIGNMENT = re.compile(r"^(revision|down_revision)\b[^=\n]*=(.*)$", re.MULTILINE)


def scripts_head() -> str | None:
    """The head revision, read from the scripts' text without importing Alembic.

    Alembic finds it by importing every script, which costs a command that only
    reads (`unitcat query`) more than its query; each script assigns `revision`
    and `down_revision` as literals, as Alembic's template writes them. None when
    a script does otherwise, or the scripts have no single head: the caller then
    asks Alembic (`head_revision`), which also says what is wrong.
    """
    found_revisions: set[str] = set()
    parents: set[str] = set()
    for path in (script_location() / "versions").glob("*.py"):
        found = _ASSIGNMENT.findall(path.read_text(encoding="utf-8"))
        values = dict(found)
        if len(found) != 2 or len(values) != 2:
            return None
        try:
            revision = ast.literal_eval(values["revision"].strip())
            down = ast.literal_eval(values["down_revision"].strip())
        except (ValueError, SyntaxError):
            return None
        downs = (down,) if isinstance(down, str) else down
        if not isinstance(revision, str) or not isinstance(downs, tuple | list | type(None)):
            return None
        found_revisions.add(revision)
        parents.update(downs or ())
    heads = found_revisions - parents
    return heads.pop() if len(heads) == 1 else None
