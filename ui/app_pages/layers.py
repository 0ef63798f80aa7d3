"""Layers: each measure per layer (the paper's Figure 2) and how many "object detectors"
each criterion finds there — the measures disagree."""

from __future__ import annotations

import streamlit as st

from catalogue.measures import SUMMARISED_MEASURES
from catalogue.query.layers import detector_criteria
from ui import display, importance, plots
from ui.app_pages import common

FIGURE2_MEASURES = (
    "precision",
    "ccmas",
    "recall_at_p100",
    "recall_at_p95",
    "max_informedness",
    "false_alarm_rate",
    "classes_in_top100",
    "class_selectivity_index",
    "localist",
)

st.title("Layers")
st.caption(
    "Figure 2 of the paper: the distribution of each measure in each layer, next to the "
    "number of units each criterion of the literature calls an object detector."
)
key, run_id = common.require_score_run()

measures = st.multiselect(
    "Measures",
    SUMMARISED_MEASURES,
    default=list(FIGURE2_MEASURES),
    format_func=plots.measure_label,
    key="layer_measures",
)
left, right = st.columns([3, 2])
with left:
    summary = common.layer_summary(key, run_id, tuple(measures))
    if summary.empty:
        st.info("No measures to summarise for this run.")
    else:
        order = summary.sort_values(["layer_position", "layer"])["layer"].drop_duplicates().tolist()
        rank = {m: i for i, m in enumerate(measures)}
        summary = summary.sort_values("measure", key=lambda col: col.map(rank), kind="stable")
        st.altair_chart(plots.layer_box_chart(summary, order), key="boxes")
        st.caption(
            "Boxes: quartiles; red tick: median; whiskers: minimum to maximum; green: mean ± "
            "standard error. Localist is the share of localist units (0/1 per unit)."
        )
with right:
    mi_cutoff = st.slider(
        "Max-informedness cut-off",
        0.0,
        1.0,
        0.5,
        0.05,
        key="mi_cutoff",
        help="A unit counts as a detector by informedness when its max informedness is above this.",
    )
    counts = common.layer_detector_counts(key, run_id, float(mi_cutoff))
    criteria = [
        (c.key, display.criterion_short_label(c)) for c in detector_criteria(float(mi_cutoff))
    ]
    long = plots.detector_count_frame(counts, criteria)
    order = counts["layer"].tolist()
    st.altair_chart(plots.detector_count_chart(long, order), key="detector_counts")
    table = counts.rename(columns=dict(criteria))
    st.dataframe(table.drop(columns=["layer_position"]), hide_index=True, key="detector_table")

dissection = common.dissection_summary(key)
if not dissection.empty:
    st.subheader("Network dissection per layer")
    st.dataframe(dissection, hide_index=True, key="dissection_summary")

importance.baselines_section(key, run_id)
importance.curves_section(key, run_id)
