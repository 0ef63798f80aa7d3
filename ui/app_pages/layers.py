"""Layers: each measure per layer (the paper's Figure 2) and how many "object detectors"
each criterion finds there — the measures disagree.

The URL keeps the run, the measures, the max-informedness cut-off, counts vs shares and
the constant-units switch:
/layers?run_id=2&measure=precision&measure=ccmas&mi=0.7&show=share&include_constant=true
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from catalogue.measures import SUMMARISED_MEASURES
from catalogue.query.layers import detector_criteria
from ui import controls, display, figures, importance, plots, queries, tables
from ui import urlstate as url

FIGURE2_MEASURES = (
    "precision",
    "ccmas",
    "recall_at_p100",
    "recall_at_p95",
    "max_informedness",
    "false_alarm_rate",
    "classes_in_top100",
    "class_selectivity_index",
    "detector_bar",
    "localist",
)
DEFAULT_MI = 0.5
#: Criteria that need a step besides scoring, and what a layer without it shows.
NEEDS = {"iou": "not dissected", "consensus": "not rated"}
SHOW = {"count": "Counts", "share": "Shares of the layer's units"}

st.title("Layers")
st.caption(
    "Figure 2 of the paper: the distribution of each measure in each layer, next to the "
    "number of units each criterion of the literature calls an object detector."
)
notes = st.container()
key, run_id = controls.require_score_run()
include_constant = controls.include_constant_switch()

wanted = url.initial_list("measure", choices=SUMMARISED_MEASURES, key="layer_measures")
measures = st.multiselect(
    "Measures",
    SUMMARISED_MEASURES,
    default=wanted if "measure" in st.query_params else list(FIGURE2_MEASURES),
    format_func=plots.measure_label,
    key="layer_measures",
)
if list(measures) == list(FIGURE2_MEASURES):
    url.keep_list("measure", [])
else:
    url.keep_list("measure", measures)
summary = queries.layer_summary(key, run_id, tuple(measures), include_constant)
if summary.empty:
    st.info("No measures to summarise for this run.")
else:
    order = summary.sort_values(["layer_position", "layer"])["layer"].drop_duplicates().tolist()
    rank = {m: i for i, m in enumerate(measures)}
    summary = summary.sort_values("measure", key=lambda col: col.map(rank), kind="stable")
    columns = 3 if len(order) <= 6 else 2
    figures.show(
        plots.layer_box_chart(summary, order, columns=columns),
        name=f"unitcat-run{run_id}-measures-per-layer",
        key="boxes",
    )
    st.caption(
        "Boxes: quartiles; red tick: median; whiskers: minimum to maximum; green: mean ± "
        "standard error. Localist is the share of localist units (0/1 per unit)."
    )

st.subheader("Units each criterion calls an object detector")
c1, c2 = st.columns([3, 2])
mi_cutoff = c1.slider(
    "Max-informedness cut-off",
    0.0,
    1.0,
    url.initial("mi", DEFAULT_MI, parse=url.as_float, key="mi_cutoff"),
    0.05,
    key="mi_cutoff",
    help="A unit counts as a detector by informedness when its max informedness is above this.",
)
url.keep("mi", float(mi_cutoff), default=DEFAULT_MI, fmt=url.fmt_float)
show = c2.radio(
    "Show",
    list(SHOW),
    index=url.index_of(list(SHOW), "show", "count", key="layer_show"),
    format_func=SHOW.__getitem__,
    horizontal=True,
    key="layer_show",
)
url.keep("show", show, default="count")
url.check_known({"run_id", "measure", "mi", "show", controls.INCLUDE_CONSTANT_PARAM}, where=notes)

counts = queries.layer_detector_counts(key, run_id, float(mi_cutoff), include_constant)
criteria = detector_criteria(float(mi_cutoff))
labels = [(c.key, display.criterion_short_label(c)) for c in criteria]
dissected = queries.dissection_summary(key)
dissected_layers = set(zip(dissected.get("model", []), dissected.get("layer", []), strict=True))
rated = queries.rated_layers(key)
missing: dict[str, set[str]] = {"iou": set(), "consensus": set()}
for record in counts.to_dict("records"):
    where = (record["model"], record["layer"])
    if where not in dissected_layers:
        missing["iou"].add(record["layer"])
    if where not in rated:
        missing["consensus"].add(record["layer"])

long = plots.detector_count_frame(counts, labels)
label_of = dict(labels)
for criterion_key, layers_without in missing.items():
    if criterion_key in label_of and layers_without:
        drop = (long["criterion"] == label_of[criterion_key]) & long["layer"].isin(layers_without)
        long = long[~drop]
order = counts["layer"].tolist()
figures.show(
    plots.detector_count_chart(
        long,
        order,
        shares=show == "share",
        height=340,
        title="Units called object detectors, per criterion"
        + (" (share of the layer's units)" if show == "share" else ""),
    ),
    name=f"unitcat-run{run_id}-detectors-per-layer",
    key="detector_counts",
)
notes_below = [
    f"{', '.join(sorted(layers_without, key=order.index))}: {NEEDS[k]} (no bar)."
    for k, layers_without in missing.items()
    if layers_without and k in label_of
]
if notes_below:
    st.caption(" ".join(notes_below))

table = counts.drop(columns=["layer_position"]).rename(columns=label_of)
styler = tables.readable(table)
for i, record in enumerate(table.to_dict("records")):
    n_units = int(record["n_units"])
    for criterion_key, column in labels:
        if column not in table.columns:
            continue
        if record["layer"] in missing.get(criterion_key, set()):
            styler = styler.format(
                lambda _v, t=NEEDS[criterion_key]: t, subset=pd.IndexSlice[[i], [column]]
            )
        else:
            styler = styler.format(
                lambda v, u=n_units: tables.count_and_share(v, u),
                subset=pd.IndexSlice[[i], [column]],
            )
config = tables.column_config(table, pinned=("model", "layer"))
for _key, column in labels:
    if column in config:
        config[column] = st.column_config.Column(
            column, help="Units the criterion calls detectors (share of the layer's units)."
        )
st.dataframe(styler, hide_index=True, column_config=config, key="detector_table")
note = controls.constant_caption(int(counts["n_constant"].sum()), include_constant)
if note:
    st.caption(
        f"{tables.label('n_constant')}: units whose every activation is equal. {note} The "
        "counts, boxes and medians are over the other units unless they are included; "
        "shares are of all the layer's units."
    )

if not dissected.empty:
    st.subheader("Network dissection per layer")
    st.dataframe(
        tables.readable(dissected),
        hide_index=True,
        column_config=tables.column_config(dissected, pinned=("model", "layer")),
        key="dissection_summary",
    )

importance.baselines_section(key, run_id)
importance.curves_section(key, run_id)
