"""SQL: a read-only console on the catalogue (catalogue.db.console.run_readonly).

The statement runs in a READ ONLY transaction that is rolled back: PostgreSQL
itself refuses writes, and the refusal is shown as a message.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from catalogue.db.console import run_readonly
from catalogue.errors import InputError, ReadOnlyViolation
from ui.app_pages import common

MAX_ROWS = 5000

EXAMPLES: dict[str, str] = {
    "Precision detectors with high false-alarm rates (the paper's headline)": (
        "SELECT model, layer, unit, precision, precision_class, false_alarm_rate\n"
        "FROM unit_catalogue\n"
        "WHERE precision > .75 AND false_alarm_rate > .9"
    ),
    "Each measure per layer": (
        "SELECT model, layer, measure, n, mean, median, q1, q3\n"
        "FROM layer_summary\n"
        "ORDER BY model, layer_position, measure"
    ),
    "The bus group (school bus + trolleybus + minibus)": (
        "SELECT m.name AS model, l.name AS layer, u.unit_index AS unit,\n"
        "       g.precision, g.ccmas, g.max_informedness, g.mi_threshold,\n"
        "       g.n_nonzero_in, g.n_nonzero_out, g.mu_in, g.mu_out\n"
        "FROM unit_group_metrics g\n"
        "JOIN class_group cg ON cg.id = g.group_id\n"
        "JOIN unit u ON u.id = g.unit_id\n"
        "JOIN layer l ON l.id = u.layer_id\n"
        "JOIN model m ON m.id = l.model_id\n"
        "WHERE cg.name = 'bus'\n"
        "ORDER BY g.max_informedness DESC\n"
        "LIMIT 20"
    ),
    "Correlations between measures": (
        "SELECT layer, measure_a, measure_b, n, pearson, spearman\n"
        "FROM measure_correlations\n"
        "WHERE measure_a = 'precision'\n"
        "ORDER BY layer, measure_b"
    ),
    "Human ratings per layer": "SELECT * FROM rating_layer_summary ORDER BY model, layer_position",
}

st.title("SQL console")
st.caption(
    "One read-only statement at a time over the catalogue's views (unit_catalogue, "
    "misleading_detectors, layer_summary, measure_correlations, rating_summary …) and "
    "tables. Statements that write are refused."
)
engine = common.engine()

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
    except InputError as exc:
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
