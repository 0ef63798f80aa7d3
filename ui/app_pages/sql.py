"""SQL: a read-only console on the catalogue (catalogue.db.console.run_readonly).

The statement runs as the SELECT-only reader role, in a READ ONLY transaction
that is rolled back, on a connection that keeps no state: PostgreSQL itself
refuses writes, server files and programs, and the refusal is shown as a message.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from catalogue.db.console import run_readonly
from catalogue.errors import InputError, ReadOnlyViolation, UnitcatError
from catalogue.query.examples import EXAMPLES
from ui.app_pages import common

MAX_ROWS = 5000

st.title("SQL console")
st.caption(
    "One read-only statement at a time over the catalogue's views (unit_catalogue, "
    "misleading_detectors, layer_summary, measure_correlations, rating_summary …) and "
    "tables. Statements that write are refused."
)
try:
    engine = common.reader_engine()
except UnitcatError as exc:  # e.g. a DATABASE_URL server without the reader role
    st.error(f"**User SQL is unavailable.** {exc}", icon=":material/lock:")
    st.stop()

example = st.selectbox("Example", list(EXAMPLES), key="sql_example")
with st.form("sql_form"):
    statement = st.text_area(
        "SQL", EXAMPLES[example], height=180, key=f"sql_text_{list(EXAMPLES).index(example)}"
    )
    submitted = st.form_submit_button("Run", type="primary")

if submitted:
    try:
        result = run_readonly(engine, statement, max_rows=MAX_ROWS)
    except ReadOnlyViolation as exc:
        st.session_state["sql_outcome"] = ("refused", str(exc))
    except (InputError, UnitcatError) as exc:
        st.session_state["sql_outcome"] = ("error", str(exc))
    else:
        frame = pd.DataFrame(result.rows, columns=result.columns)
        st.session_state["sql_outcome"] = ("rows", (frame, result.truncated))

outcome = st.session_state.get("sql_outcome")
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
        st.dataframe(frame, hide_index=True, key="sql_result")
        st.download_button(
            "Download CSV",
            frame.to_csv(index=False).encode(),
            file_name="unitcat-query.csv",
            mime="text/csv",
            on_click="ignore",
            key="sql_download",
        )
