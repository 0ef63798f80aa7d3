"""Which database to talk to, and a checked SQLAlchemy engine for it.

Two connections to one catalogue: the owner (`database_url`, `get_engine`), which
ingest, migrations and the UI's own pages use, and the reader
(`reader_database_url`, `get_reader_engine`), which user SQL uses
(`catalogue.db.readonly`). On a DATABASE_URL server the reader is DATABASE_URL's
server and database as the role `unitcat_reader` (password from libpq's own
sources: ~/.pgpass, PGPASSWORD), or UNITCAT_READER_URL, which may differ from
DATABASE_URL only in its user and password; see `catalogue.db.roles`.
"""

from __future__ import annotations

import functools
import hashlib
import re

from sqlalchemy import Engine, create_engine, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from catalogue.config import Settings, get_settings
from catalogue.db import roles, server
from catalogue.errors import DatabaseUnavailable


def database_url(settings: Settings | None = None, *, start_embedded: bool = True) -> str:
    """The configured server's URL; without DATABASE_URL, the embedded server's (started if needed)."""
    settings = settings or get_settings()
    if settings.database_url:
        return settings.database_url
    if not start_embedded:
        st = server.status(settings.postgres_dir)
        if not st.running or st.socket_dir is None:
            raise DatabaseUnavailable(
                f"the embedded PostgreSQL in {settings.postgres_dir} is not running; "
                "run `unitcat db start`."
            )
        return server.owner_url(st.socket_dir)
    return server.start(settings.postgres_dir)


def reader_database_url(settings: Settings | None = None) -> str:
    """The URL user SQL connects with: the reader role on the configured catalogue."""
    settings = settings or get_settings()
    if settings.reader_url:
        return settings.reader_url
    return roles.reader_url_for(database_url(settings))


def redacted(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


@functools.cache
def _engine_for(url: str) -> Engine:
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


def get_engine(url: str | None = None, *, check: bool = True) -> Engine:
    """A pooled engine for `url` (default: the configured database), checked by a round trip.

    A server that is down or a wrong URL raises `DatabaseUnavailable` with one line
    that says which server and what to do.
    """
    url = url or database_url()
    engine = _engine_for(url)
    if check:
        try:
            with engine.connect() as conn:
                conn.execute(select(1))
        except OperationalError as exc:
            raise _unavailable(url, exc) from exc
    return engine


def _unavailable(url: str, exc: OperationalError) -> DatabaseUnavailable:
    reason = str(exc.orig).strip().splitlines()[0] if exc.orig else "connection failed"
    return DatabaseUnavailable(
        f"cannot connect to {redacted(url)}: {reason}. Check DATABASE_URL "
        "(or unset it to use the embedded server) and that the server is running."
    )


def get_reader_engine(url: str | None = None) -> Engine:
    """A pooled engine for the reader role, checked by a round trip; a reader that cannot
    connect (e.g. a DATABASE_URL server without the roles) says how to fix it."""
    url = url or reader_database_url()
    engine = _engine_for(url)
    try:
        with engine.connect() as conn:
            conn.execute(select(1))
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else "connection failed"
        if not _refused_the_role(exc, reason):
            raise _unavailable(url, exc) from exc  # the server, not the role
        raise DatabaseUnavailable(
            f"user SQL cannot connect as the reader ({redacted(url)}: {reason}); create the "
            "roles with `unitcat db roles` (or have an administrator run `unitcat db roles "
            "--print`), and set UNITCAT_READER_URL if the reader needs a password."
        ) from exc
    return engine


def _refused_the_role(exc: OperationalError, reason: str) -> bool:
    """Whether the server answered but refused this role (no such role, no password …)."""
    if str(getattr(exc.orig, "sqlstate", None) or "").startswith("28"):
        return True
    return bool(re.search(r"role .* does not exist|authentication failed|no password", reason))


def database_identity(engine: Engine) -> str:
    """A short name for this database on this server, the same for every connection to it.

    The server's system identifier (set by initdb) and the database's oid: two
    databases on one server, or the same name on two servers, differ; a database
    cloned or restored elsewhere gets a new oid. Files kept outside the database
    (AM panels) are keyed by it, so two catalogues sharing one UNITCAT_HOME never
    overwrite each other's files.
    """
    with engine.connect() as conn:
        system_id, oid = conn.execute(
            text(
                "SELECT system_identifier, "
                "(SELECT oid FROM pg_database WHERE datname = current_database()) "
                "FROM pg_control_system()"
            )
        ).one()
    return hashlib.sha256(f"{system_id}:{oid}".encode()).hexdigest()[:12]
