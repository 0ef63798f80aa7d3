"""Which database to talk to, and a checked SQLAlchemy engine for it."""

from __future__ import annotations

import functools

from sqlalchemy import Engine, create_engine, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from catalogue.config import Settings, get_settings
from catalogue.db import server
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
        return server._url(st.socket_dir, server.DATABASE_NAME)
    return server.start(settings.postgres_dir)


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
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else "connection failed"
            raise DatabaseUnavailable(
                f"cannot connect to {redacted(url)}: {reason}. Check DATABASE_URL "
                "(or unset it to use the embedded server) and that the server is running."
            ) from exc
    return engine
