"""The UI's connection to the catalogue: which database, its engines, and the stop when
it cannot be opened.

The engine is a `st.cache_resource` keyed by the configured database (`engine_key`), so
a test or a user switching DATABASE_URL gets a new one; every cached read
(`ui.queries`) takes that same key as its first argument.
"""

from __future__ import annotations

import streamlit as st
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from catalogue.config import get_settings
from catalogue.db.engine import database_url, get_engine, get_reader_engine, redacted
from catalogue.db.migrate import ensure_current
from catalogue.errors import UnitcatError
from ui.faults import show_database_error

EMBEDDED = "embedded"


def engine_key() -> str:
    """Which database: DATABASE_URL, or the embedded server's marker."""
    return get_settings().database_url or EMBEDDED


@st.cache_resource(show_spinner="Connecting to the catalogue …")
def engine_for(key: str) -> Engine:
    """The owner's engine of the database `key` names, its schema checked once."""
    url = database_url() if key == EMBEDDED else key
    engine = get_engine(url)
    ensure_current(engine, upgrade_empty=key == EMBEDDED)  # a read never creates tables
    return engine


def engine() -> Engine:
    return engine_for(engine_key())


@st.cache_resource(show_spinner="Connecting to the catalogue …")
def reader_engine_for(key: str, reader_url: str | None) -> Engine:
    engine_for(key)  # the catalogue exists and is current
    return get_reader_engine()


def reader_engine() -> Engine:
    """The SELECT-only reader's engine, for user SQL (the SQL page)."""
    return reader_engine_for(engine_key(), get_settings().reader_url)


def connect_or_stop() -> Engine:
    """The engine, or an error box and a stopped script when the database is unusable."""
    try:
        return engine()
    except (UnitcatError, OperationalError) as exc:
        show_database_error(exc)
        st.stop()
        raise  # unreachable: st.stop raises


def database_caption() -> str:
    key = engine_key()
    return "embedded PostgreSQL" if key == EMBEDDED else redacted(key)
