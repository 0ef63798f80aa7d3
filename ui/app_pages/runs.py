"""Runs: every extract / score / dissect / am / ablate run with status, parameters, timings
and errors. Parameters and statistics read as key/value lists, one per run.

The URL keeps the filters: /runs?kind=score&status=failed
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd
import streamlit as st

from catalogue.db.schema import RUN_KINDS
from catalogue.query.runs import RUN_STATES as RUN_STATUSES
from ui import connection, queries, tables
from ui import urlstate as url

MAX_DETAILED = 50


def _text(value: Any) -> str:
    """A parameter as written: 0.0001 stays 0.0001 (not rounded to a table's decimals)."""
    if isinstance(value, float):
        return format(value, ".6g")
    return tables.cell(value)


def key_values(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    """A run's params or stats (JSON) as (key, value) rows: nested keys dotted, lists joined."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return []
    if isinstance(value, Mapping):
        rows: list[tuple[str, str]] = []
        for k in sorted(value):
            rows += key_values(value[k], f"{prefix}{k}.") or [(f"{prefix}{k}", "")]
        return rows
    name = prefix[:-1] if prefix else "value"
    if isinstance(value, list | tuple):
        if all(not isinstance(v, Mapping | list | tuple) for v in value):
            return [(name, ", ".join(_text(v) for v in value))]
        rows = []
        for i, v in enumerate(value):
            rows += key_values(v, f"{prefix}{i}.")
        return rows
    return [(name, _text(value))]


def _key_value_table(rows: list[tuple[str, str]], title: str, key: str) -> None:
    st.markdown(f"**{title}**")
    if not rows:
        st.caption("none")
        return
    st.dataframe(
        pd.DataFrame(rows, columns=["key", "value"]),
        hide_index=True,
        height="content",
        column_config={
            "key": st.column_config.Column("Key", pinned=True),
            "value": st.column_config.Column("Value", width="large"),
        },
        key=key,
    )


st.title("Runs")
st.caption("Every command that wrote to the catalogue; re-running one replaces its results.")
notes = st.container()
key = connection.engine_key()

c1, c2 = st.columns(2)
kinds = c1.multiselect(
    "Kind",
    RUN_KINDS,
    default=url.initial_list("kind", choices=RUN_KINDS, key="run_kinds"),
    key="run_kinds",
)
url.keep_list("kind", kinds)
statuses = c2.multiselect(
    "Status",
    RUN_STATUSES,
    default=url.initial_list("status", choices=RUN_STATUSES, key="run_statuses"),
    key="run_statuses",
)
url.keep_list("status", statuses)
url.check_known({"kind", "status"}, where=notes)
runs = queries.list_runs(key, tuple(kinds), tuple(statuses))
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

shown = runs.drop(columns=["params", "stats"])
if "owner_pid" in shown.columns:  # a process id, not a quantity: no decimals, no separators
    shown["owner_pid"] = [str(int(p)) if pd.notna(p) else None for p in shown["owner_pid"]]
st.dataframe(
    tables.readable(shown, digits=1),
    hide_index=True,
    column_config=tables.column_config(
        shown,
        pinned=("id", "kind"),
        overrides={
            "id": st.column_config.Column("Run", pinned=True),
            "kind": st.column_config.Column("Kind", pinned=True),
            "parent_id": st.column_config.Column("Parent"),
            "parent_kind": st.column_config.Column("Parent kind"),
            "duration_s": st.column_config.Column("Duration (s)"),
            "started_at": st.column_config.DatetimeColumn("Started"),
            "finished_at": st.column_config.DatetimeColumn("Finished"),
            "h5_path": st.column_config.Column("Activation file"),
            "owner_host": st.column_config.Column("Owner host"),
            "owner_pid": st.column_config.Column("Owner pid"),
            "owner_started_at": st.column_config.DatetimeColumn("Owner started"),
            "recorded_status": st.column_config.Column(
                "Recorded status",
                help="As the run's row says; `status` is what it reads as (a run recorded "
                "as running whose process is gone reads as interrupted).",
            ),
        },
    ),
    key="runs_table",
)

st.subheader("Parameters and statistics")
if len(runs) > MAX_DETAILED:
    st.caption(f"The newest {MAX_DETAILED} runs; filter by kind or status for others.")
for record in runs.head(MAX_DETAILED).to_dict("records"):
    title = f"Run #{record['id']} · {record['kind']} · {record['status']}"
    if record.get("label"):
        title += f" · {record['label']}"
    with st.expander(title):
        left, right = st.columns(2)
        with left:
            _key_value_table(key_values(record["params"]), "Parameters", f"params_{record['id']}")
        with right:
            _key_value_table(key_values(record["stats"]), "Statistics", f"stats_{record['id']}")
