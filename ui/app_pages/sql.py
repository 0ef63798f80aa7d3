"""SQL: a read-only console on the catalogue (catalogue.db.readonly.run_readonly).

The statement runs as the SELECT-only reader role, in a READ ONLY transaction
that is rolled back, on a connection that keeps no state: PostgreSQL itself
refuses writes, server files and programs, and the refusal is shown as a message.
The views and tables with their columns are listed from the database's own catalog
as the reader sees it; a result with model, layer and unit columns links each row
to its unit. The statement is kept in the URL (?sql=…), so a link runs the same query.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st
from sqlalchemy import Engine

from catalogue.config import get_settings
from catalogue.db.readonly import run_readonly
from catalogue.errors import InputError, ReadOnlyViolation, UnitcatError
from catalogue.query.examples import EXAMPLES
from ui import connection, queries, tables
from ui import urlstate as url

MAX_ROWS = 5000
CUSTOM = "— your own query —"
TEXT, EXAMPLE, OUTCOME = "sql_text", "sql_example", "sql_outcome"
UNIT_COLUMNS = ("model", "layer", "unit")


def _example_chosen() -> None:
    """Choosing an example puts its text in the editor."""
    chosen = st.session_state.get(EXAMPLE)
    if chosen in EXAMPLES:
        st.session_state[TEXT] = EXAMPLES[chosen]


def _submitted() -> None:
    """An edited statement is no longer the example it started from."""
    text = st.session_state.get(TEXT, "")
    if EXAMPLES.get(st.session_state.get(EXAMPLE)) != text:
        st.session_state[EXAMPLE] = CUSTOM
    st.session_state["_sql_run"] = True


def _run(engine: Engine, statement: str) -> None:
    try:
        result = run_readonly(engine, statement, max_rows=MAX_ROWS)
    except ReadOnlyViolation as exc:
        st.session_state[OUTCOME] = ("refused", str(exc))
    except (InputError, UnitcatError) as exc:
        st.session_state[OUTCOME] = ("error", str(exc))
    else:
        frame = pd.DataFrame(result.rows, columns=result.columns)
        st.session_state[OUTCOME] = ("rows", (frame, result.truncated))


def _with_unit_links(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, object]]:
    """A link column to the Unit page when the result names units (model, layer, unit)."""
    if not set(UNIT_COLUMNS) <= set(frame.columns) or frame.empty:
        return frame, {}
    run = frame["run_id"] if "run_id" in frame.columns else [None] * len(frame)
    links = [
        url.unit_url(m, la, int(u), r) if pd.notna(u) and str(u).lstrip("-").isdigit() else None
        for m, la, u, r in zip(frame["model"], frame["layer"], frame["unit"], run, strict=True)
    ]
    shown = frame.copy()
    shown.insert(0, "open", links)
    config = {
        "open": st.column_config.LinkColumn(
            "Open", display_text="open ›", width="small", pinned=True, help="The unit's page"
        )
    }
    return shown, config


def _catalog() -> None:
    """The views and tables a query can read, with their columns (as the reader sees them)."""
    columns = queries.relation_columns(connection.engine_key(), get_settings().reader_url)
    with st.expander("Views and tables, with their columns", expanded=False):
        if columns.empty:
            st.caption("The catalogue has no views yet (`unitcat db upgrade`).")
            return
        for kind, title in (("view", "Views (the query surface)"), ("table", "Tables")):
            part = columns[columns["kind"] == kind]
            if part.empty:
                continue
            st.markdown(f"**{title}**")
            for relation, cols in part.groupby("relation", sort=True):
                listed = ", ".join(
                    f"`{c}` {t}"
                    for c, t in zip(cols["column_name"], cols["data_type"], strict=True)
                )
                st.markdown(f"- **{relation}**: {listed}")


st.title("SQL console")
st.caption(
    "One read-only statement at a time over the catalogue's views (unit_catalogue, "
    "misleading_detectors, layer_summary, measure_correlations, rating_summary …) and "
    "tables. Statements that write are refused."
)
try:
    engine = connection.reader_engine()
except UnitcatError as exc:  # e.g. a DATABASE_URL server without the reader role
    st.error(f"**User SQL is unavailable.** {exc}", icon=":material/lock:")
    st.stop()
notes = st.container()
_catalog()

from_url = url.initial("sql", None)
if TEXT not in st.session_state:
    st.session_state[TEXT] = from_url if from_url is not None else next(iter(EXAMPLES.values()))
    st.session_state[EXAMPLE] = next(
        (name for name, text in EXAMPLES.items() if text == st.session_state[TEXT]), CUSTOM
    )
st.selectbox("Example", [*EXAMPLES, CUSTOM], key=EXAMPLE, on_change=_example_chosen)
with st.form("sql_form"):
    statement = st.text_area("SQL", height=180, key=TEXT)
    st.form_submit_button("Run", type="primary", on_click=_submitted)
url.check_known({"sql"}, where=notes)

if st.session_state.pop("_sql_run", False) or (
    from_url is not None and OUTCOME not in st.session_state
):
    url.keep("sql", statement.strip() or None)
    _run(engine, statement)

outcome = st.session_state.get(OUTCOME)
if outcome is not None:
    kind, payload = outcome
    if kind == "refused":
        st.error(payload, icon=":material/lock:")
    elif kind == "error":
        st.error(payload)
    else:
        frame, truncated = payload
        more = f" (the first {MAX_ROWS:,})" if truncated else ""
        st.markdown(f"**{len(frame):,} row{'s' if len(frame) != 1 else ''}**{more}")
        shown, config = _with_unit_links(frame)
        config = {**tables.column_config(shown, pinned=("open", *UNIT_COLUMNS)), **config}
        st.dataframe(
            tables.readable(shown, digits=4),
            hide_index=True,
            column_config=config,
            key="sql_result",
        )
        st.download_button(
            "Download CSV",
            frame.to_csv(index=False).encode(),
            file_name="unitcat-query.csv",
            mime="text/csv",
            on_click="ignore",
            key="sql_download",
        )
