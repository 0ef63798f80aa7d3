"""Compare: two to four units side by side — every measure in one table, their jitter
plots (the paper's Figure 3) on one shared activation scale, top images and AM panels.

Opened from Search (tick rows → Compare) or by URL:
/compare?model=toynet&unit=fc6.3&unit=conv5.1(&run_id=…); units of several models are
MODEL:LAYER.UNIT, and ?unit_id=…&unit_id=… takes internal ids.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from catalogue.errors import InputError, NotFound
from catalogue.measures import UNIT_MEASURES
from catalogue.query.units import layer_units
from ui import connection, faults, figures, plots, queries, tables
from ui import urlstate as url
from ui.display import MEASURE_CLASS

MIN_UNITS, MAX_UNITS = 2, 4
PARAMS = {"model", "unit", "unit_id", "run_id"}
N_THUMBNAILS = 10

st.title("Compare units")
notes = st.container()
key = connection.engine_key()
faults.stop_if_empty(queries.overview(key))
options = queries.filter_options(key)


def _requested() -> list[int]:
    """Unit ids the URL names (in its order, each once)."""
    default_model = st.query_params.get("model")
    if default_model is not None and default_model not in options.models:
        url.note(
            f"`model={default_model}` is not in the catalogue; known: {', '.join(options.models)}."
        )
        default_model = None
    if default_model is None and len(options.models) == 1:
        default_model = options.models[0]
    ids: list[int] = []
    for text in st.query_params.get_all("unit"):
        try:
            model, layer, index = url.parse_unit_ref(
                text, options.models, options.layers, default_model
            )
            ids.append(queries.find_unit(key, model, layer, index))
        except (ValueError, NotFound) as exc:
            url.note(f"`unit={text}`: {exc}.")
    ids += url.initial_list("unit_id", parse=url.as_int)
    return list(dict.fromkeys(ids))


def _record(unit_id: int, run_id: int | None) -> dict[str, Any] | None:
    """The unit's record in the chosen run, else its newest (None: no such unit)."""
    try:
        return queries.unit_record(key, unit_id, run_id)
    except NotFound:
        if run_id is None:
            return None
    try:
        return queries.unit_record(key, unit_id, None)
    except NotFound:
        return None


def _name(record: dict[str, Any], several_models: bool) -> str:
    prefix = f"{record['model']} · " if several_models else ""
    return f"{prefix}{record['layer']}.{record['unit']}"


def _picker() -> None:
    """Choose units here when the URL names fewer than two."""
    st.caption(f"Pick {MIN_UNITS}–{MAX_UNITS} units (or tick rows on Search and press Compare):")
    model = st.selectbox("Model", options.models, key="compare_model")
    refs = [
        f"{layer}.{i}"
        for layer in options.layers.get(model, [])
        for i in range(layer_units(connection.engine(), model, layer))
    ]
    picked = st.multiselect(
        "Units", refs, max_selections=MAX_UNITS, key="compare_pick", placeholder="e.g. fc6.3"
    )
    if st.button("Compare", type="primary", disabled=len(picked) < MIN_UNITS, key="compare_go"):
        st.query_params.from_dict({"model": model, "unit": picked})
        st.rerun()


run_param = url.initial("run_id", None, parse=url.as_int)
unit_ids = _requested()
if len(unit_ids) > MAX_UNITS:
    url.note(f"Compare shows at most {MAX_UNITS} units; the first {MAX_UNITS} are shown.")
    unit_ids = unit_ids[:MAX_UNITS]
records = [r for r in (_record(u, run_param) for u in unit_ids) if r is not None]
if len(records) < len(unit_ids):
    url.note("Some units named in the URL are not in the catalogue; they are left out.")
url.check_known(PARAMS, where=notes)
if len(records) < MIN_UNITS:
    _picker()
    st.stop()

several_models = len({r["model"] for r in records}) > 1
names = [_name(r, several_models) for r in records]
runs = {
    None if r.get("run_id") is None or pd.isna(r["run_id"]) else int(r["run_id"]) for r in records
}
st.caption(
    "Units: "
    + " · ".join(
        f"[{n}]({url.unit_url(r['model'], r['layer'], r['unit'], r.get('run_id'))})"
        for n, r in zip(names, records, strict=True)
    )
    + (f" — scoring run {next(iter(runs))}" if len(runs) == 1 and None not in runs else "")
)

