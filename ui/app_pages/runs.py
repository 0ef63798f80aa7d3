"""Runs: every extract / score / dissect / am / ablate run with status, parameters, timings
and errors."""

from __future__ import annotations

import streamlit as st

from catalogue.db.schema import RUN_KINDS
from catalogue.query.runs import RUN_STATES as RUN_STATUSES
from ui.app_pages import common

st.title("Runs")
st.caption("Every command that wrote to the catalogue; re-running one replaces its results.")
key = common.engine_key()

c1, c2 = st.columns(2)
kinds = c1.multiselect("Kind", RUN_KINDS, key="run_kinds")
statuses = c2.multiselect("Status", RUN_STATUSES, key="run_statuses")
runs = common.list_runs(key, tuple(kinds), tuple(statuses))
if runs.empty:
    if kinds or statuses:
        st.info("No run matches these filters.")
    else:
        st.info("No runs yet: run `unitcat ingest …` to extract, score, dissect …")
    st.stop()

counts = runs["status"].value_counts()
m = st.columns(len(RUN_STATUSES) + 1)
m[0].metric("Runs", len(runs))
for col, status in zip(m[1:], RUN_STATUSES, strict=True):
    col.metric(status.capitalize(), int(counts.get(status, 0)))

failed = runs[runs["status"] == "failed"]
for record in failed.to_dict("records"):
    st.error(f"Run #{record['id']} ({record['kind']}) failed: {record['error'] or 'no message'}")
for record in runs[runs["status"] == "interrupted"].to_dict("records"):
    st.warning(
        f"Run #{record['id']} ({record['kind']}) was interrupted: its process stopped before it "
        "finished. Run the same command again to resume (extraction) or redo it."
    )

shown = runs.assign(
    params=[common.json_text(p) for p in runs["params"]],
    stats=[common.json_text(s) for s in runs["stats"]],
)
st.dataframe(
    shown,
    hide_index=True,
    column_config={
        "id": st.column_config.NumberColumn("Run", format="%d"),
        "parent_id": st.column_config.NumberColumn("Parent", format="%d"),
        "duration_s": st.column_config.NumberColumn("Duration (s)", format="%.1f"),
        "started_at": st.column_config.DatetimeColumn("Started"),
        "finished_at": st.column_config.DatetimeColumn("Finished"),
    },
    key="runs_table",
)
