"""Measures: how the measures correlate (the paper's Table 3) and any two of them plotted
against each other, one clickable point per unit.

The URL keeps the run, the layer, the correlation, the scatter's axes and the
constant-units switch:
/measures?run_id=2&layer=fc6&method=spearman&x=precision&y=false_alarm_rate&include_constant=true
"""

from __future__ import annotations

import streamlit as st

from catalogue.measures import CORRELATED_MEASURES, FLOAT_MEASURES
from catalogue.query.layers import pooled_correlations
from ui import controls, display, figures, importance, plots, queries, twoafc_sections
from ui import urlstate as url

ALL_LAYERS = "all layers"
MAX_POINTS = 20_000

st.title("Measures")
st.caption(
    "Table 3 of the paper: correlations between the measures over units, and a scatter "
    "of any two (click a point to open the unit)."
)
with st.expander("Definitions"):
    st.markdown(display.definitions_markdown())
notes = st.container()
key, run_id = controls.require_score_run()
include_constant = controls.include_constant_switch()

options = queries.filter_options(key)
values_all = queries.measure_values(key, run_id, CORRELATED_MEASURES, (), include_constant)
n_constant = int(
    queries.measure_values(key, run_id, ("frac_zero",), (), True)["constant"].fillna(False).sum()
)
note = controls.constant_caption(n_constant, include_constant)
if note:
    st.caption(note)
layers = values_all.sort_values("layer_position")["layer"].drop_duplicates().tolist()
c1, c2 = st.columns([2, 1])
layer_options = [ALL_LAYERS, *layers]
layer = c1.selectbox(
    "Layer",
    layer_options,
    index=url.index_of(layer_options, "layer", ALL_LAYERS, key="corr_layer", choices=layers),
    key="corr_layer",
)
url.keep("layer", layer, default=ALL_LAYERS)
methods = ["pearson", "spearman"]
method = c2.radio(
    "Correlation",
    methods,
    index=url.index_of(methods, "method", "pearson", key="corr_method"),
    format_func=str.capitalize,
    horizontal=True,
    key="corr_method",
)
url.keep("method", method, default="pearson")

if layer == ALL_LAYERS:
    pairs = pooled_correlations(values_all)
    st.caption(f"Over all {len(values_all):,} units of the run (pairwise-complete).")
else:
    pairs = queries.measure_correlations(key, run_id, layer, include_constant)
    source = "with constant units" if include_constant else "from the `measure_correlations` view"
    st.caption(f"Layer {layer}, {source}.")
if pairs.empty or pairs[method].isna().all():
    st.info("Not enough units with varying values to correlate.")
else:
    matrix = plots.correlation_matrix(pairs, method)
    figures.show(
        plots.correlation_heatmap(matrix, CORRELATED_MEASURES),
        name=f"unitcat-run{run_id}-correlations-{layer.replace(' ', '-')}-{method}",
        key="heatmap",
    )
    with st.expander("As a table"):
        st.dataframe(pairs, hide_index=True, key="corr_table")

importance.measures_section(key, run_id, None if layer == ALL_LAYERS else layer)
twoafc_sections.measures_section(
    key, run_id, None if layer == ALL_LAYERS else layer, include_constant
)

st.subheader("Scatter")
s1, s2 = st.columns(2)
x = s1.selectbox(
    "x",
    FLOAT_MEASURES,
    index=url.index_of(FLOAT_MEASURES, "x", "precision", key="scatter_x"),
    format_func=plots.measure_label,
    key="scatter_x",
)
url.keep("x", x, default="precision")
y = s2.selectbox(
    "y",
    FLOAT_MEASURES,
    index=url.index_of(FLOAT_MEASURES, "y", "max_informedness", key="scatter_y"),
    format_func=plots.measure_label,
    key="scatter_y",
)
url.keep("y", y, default="max_informedness")
url.check_known(
    {"run_id", "layer", "method", "x", "y", controls.INCLUDE_CONSTANT_PARAM}, where=notes
)
points = queries.measure_values(
    key,
    run_id,
    tuple(dict.fromkeys((x, y))),
    () if layer == ALL_LAYERS else (layer,),
    include_constant,
)
points = points.dropna(subset=[x, y])
if len(points) > MAX_POINTS:
    st.caption(f"A random {MAX_POINTS:,} of {len(points):,} units are shown (seed 0).")
    points = points.sample(MAX_POINTS, random_state=0)
if points.empty:
    st.info("No unit has both measures.")
    st.stop()
chart_key = controls.next_widget_key("scatter")
event = figures.show(
    plots.scatter_chart(points, x, y, extra_tooltip={"precision_class": "precision class"}),
    name=f"unitcat-run{run_id}-{x}-vs-{y}",
    key=chart_key,
    on_select="rerun",
    selection_mode="unit",
)
selection = (event or {}).get("selection") or {}  # a dict-like VegaLiteState
picked = selection.get("unit") or []
if picked:
    controls.consume_widget_key("scatter")
    # by its permalink, the class of the x measure highlighted
    url.open_unit(int(picked[0]["unit_id"]), picked[0].get("run_id"), highlight=x)
