"""What a page shows instead of its content: an unusable database, an unexpected fault,
an empty catalogue — each one box that says what is wrong and what to do.

Faults are explained by `catalogue.faults` (one line, and the details in a log file),
as the CLI explains them; the page never shows a traceback or SQL.
"""

from __future__ import annotations

import streamlit as st
from sqlalchemy.exc import OperationalError

from catalogue.errors import SchemaOutOfDate
from catalogue.faults import explain, write_log
from catalogue.query.overview import Overview

EMPTY_MESSAGE = (
    "Nothing here yet: the catalogue has no scored units. Run `unitcat ingest …` "
    "(extract activations, then score them) and refresh this page."
)
DATABASE_FIX = (
    "Fix: start the embedded server with `unitcat db start`, or set DATABASE_URL to a "
    "running PostgreSQL server (postgresql+psycopg://user@host/db), then reload this page."
)


def show_database_error(exc: BaseException) -> None:
    """One error box saying what is wrong and how to fix it."""
    if isinstance(exc, OperationalError):
        first = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc).splitlines()[0]
        message = f"The catalogue database stopped answering ({first})."
    else:
        message = str(exc)
    fix = (
        "Fix: run `unitcat db upgrade`, then reload this page."
        if isinstance(exc, SchemaOutOfDate)
        else DATABASE_FIX
    )
    st.error(f"**Cannot open the catalogue.** {message}\n\n{fix}", icon=":material/error:")


def show_fault(exc: BaseException) -> None:
    """One error box for an unexpected failure: its one line and the log file with the
    details (never the traceback or the SQL on the page)."""
    fault = explain(exc)
    path = write_log(exc, argv=["unitcat ui"])
    where = f"\n\nDetails: `{path}`" if path is not None else ""
    st.error(f"**Something went wrong.** {fault.message}{where}", icon=":material/error:")


def stop_if_empty(ov: Overview) -> None:
    """Show the friendly empty-catalogue message and stop the page."""
    if ov.is_empty:
        st.info(EMPTY_MESSAGE, icon=":material/inventory_2:")
        st.stop()
