"""Search: units by any measure, model, layer, class or concept; the paper's presets."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from catalogue.errors import InputError
from catalogue.measures import CLASS_MEASURES, FLOAT_MEASURES, MEASURES_BY_NAME
from catalogue.query.search import EXTRA_NUMERIC, PRESETS, SORTABLE, UnitFilter
from ui.app_pages import common
from ui.plots import measure_label

st.title("Search units")
st.caption(
    "Every unit of every scored layer, with every selectivity measure. Filter, sort, "
    "download, and click a row to open the unit."
)

key = common.engine_key()
common.stop_if_empty(common.overview(key))
options = common.filter_options(key)
ranges = common.measure_ranges(key)

preset_keys: list[str | None] = [None, *PRESETS]
wanted = st.query_params.get("preset")
preset = st.selectbox(
    "Preset",
    preset_keys,
    index=preset_keys.index(wanted) if wanted in preset_keys else 0,
    format_func=lambda k: "— none —" if k is None else PRESETS[k].label,
    key="preset",
)
if preset is not None:
    st.caption(PRESETS[preset].description)
include_constant = common.include_constant_switch()

c1, c2, c3 = st.columns(3)
models = c1.multiselect("Model", options.models, key="models")
layer_choices = list(
    dict.fromkeys(layer for m in (models or options.models) for layer in options.layers.get(m, []))
)
layers = c2.multiselect("Layer", layer_choices, key="layers")
runs = options.score_runs
run_names = dict(zip(runs["id"].astype(int), runs["name"], strict=True))
run_ids = c3.multiselect(
    "Scoring run", list(run_names), format_func=run_names.__getitem__, key="runs"
)

c1, c2, c3, c4 = st.columns(4)
class_name = c1.selectbox(
    "Class",
    [None, *options.class_names],
    format_func=lambda c: "any" if c is None else c,
    key="class_name",
)
class_measure = c2.selectbox(
    "…as the class of",
    [None, *CLASS_MEASURES],
    format_func=lambda c: "any measure" if c is None else MEASURES_BY_NAME[c].label,
    key="class_measure",
)
concept = c3.selectbox(
    "Best dissection concept",
    [None, *options.concepts],
    format_func=lambda c: "any" if c is None else c,
    key="concept",
)
localist_choice = c4.selectbox("Localist", ["any", "yes", "no"], key="localist")

numeric = [m for m in (*FLOAT_MEASURES, *EXTRA_NUMERIC) if m in ranges]
chosen = st.multiselect(
    "Filter on measures (inclusive ranges)",
    numeric,
    format_func=measure_label,
    key="range_measures",
)
bounds: list[tuple[str, float | None, float | None]] = []
for name in chosen:
    low, high = ranges[name]
    r1, r2, r3 = st.columns([2, 1, 1])
    r1.markdown(
        f"**{measure_label(name)}**  \n{getattr(MEASURES_BY_NAME.get(name), 'description', '')}"
    )
    lo = r2.number_input("from", value=float(low), format="%.4f", key=f"min_{name}")
    hi = r3.number_input("to", value=float(high), format="%.4f", key=f"max_{name}")
    bounds.append((name, lo, hi))

s1, s2, s3 = st.columns([2, 1, 1])
order_by = s1.selectbox("Sort by", SORTABLE, format_func=measure_label, key="order_by")
descending = s2.toggle("Descending", value=True, key="descending")
limit = int(s3.number_input("Show at most", 10, 100_000, 1000, step=100, key="limit"))

flt = UnitFilter(
    ranges=tuple(bounds),
    models=tuple(models),
    layers=tuple(layers),
    run_ids=tuple(int(r) for r in run_ids),
    class_name=class_name,
    class_measure=class_measure,
    concept=concept,
    localist={"any": None, "yes": True, "no": False}[localist_choice],
    preset=preset,
    include_constant=include_constant,
)
try:
    result = common.search_units(key, flt, order_by, descending, limit)
except InputError as exc:
    st.warning(str(exc))
    st.stop()

frame = result.frame
shown = f" (showing the first {len(frame):,})" if result.truncated else ""
st.subheader(f"{result.total:,} unit{'s' if result.total != 1 else ''} match{shown}")
left_out = common.constant_caption(result.n_constant_left_out, False)
if left_out:
    st.caption(left_out)

if frame.empty:
    st.info("No unit matches these filters.")
    st.stop()

DISPLAY = [
    "open",
    "model",
    "layer",
    "unit",
    "run_id",
    "precision",
    "precision_class",
    "false_alarm_rate",
    "max_informedness",
    "mi_class",
    "ccmas",
    "ccmas_class",
    "recall_at_p100",
    "recall_at_p95",
    "classes_in_top100",
    "detector_bar",
    "detector_bar_class",
    "localist",
    "localist_class",
    "constant",
    "best_concept",
    "best_iou",
    "share_yes",
    "rating_consensus",
    "dataset",
    "unit_id",
]
display = frame.assign(
    open=[
        common.unit_url(u, r, highlight=preset)
        for u, r in zip(frame["unit_id"], frame["run_id"], strict=True)
    ]
)
config: dict[str, object] = {
    "open": st.column_config.LinkColumn("Open", display_text="open ↗", width="small"),
    "model": st.column_config.Column("Model"),
    "layer": st.column_config.Column("Layer"),
    "unit": st.column_config.NumberColumn("Unit", format="%d"),
    "run_id": st.column_config.NumberColumn("Run", format="%d", help="The scoring run (Runs page)"),
    "dataset": st.column_config.Column("Dataset"),
    "unit_id": st.column_config.NumberColumn("Unit id", format="%d"),
}
for name in DISPLAY:
    measure = MEASURES_BY_NAME.get(name)
    if name in config:
        continue
    if (measure is not None and measure.kind == "float") or name in EXTRA_NUMERIC:
        config[name] = st.column_config.NumberColumn(
            measure_label(name), help=measure.description if measure else None, format="%.3f"
        )
    elif measure is not None:
        config[name] = st.column_config.Column(measure.label, help=measure.description)

table_key = common.next_widget_key("search_results")
event = st.dataframe(
    display[DISPLAY],
    column_config=config,
    hide_index=True,
    on_select="rerun",
    selection_mode="single-row",
    key=table_key,
)
selected = ((event or {}).get("selection") or {}).get("rows") or []  # dict-like state
if selected:
    row = frame.iloc[selected[0]]
    common.consume_widget_key("search_results")
    common.open_unit(int(row["unit_id"]), row["run_id"], highlight=preset)

if result.truncated:
    everything = common.search_units(key, flt, order_by, descending, None).frame
else:
    everything = frame
st.download_button(
    f"Download all {result.total:,} as CSV",
    pd.DataFrame(everything).to_csv(index=False).encode(),
    file_name="unitcat-search.csv",
    mime="text/csv",
    on_click="ignore",
    key="download",
)