# ------------------------------------------------------------------------ measures table
rows = []
for m in UNIT_MEASURES:
    if m.kind == "class":
        continue
    values = [r.get(m.name) for r in records]
    row = {"Measure": m.label}
    for n, r, v in zip(names, records, values, strict=True):
        cls_col = MEASURE_CLASS.get(m.name)
        cls = r.get(cls_col) if cls_col else None
        text = tables.cell(v, count=m.name in tables.COUNT_COLUMNS)
        row[n] = f"{text} ({cls})" if text and cls else text
    rows.append(row)
for column, label in (("best_concept", "Best concept"), ("best_iou", "Best dissection IoU")):
    rows.append(
        {
            "Measure": label,
            **{n: tables.cell(r.get(column)) for n, r in zip(names, records, strict=True)},
        }
    )
st.subheader("Measures")
st.dataframe(
    pd.DataFrame(rows),
    hide_index=True,
    height="content",
    column_config={"Measure": st.column_config.Column(pinned=True)},
    key="compare_measures",
)

# ------------------------------------------------------------------- Figure 3, one scale
st.subheader("Activations on one scale (the paper's Figure 3)")
activations: list[Any] = []
for r in records:
    run_id = r.get("run_id")
    if run_id is None or pd.isna(run_id):
        activations.append(None)
        continue
    try:
        activations.append(queries.unit_activations(key, int(r["unit_id"]), int(run_id)))
    except (NotFound, InputError) as exc:
        activations.append(exc)
values = [a.values for a in activations if a is not None and not isinstance(a, Exception)]
if values:
    low = min(0.0, *(float(v.min()) for v in values if v.size))
    high = max(float(v.max()) for v in values if v.size) if any(v.size for v in values) else 1.0
    domain = (low, high if high > low else low + 1.0)
    for n, r, acts in zip(names, records, activations, strict=True):
        st.markdown(f"**{n}**")
        if acts is None:
            st.caption("Not scored.")
            continue
        if isinstance(acts, Exception):
            st.caption(f"No activations to plot: {acts}")
            continue
        default = r.get("mi_class_index")
        if default is None or pd.isna(default):
            default = r.get("precision_class_index")
        index = int(default) if default is not None and not pd.isna(default) else 0
        data = plots.jitter_points(acts.values, acts.labels, index, acts.class_names)
        chart = plots.jitter_chart(
            data,
            mi_threshold=r.get("mi_threshold") if r.get("mi_class_index") == index else None,
            top60_threshold=r.get("top60_threshold"),
            height=180,
        )
        figures.show(
            figures.with_x_domain(chart, domain),
            name=f"unitcat-{r['model']}-{r['layer']}-{r['unit']}-activations",
            key=f"compare_jitter_{r['unit_id']}",
        )
    st.caption(
        f"Every plot spans activations {domain[0]:.3g} to {domain[1]:.3g}; each highlights the "
        "unit's max-informedness class."
    )
else:
    st.info("None of these units has activations to plot.")

# -------------------------------------------------------------- top images and AM panels
columns = st.columns(len(records))
for col, n, r in zip(columns, names, records, strict=True):
    with col:
        st.markdown(f"**{n}**")
        run_id = r.get("run_id")
        run_id = None if run_id is None or pd.isna(run_id) else int(run_id)
        details = queries.unit_details(key, int(r["unit_id"]), run_id)
        top = details.get("top_images", pd.DataFrame())
        readable = top[top["image"].notna()].head(N_THUMBNAILS) if not top.empty else top
        st.caption("Top images")
        if readable.empty:
            st.caption("None readable here.")
        else:
            st.image(
                readable["image"].tolist(),
                caption=[
                    f"#{k} {c}"
                    for k, c in zip(readable["rank"], readable["class_name"], strict=True)
                ],
                width=72,
            )
        st.caption("AM panel")
        am = details["am"]
        if am.empty or not am.iloc[0]["file"]:
            st.caption("No AM panel.")
        else:
            st.image(am.iloc[0]["file"], width="content")
