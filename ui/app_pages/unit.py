"""Unit: every measure of one unit, the paper's Figure 3, top images, AM, dissection, ratings.

Opened by its permalink (?model=…&layer=…&unit=…&run_id=…; the internal ?unit_id=…
still works) from Search, Measures, Compare or a shared link, or by picking model,
layer and unit here. The highlighted class is ?class=…, else the class of the measure
or preset the user came from (?highlight=…, or ?preset=…), else the MI class
(`ui.urlstate`; its neighbours and related units: `ui.related`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from catalogue.errors import InputError, NotFound
from catalogue.measures import (
    MEASURES_BY_NAME,
    RATING_CONSENSUS_SHARE,
    RATING_MIN_RATERS,
    TOP_K_PRECISION,
    TOP_N_CLASSES,
)
from catalogue.query.files import UnitActivations
from catalogue.query.units import (
    detector_verdicts,
    layer_units,
    threshold_counts,
    unit_class_table,
)
from ui import (
    connection,
    display,
    faults,
    figures,
    importance,
    plots,
    queries,
    related,
    tables,
    twoafc_sections,
)
from ui import urlstate as url

#: The cut-offs of the top images the measures count: top-k precision, and the classes
#: in the top n (with Rafegas's index).
TOP_CUTS = (TOP_K_PRECISION, TOP_N_CLASSES)


def _picker(key: str) -> None:
    """Choose a unit by model, layer and index when the page was opened without one."""
    options = queries.filter_options(key)
    if not options.models:
        st.info(faults.EMPTY_MESSAGE)
        st.stop()
    c1, c2, c3, c4 = st.columns([2, 2, 1, 1])
    model = c1.selectbox("Model", options.models, key="pick_model")
    layer = c2.selectbox("Layer", options.layers.get(model, []), key="pick_layer")
    n_units = layer_units(connection.engine(), model, layer) if layer else 0
    unit = c3.number_input("Unit", 0, max(n_units - 1, 0), 0, key="pick_unit")
    c4.write("")
    if c4.button("Open", key="pick_open", type="primary"):
        try:
            queries.find_unit(key, model, layer, int(unit))  # exists?
        except NotFound as exc:
            st.warning(str(exc))
            return
        st.query_params.from_dict(url.unit_params(model, layer, int(unit)))
        st.rerun()


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def _activations(key: str, record: dict[str, Any], run_id: int | None) -> UnitActivations | None:
    """The unit's scored activations, or None when the run's HDF5 store cannot be read."""
    if run_id is None:
        return None
    try:
        return queries.unit_activations(key, int(record["unit_id"]), run_id)
    except (NotFound, InputError, OSError):
        return None


def _constant_banner(record: dict[str, Any]) -> None:
    """The first thing on a constant unit's page: what it is, and why no verdicts."""
    value = record.get("max_activation")
    shown = f" ({_fmt(float(value))})" if value is not None and not pd.isna(value) else ""
    st.warning(
        f"**Constant unit: every one of its {int(record.get('n_images') or 0):,} scored "
        f"activations is the same value{shown}.** Its measures describe the class sizes, "
        "not the unit, so no verdicts are given, and it is left out of presets, detector "
        "counts, layer summaries, plots and correlations unless *Include constant units* "
        "is switched on.",
        icon=":material/block:",
    )


def _measures(record: dict[str, Any], acts: UnitActivations | None) -> None:
    rows = display.measure_rows(record)
    table = pd.DataFrame(
        {
            "Measure": rows["label"],
            "Value": [
                tables.cell(v, count=True) if m in tables.COUNT_COLUMNS else _fmt(v)
                for m, v in zip(rows["measure"], rows["value"], strict=True)
            ],
            "Class": [_fmt(c) if c is not None else "" for c in rows["class"]],
            "Threshold": [_fmt(t) if not pd.isna(t) else "" for t in rows["threshold"]],
        }
    )
    st.dataframe(
        table,
        hide_index=True,
        height="content",
        column_config={
            "Measure": st.column_config.Column(
                width=250,
                help=f"Definitions (with their parameters) below the table; exact ones, tie "
                f"rules included: {display.DESIGN_DOC}; the paper's §2.",
            ),
            "Value": st.column_config.Column(width=60),
            "Threshold": st.column_config.Column(width=70),
        },
        key="measure_table",
    )
    st.caption(
        "False-alarm rate: FP/(TP+FP), the share of the images at or above the "
        "max-informedness threshold that are not of the class (the paper's quantity). "
        "False-positive rate: FP/(N − n_c) = 1 − specificity, the share of the other "
        "classes' images at or above it. Same FP, different denominators: not complements."
    )
    with st.expander("Definitions"):
        st.markdown(display.definitions_markdown())
    st.markdown("**Is it an object detector?**")
    if record.get("constant"):
        st.info("No verdicts for a constant unit: its activation says nothing about classes.")
        return
    if record.get("run_id") is None or pd.isna(record["run_id"]):
        st.caption("Not scored: only dissection and ratings can be judged.")
    for verdict in detector_verdicts(record):
        st.markdown(display.verdict_line(verdict))
    counts = None
    mi_class, threshold = record.get("mi_class_index"), record.get("mi_threshold")
    if acts is not None and not _missing(mi_class) and not _missing(threshold):
        counts = threshold_counts(acts, int(mi_class), float(threshold))
    line = display.false_alarm_line(record, counts)
    if line:
        st.markdown(line)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or pd.isna(value)


