"""A new migration revision for the views, when the registries have changed them.

`catalogue.db.views` says what the views should be now; the revisions say, in
literal SQL, what each revision created (`VIEWS`) and what it replaced
(`PREVIOUS_VIEWS`), and `catalogue.db.revisions.revision_views` folds them into
the views a database at a revision has. This module compares the two and writes
the revision that takes the head to the current views: the changed views and
the views that read them are dropped (their head SQL kept for the downgrade)
and created from the current SQL. `python -m catalogue.db.views --revision
"what changed" [--write]` runs it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Protocol

from catalogue.db import revisions


class View(Protocol):
    """A view as `catalogue.db.views` defines it now: its name, its SELECT, the views it
    reads, and the SQL that recomputes what is cached from it."""

    @property
    def name(self) -> str: ...
    @property
    def select(self) -> str: ...
    @property
    def reads(self) -> tuple[str, ...]: ...
    @property
    def refresh(self) -> str | None: ...


def normalised(sql: str) -> str:
    """SQL with runs of white space made one space: how two view texts are compared."""
    return " ".join(sql.split())


def changed_views(previous: Mapping[str, str], current: Mapping[str, View]) -> list[str]:
    """Views to drop and recreate to go from `previous` (name -> SELECT) to `current`.

    A view whose SQL differs (white space aside), a new view, a removed view, and
    every view that reads one of these (PostgreSQL refuses to drop a view that
    another reads), in no particular order.
    """
    changed = {
        name
        for name in {*previous, *current}
        if name not in previous
        or name not in current
        or normalised(previous[name]) != normalised(current[name].select)
    }
    grew = True
    while grew:
        readers = {v.name for v in current.values() if changed.intersection(v.reads)}
        grew = not readers <= changed
        changed |= readers
    return sorted(changed)


def _literal(select: str) -> str:
    """`select` as a triple-quoted Python literal that evaluates back to it."""
    if '"""' in select or "\\" in select or select.endswith('"'):
        return repr(select)
    return f'"""{select}"""'


def _views_literal(views: Mapping[str, str]) -> str:
    if not views:
        return "{}"
    lines = [f'    "{name}": {_literal(select)},' for name, select in views.items()]
    return "{\n" + "\n".join(lines) + "\n}"


def slug(message: str) -> str:
    """A file-name slug of a revision message, cut at a word like Alembic's."""
    words = re.sub(r"[^a-z0-9]+", "_", message.lower()).strip("_")
    if len(words) <= 40:
        return words
    cut = words[:41]
    return cut.rsplit("_", 1)[0] if "_" in cut else cut[:40]


def _refresh_literal(refresh: Sequence[str]) -> str:
    if not refresh:
        return "()"
    return "(\n" + "".join(f"    {_literal(sql)},\n" for sql in refresh) + ")"


def render_revision(
    message: str,
    revision: str,
    down_revision: str,
    previous: Mapping[str, str],
    views: Mapping[str, str],
    refresh: Sequence[str] = (),
) -> str:
    """A revision module that replaces the views `previous` (as the head left them) by `views`.

    Both mappings are name -> SELECT in creation order and are written out as
    literals, so the revision keeps meaning what it means today. `refresh` is SQL that
    recomputes what is cached from the replaced views, run after the views are created
    in both directions.
    """
    replaced = ", ".join(sorted({*previous, *views}))
    return f'''"""{message}

Views dropped and created: {replaced}, with the SQL that catalogue.db.views
generated when this revision was written (literal SQL: never edit it; a changed
view is a new revision).

Revision ID: {revision}
Revises: {down_revision}
Create Date: {date.today().isoformat()}
"""

from collections.abc import Sequence

from alembic import op

revision: str = "{revision}"
down_revision: str | None = "{down_revision}"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The views as revision {down_revision} left them, name -> SELECT in creation order:
#: dropped by upgrade, restored by downgrade.
PREVIOUS_VIEWS: dict[str, str] = {_views_literal(previous)}

#: The views this revision creates, name -> SELECT in creation order.
VIEWS: dict[str, str] = {_views_literal(views)}

#: Recomputes what is cached from these views, after they are created (both ways).
REFRESH: tuple[str, ...] = {_refresh_literal(refresh)}


def upgrade() -> None:
    for name in reversed(PREVIOUS_VIEWS):
        op.execute(f"DROP VIEW {{name}}")
    for name, select in VIEWS.items():
        op.execute(f"CREATE VIEW {{name}} AS {{select}}")
    for statement in REFRESH:
        op.execute(statement)


def downgrade() -> None:
    for name in reversed(VIEWS):
        op.execute(f"DROP VIEW {{name}}")
    for name, select in PREVIOUS_VIEWS.items():
        op.execute(f"CREATE VIEW {{name}} AS {{select}}")
    for statement in REFRESH:
        op.execute(statement)
'''


def next_revision(head: str) -> str:
    """The id after `head`: revisions are numbered 0001, 0002, ..."""
    if not head.isdigit():
        raise ValueError(f"cannot number the revision after {head!r}; give the id by hand")
    return f"{int(head) + 1:0{len(head)}d}"


def revision_for(
    message: str,
    head: str,
    head_views: Mapping[str, str],
    current: Mapping[str, View],
) -> tuple[str, str] | None:
    """(revision id, module source) taking the views from `head_views` to `current`;
    None when they already agree."""
    changed = set(changed_views(head_views, current))
    if not changed:
        return None
    previous = {name: sql for name, sql in head_views.items() if name in changed}
    views = {name: v.select for name, v in current.items() if name in changed}
    refresh = list(
        dict.fromkeys(v.refresh for v in current.values() if v.name in changed and v.refresh)
    )
    revision = next_revision(head)
    return revision, render_revision(message, revision, head, previous, views, refresh)


def make_revision(message: str, current: Mapping[str, View], *, write: bool = False) -> str:
    """The revision bringing the head's views up to `current`, as text to print, or
    (`write`) written to the migrations' versions folder; what to print either way."""
    head = revisions.head_revision()
    made = revision_for(message, head, revisions.revision_views(head), current)
    if made is None:
        return f"the views of revision {head} are the current ones; no revision needed.\n"
    revision, source = made
    if not write:
        return source
    path = revisions.script_location() / "versions" / f"{revision}_{slug(message)}.py"
    path.write_text(source)
    return f"wrote {path.resolve()}\n"
