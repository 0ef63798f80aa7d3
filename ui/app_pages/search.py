"""Search: units by any measure, model, layer, class or concept; the paper's presets.

Every filter, the constant-units switch and the sort live in the URL (ui/urlstate.py), so
a link reproduces the result: ?preset=misleading&layer=fc6&filter=precision&min_precision=0.5
&sort=ccmas&include_constant=true. Click a row's "open" cell to open the unit (its permalink,
with ?highlight= the preset, whose class the Unit page highlights); tick two to four rows to
compare them.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from catalogue.errors import InputError
from catalogue.measures import CLASS_MEASURES, FLOAT_MEASURES, MEASURES_BY_NAME
from catalogue.query.csvtext import frame_csv
from catalogue.query.search import EXTRA_NUMERIC, PRESETS, SORTABLE, UnitFilter
from ui import connection, controls, faults, queries, tables
from ui import urlstate as url
from ui.plots import measure_label

MAX_COMPARED = 4
OPEN_TEXT = "open ›"
LOCALIST = {"any": None, "yes": True, "no": False}
DEFAULT_SORT, DEFAULT_LIMIT = "precision", 1000
LIMIT_RANGE = (10, 100_000)

st.title("Search units")
st.caption(
    "Every unit of every scored layer, with every selectivity measure. Filter, sort, "
    "download; click **open ›** to open a unit, tick 2–4 rows to compare them. "
    "The address bar keeps every choice: copy it to share this view."
)
notes = st.container()

key = connection.engine_key()
faults.stop_if_empty(queries.overview(key))
options = queries.filter_options(key)
ranges = queries.measure_ranges(key)

preset_keys: list[str | None] = [None, *PRESETS]
preset = st.selectbox(
    "Preset",
    preset_keys,
    index=url.index_of(preset_keys, "preset", None, key="preset"),
    format_func=lambda k: "— none —" if k is None else PRESETS[k].label,
    key="preset",
)
url.keep("preset", preset)
if preset is not None:
    st.caption(PRESETS[preset].description)
include_constant = controls.include_constant_switch()

c1, c2, c3 = st.columns(3)
models = c1.multiselect(
    "Model",
    options.models,
    default=url.initial_list("model", choices=options.models, key="models"),
    key="models",
)
url.keep_list("model", models)
layer_choices = list(
    dict.fromkeys(layer for m in (models or options.models) for layer in options.layers.get(m, []))
)
layers = c2.multiselect(
    "Layer",
    layer_choices,
    default=url.initial_list("layer", choices=layer_choices, key="layers"),
    key="layers",
)
url.keep_list("layer", layers)
runs = options.score_runs
run_names = dict(zip(runs["id"].astype(int), runs["name"], strict=True))
run_ids = c3.multiselect(
    "Scoring run",
    list(run_names),
    default=url.initial_list("run", parse=url.as_int, choices=list(run_names), key="runs"),
    format_func=run_names.__getitem__,
    key="runs",
)
url.keep_list("run", run_ids)

c1, c2, c3, c4 = st.columns(4)
class_options = [None, *options.class_names]
class_name = c1.selectbox(
    "Class",
    class_options,
    index=url.index_of(class_options, "class", None, key="class_name"),
    format_func=lambda c: "any" if c is None else c,
    key="class_name",
)
url.keep("class", class_name)
measure_options = [None, *CLASS_MEASURES]
class_measure = c2.selectbox(
    "…as the class of",
    measure_options,
    index=url.index_of(measure_options, "class_of", None, key="class_measure"),
    format_func=lambda c: "any measure" if c is None else MEASURES_BY_NAME[c].label,
    key="class_measure",
)
url.keep("class_of", class_measure)
concept_options = [None, *options.concepts]
concept = c3.selectbox(
    "Best dissection concept",
    concept_options,
    index=url.index_of(concept_options, "concept", None, key="concept"),
    format_func=lambda c: "any" if c is None else c,
    key="concept",
)
url.keep("concept", concept)
localist_options = list(LOCALIST)
localist_choice = c4.selectbox(
    "Localist",
    localist_options,
    index=url.index_of(localist_options, "localist", "any", key="localist"),
    key="localist",
)
url.keep("localist", localist_choice, default="any")

numeric = [m for m in (*FLOAT_MEASURES, *EXTRA_NUMERIC) if m in ranges]
chosen = st.multiselect(
    "Filter on measures (inclusive ranges)",
    numeric,
    default=url.initial_list("filter", choices=numeric, key="range_measures"),
    format_func=measure_label,
    key="range_measures",
)
url.keep_list("filter", chosen)
bounds: list[tuple[str, float | None, float | None]] = []
for name in chosen:
    low, high = ranges[name]
    r1, r2, r3 = st.columns([2, 1, 1])
    r1.markdown(
        f"**{measure_label(name)}**  \n{getattr(MEASURES_BY_NAME.get(name), 'description', '')}"
    )
    lo = r2.number_input(
        "from",
        value=url.initial(f"min_{name}", float(low), parse=url.as_float, key=f"min_{name}"),
        format="%.4f",
        key=f"min_{name}",
    )
    hi = r3.number_input(
        "to",
        value=url.initial(f"max_{name}", float(high), parse=url.as_float, key=f"max_{name}"),
        format="%.4f",
        key=f"max_{name}",
    )
    url.keep(f"min_{name}", lo, default=float(low), fmt=url.fmt_float)
    url.keep(f"max_{name}", hi, default=float(high), fmt=url.fmt_float)
    bounds.append((name, lo, hi))
for name in list(st.query_params):  # bounds of measures no longer filtered on
    if name.startswith(("min_", "max_")) and name[4:] not in chosen:
        del st.query_params[name]

s1, s2, s3 = st.columns([2, 1, 1])
order_by = s1.selectbox(
    "Sort by",
    SORTABLE,
    index=url.index_of(SORTABLE, "sort", DEFAULT_SORT, key="order_by"),
    format_func=measure_label,
    key="order_by",
)
url.keep("sort", order_by, default=DEFAULT_SORT)
descending = s2.toggle(
    "Descending",
    value=st.session_state.get(
        "descending", url.initial("order", "desc", choices=("asc", "desc")) == "desc"
    ),
    key="descending",
)
url.keep("order", "desc" if descending else "asc", default="desc")
limit = int(
    s3.number_input(
        "Show at most",
        *LIMIT_RANGE,
        url.initial("limit", DEFAULT_LIMIT, parse=url.as_int, key="limit", bounds=LIMIT_RANGE),
        step=100,
        key="limit",
    )
)
url.keep("limit", limit, default=DEFAULT_LIMIT)

url.check_known(
    {"preset", "model", "layer", "run", "class", "class_of", "concept", "localist", "filter"}
    | {"sort", "order", "limit", controls.INCLUDE_CONSTANT_PARAM}
    | {f"{side}_{m}" for m in numeric for side in ("min", "max")},
    where=notes,
)

flt = UnitFilter(
    ranges=tuple(bounds),
    models=tuple(models),
    layers=tuple(layers),
    run_ids=tuple(int(r) for r in run_ids),
    class_name=class_name,
    class_measure=class_measure,
    concept=concept,
    localist=LOCALIST[localist_choice],
    preset=preset,
    include_constant=include_constant,
)
try:
    result = queries.search_units(key, flt, order_by, descending, limit)
except InputError as exc:
    st.warning(str(exc))
    st.stop()

frame = result.frame
shown = f" (showing the first {len(frame):,})" if result.truncated else ""
st.subheader(f"{result.total:,} unit{'s' if result.total != 1 else ''} match{shown}")
left_out = controls.constant_caption(result.n_constant_left_out, False)
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
    "baseline",
    "precision",
    "precision_class",
    "false_alarm_rate",
    "max_informedness",
    "mi_class",
    "ccmas",
    "ccmas_class",
    "ccmas_undefined",
    "recall_at_p100",
    "recall_at_p95",
    "classes_in_top100",
    "class_selectivity_index",
    "detector_bar",
    "detector_bar_class",
    "localist",
    "localist_class",
    "constant",
    "best_concept",
    "best_iou",
    "share_yes",
    "rating_consensus",
    "run_id",
    "dataset",
    "unit_id",
]
display = frame.assign(open=OPEN_TEXT, baseline=tables.baseline_labels(frame))
display = display[[c for c in DISPLAY if c in display.columns]]
config = tables.column_config(
    display,
    overrides={
        "open": st.column_config.Column(
            "Open", width="small", pinned=True, help="Click to open the unit's page."
        ),
        "run_id": st.column_config.Column("Run", help="The scoring run (Runs page)"),
        "baseline": st.column_config.Column(
            "Baseline",
            width="small",
            help="A random-weights baseline of the trained network's run #N, not a trained unit",
        ),
        "model": st.column_config.Column("Model", width="medium", pinned=True),
    },
)

table_key = controls.next_widget_key("search_results")
event = st.dataframe(
    tables.readable(display),
    column_config=config,
    hide_index=True,
    on_select="rerun",
    selection_mode=["multi-row", "single-cell"],
    key=table_key,
)
selection = (event or {}).get("selection") or {}  # dict-like state
cells = selection.get("cells") or []
if cells:
    row_index, column = cells[0]
    if column in ("open", "model", "layer", "unit"):
        row = frame.iloc[int(row_index)]
        controls.consume_widget_key("search_results")
        url.open_unit(
            int(row["unit_id"]),
            row["run_id"],
            model=row["model"],
            layer=row["layer"],
            unit=int(row["unit"]),
            highlight=preset,  # the Unit page highlights the class the preset names
        )

ticked = [int(i) for i in selection.get("rows") or []]
b1, b2 = st.columns([1, 3])
if len(ticked) > MAX_COMPARED:
    b2.caption(f"Tick at most {MAX_COMPARED} rows to compare ({len(ticked)} ticked).")
elif len(ticked) >= 2:
    if b1.button(f"Compare {len(ticked)} units", type="primary", key="compare"):
        picked = frame.iloc[ticked]
        controls.consume_widget_key("search_results")
        st.switch_page(
            url.COMPARE_PAGE,
            query_params=url.compare_params(picked.to_dict("records")),
        )
else:
    b2.caption("Tick 2–4 rows to compare the units side by side.")

if result.truncated:
    everything = queries.search_units(key, flt, order_by, descending, None).frame
else:
    everything = frame
st.download_button(
    f"Download all {result.total:,} as CSV",
    frame_csv(pd.DataFrame(everything)).encode(),  # as `unitcat query --csv` writes it
    file_name="unitcat-search.csv",
    mime="text/csv",
    on_click="ignore",
    key="download",
)