def _class_threshold(
    record: dict[str, Any], class_index: int, class_stats: pd.DataFrame | None
) -> float | None:
    """The max-informedness threshold of the highlighted class (the unit's own for its MI class)."""
    if record.get("mi_class_index") == class_index and not _missing(record.get("mi_threshold")):
        return float(record["mi_threshold"])
    if class_stats is None or class_stats.empty:
        return None
    match = class_stats[class_stats["class_index"] == class_index]
    if (
        match is not None
        and not match.empty
        and not pd.isna(match["informedness_threshold"].iloc[0])
    ):
        return float(match["informedness_threshold"].iloc[0])
    return None


def _figure_name(record: dict[str, Any], what: str) -> str:
    return f"unitcat-{record['model']}-{record['layer']}-{record['unit']}-{what}"


def _highlight_default(record: dict[str, Any]) -> tuple[int, str]:
    """The class to highlight first and the measure it is the class of: that of the measure
    the user came from (?highlight=…, else ?preset=…: precision class from the precision
    preset), else the MI class."""
    column = display.highlight_class_column(url.came_from())
    for name in dict.fromkeys((column, "mi_class", "precision_class")):
        value = record.get(f"{name}_index")
        if not _missing(value):
            return int(value), name
    return 0, column


def _figure3(
    record: dict[str, Any], run_id: int, details: dict[str, Any], acts: UnitActivations | None
) -> None:
    st.subheader("Activations (the paper's Figure 3)")
    if record.get("constant"):
        st.info("Every scored image has the same activation: there is nothing to plot.")
        return
    if acts is None:
        st.info(
            "No activations to plot: the scoring run's HDF5 store (from `unitcat ingest "
            "extract`) cannot be read here."
        )
        return
    names = acts.class_names
    default, source = _highlight_default(record)
    default = min(default, max(len(names) - 1, 0))
    wanted = url.initial("class", None, choices=list(names))  # ?class=… highlights a class
    class_index = st.selectbox(
        "Highlighted class",
        list(range(len(names))),
        index=default if wanted is None else list(names).index(wanted),
        format_func=lambda i: names[i],
        key=f"highlight_{record['unit_id']}_{run_id}_{source}",
        help="First the class of the measure you came from (e.g. the precision class from "
        "the precision preset), else the max-informedness class.",
    )
    if names:
        url.keep("class", names[class_index], default=names[default])
    st.caption(f"Highlighted first: the {display.CLASS_SOURCE_LABELS.get(source, source)}.")
    data = plots.jitter_points(acts.values, acts.labels, int(class_index), names)
    threshold = _class_threshold(
        record, int(class_index), details.get("class_table", details.get("class_stats"))
    )
    figures.show(
        plots.jitter_chart(
            data,
            mi_threshold=threshold,
            top60_threshold=record.get("top60_threshold"),
            mi_label=f"best-informedness threshold for '{data.class_name}'",
        ),
        name=_figure_name(record, "activations"),
        key="jitter",
    )
    scored = "all images" if acts.all_images else "the correctly classified images"
    st.caption(
        f"{acts.values.size:,} scored images ({scored} of {acts.n_stored:,} stored). {data.caption()}"
    )
    in_class = acts.values[acts.labels == class_index]
    high = float(acts.values.max()) if acts.values.size else 1.0
    value_range = (min(0.0, float(acts.values.min())) if acts.values.size else 0.0, high)
    c1, c2 = st.columns(2)
    figures.show(
        plots.histogram_chart(
            plots.histogram_frame(in_class, value_range=value_range),
            title=f"'{data.class_name}' images",
        ),
        name=_figure_name(record, "class-histogram"),
        key="hist_class",
        where=c1,
    )
    c1.caption(f"{in_class.size:,} images; {plots.zero_share(in_class):.1%} have activation 0.")
    n_zero = int(np.count_nonzero(acts.values == 0))
    figures.show(
        plots.histogram_chart(
            plots.histogram_frame(acts.values, value_range=value_range, drop_zeros=True),
            title="all images, non-zero activations",
            colour=plots.OTHER_COLOUR,
        ),
        name=_figure_name(record, "histogram"),
        key="hist_all",
        where=c2,
    )
    c2.caption(
        f"{acts.values.size - n_zero:,} non-zero activations shown; {n_zero:,} "
        f"({plots.zero_share(acts.values):.1%}) are 0."
    )


def _thumbnails(part: pd.DataFrame) -> None:
    readable = part[part["image"].notna()]
    if readable.empty:
        st.caption("The image files are not readable here; their keys are listed below.")
        return
    st.image(
        readable["image"].tolist(),
        caption=[
            f"#{r} {c} ({a:.3g})"
            for r, c, a in zip(
                readable["rank"], readable["class_name"], readable["activation"], strict=True
            )
        ],
        width=84,
    )


def _top_images(frame: pd.DataFrame, record: dict[str, Any]) -> None:
    """The stored top images in two parts, split at the cut-offs the measures count."""
    if frame.empty:
        st.info("No top images recorded for this unit and run.")
        return
    first, last = TOP_CUTS
    precision = MEASURES_BY_NAME["precision"].label
    n = len(frame)
    st.caption(
        f"{n} most active scored images, ties broken by lower image index. {precision} "
        f"counts ranks 1–{first}; classes in the top {last} (and Rafegas's index) count "
        f"ranks 1–{last}."
        + ("" if n >= last else f" Only {n} are stored for this run (re-score to keep {last}).")
    )
    for low, high, title in (
        (1, first, f"Ranks 1–{first}: the images {precision.lower()} counts"),
        (first + 1, last, f"Ranks {first + 1}–{last}: with the first {first}, the top {last}"),
    ):
        part = frame[(frame["rank"] >= low) & (frame["rank"] <= high)]
        if part.empty:
            continue
        top = part["class_name"].value_counts()
        st.markdown(
            f"**{title}** — cut-off at rank {int(part['rank'].max())}: activation "
            f"{part['activation'].iloc[-1]:.4g}; most frequent class {top.index[0]} "
            f"({int(top.iloc[0])} of {len(part)})"
        )
        _thumbnails(part)
    _tie_note(frame, record)
    listed = frame[["rank", "image_key", "class_name", "activation", "image_index"]]
    st.dataframe(
        tables.readable(listed, digits=4),
        hide_index=True,
        column_config=tables.column_config(listed, pinned=("rank",)),
        key="top_images",
    )


def _tie_note(frame: pd.DataFrame, record: dict[str, Any]) -> None:
    """Say so when images tie at a cut-off: the measures share them out, the list cannot."""
    acts = frame.set_index("rank")["activation"]
    for cut in TOP_CUTS:
        if cut + 1 in acts.index and acts[cut] == acts[cut + 1]:
            st.caption(
                f"Images tie at the rank-{cut} cut-off (activation {acts[cut]:.4g}): the "
                "measures share the tied images out in proportion (their expected value under "
                "a random order), so counts from this list can differ from the stored measures."
            )


def _class_table(details: dict[str, Any]) -> None:
    """Every class: from the activations when they can be read, else the stored top classes."""
    table = details.get("class_table")
    if table is not None:
        st.caption(
            f"All {len(table):,} classes, computed from the scored activations with the "
            "scorer's own definitions; in_top60 / in_top100: the class's images among the "
            "stored top images."
        )
        _class_rows(table)
        return
    stats = details.get("class_stats", pd.DataFrame())
    if stats.empty:
        st.info("No per-class statistics for this unit and run.")
        return
    st.caption(
        "Only the classes stored in `unit_class_stats` (the top classes by informedness and by "
        "mean): the activations that give every class cannot be read here."
    )
    _class_rows(stats)


def _class_rows(frame: pd.DataFrame) -> None:
    st.dataframe(
        tables.readable(frame),
        hide_index=True,
        column_config=tables.column_config(frame, pinned=("class_name",)),
        key="class_stats",
    )


def _am(frame: pd.DataFrame) -> None:
    if frame.empty:
        st.info("No activation-maximisation panel for this unit (`unitcat ingest am`).")
        return
    panel = frame.iloc[0]
    if panel["file"]:
        st.image(panel["file"], caption=f"{panel['method']} (run {panel['run_id']})")
    else:
        st.warning(f"The panel file {panel['path']} cannot be read here.")
    activations = panel["activations"] or []
    if activations:
        best = max(activations)
        ref = panel["dataset_max"]
        ratio = f" = {best / ref:.2f} × the dataset maximum ({ref:.3g})" if ref else ""
        st.caption(f"Activation on the panel images: up to {best:.3g}{ratio}.")


def _ratings(summary: dict[str, Any] | None, ratings: pd.DataFrame) -> None:
    if summary is None:
        st.info("Nobody has rated this unit's AM panel yet.")
        return
    c1, c2, c3 = st.columns(3)
    c1.metric("Ratings", summary["n_ratings"])
    c2.metric("Said 'object'", f"{summary['share_yes']:.0%}")
    consensus = summary["consensus"]
    c3.metric(
        f"Consensus (≥ {RATING_CONSENSUS_SHARE:.0%})",
        f"needs {RATING_MIN_RATERS} raters"
        if consensus is None
        else ("yes" if consensus else "no"),
        help=f"Shown once at least {RATING_MIN_RATERS} people have rated the panel.",
    )
    if summary.get("top_name"):
        st.markdown(f"Most given name: **{summary['top_name']}**")
    shown = ratings.assign(names=[", ".join(n or []) for n in ratings["names"]])
    st.dataframe(
        tables.readable(shown),
        hide_index=True,
        column_config=tables.column_config(shown, pinned=("participant",)),
        key="ratings",
    )


st.title("Unit")
notes = st.container()
key = connection.engine_key()
faults.stop_if_empty(queries.overview(key))

unit_id, run_id = url.requested_unit(key)
if unit_id is None:
    url.check_known(url.UNIT_PARAMS, where=notes)
    st.caption("Open a unit from Search or Measures, or pick one:")
    _picker(key)
    st.stop()

try:
    record = queries.unit_record(key, unit_id, run_id)
except NotFound as exc:
    url.check_known(url.UNIT_PARAMS, where=notes)
    st.warning(str(exc))
    _picker(key)
    st.stop()

run_id = (
    None if record.get("run_id") is None or pd.isna(record["run_id"]) else int(record["run_id"])
)
address = queries.unit_address(key, unit_id)
if address is not None:
    url.canonical_address(address, run_id)
st.header(f"{record['model']} · {record['layer']} · unit {record['unit']}")
if record.get("constant"):
    _constant_banner(record)
related.neighbour_buttons(key, unit_id, run_id)

runs = queries.unit_runs(key, unit_id)
if len(runs) > 1:
    names = dict(zip(runs["id"].astype(int), runs["name"], strict=True))
    chosen = st.selectbox(
        "Scoring run",
        list(names),
        index=list(names).index(run_id) if run_id in names else 0,
        format_func=names.__getitem__,
        key=f"unit_run_{unit_id}",
    )
    if chosen != run_id:
        st.query_params["run_id"] = str(chosen)
        st.rerun()
elif run_id is not None:
    st.caption(f"Scoring run: {runs['name'].iloc[0] if len(runs) else run_id}")
else:
    st.caption("This unit has not been scored; dissection, AM and ratings are shown below.")

details = queries.unit_details(key, unit_id, run_id)
acts = _activations(key, record, run_id)
if acts is not None:
    details["class_table"] = unit_class_table(acts, details.get("top_images"))
left, right = st.columns([1, 1])
with left:
    _measures(record, acts)
with right:
    if run_id is not None:
        _figure3(record, run_id, details, acts)

tabs = st.tabs(["Top images", "Per class", "Class groups", "Dissection", "AM panel", "Ratings"])
with tabs[0]:
    _top_images(details.get("top_images", pd.DataFrame()), record)
with tabs[1]:
    _class_table(details)
with tabs[2]:
    groups = details.get("group_metrics", pd.DataFrame())
    if groups.empty:
        st.info("No class groups scored (e.g. `bus` = school bus + trolleybus + minibus).")
    else:
        st.dataframe(
            tables.readable(groups),
            hide_index=True,
            column_config=tables.column_config(groups, pinned=("group_name",)),
            key="group_metrics",
        )
with tabs[3]:
    dissection = details["dissection"]
    if dissection.empty:
        st.info("Not dissected (`unitcat ingest dissect`).")
    else:
        st.dataframe(
            tables.readable(dissection, digits=4),
            hide_index=True,
            column_config=tables.column_config(dissection, pinned=("concept",)),
            key="dissection",
        )
with tabs[4]:
    _am(details["am"])
with tabs[5]:
    _ratings(details["rating_summary"], details["ratings"])

importance.unit_section(key, unit_id)
twoafc_sections.unit_section(key, unit_id)

related.related_units(key, record, run_id)
url.check_known(url.UNIT_PARAMS, where=notes)
