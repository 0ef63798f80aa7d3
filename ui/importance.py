"""Page sections about unit importance and baselines, kept apart from the pages.

- `unit_section`: the Unit page's Ablation section: what removing the unit did to every
  class, sorted, its selective classes highlighted.
- `baselines_section` and `curves_section`: the Layers page's trained-vs-random-vs-chance
  detector counts and the class-ablation curves (Bau et al. 2020).
- `measures_section`: importance among the Measures page's correlations: each measure's
  Spearman correlation with the accuracy drop on the unit's class (Morcos et al. 2018).

Reads go through `catalogue.query.importance`, cached like the pages' own queries.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import streamlit as st

from catalogue.errors import InputError, NotFound
from catalogue.measures import CRITERIA_BY_KEY, SELECTIVE_CLASSES
from catalogue.query import importance as importance_query
from ui import connection, figures, importance_plots, queries, tables

ABLATE_HINT = (
    "`unitcat ingest ablate RUN --layers LAYER` removes each unit of a layer in turn and "
    "measures every class's accuracy."
)
BASELINE_HINT = (
    "`unitcat ingest baseline RUN --random-weights --chance` adds the same network with "
    "random weights and the counts expected by chance."
)
SELECTIVE_LABELS = {
    "precision_class": "precision",
    "mi_class": "max informedness",
    "ccmas_class": "CCMAS",
    "detector_bar_class": "detector bar",
}


# ------------------------------------------------------------------------ cached reads


@st.cache_data(ttl=queries.TTL_S, show_spinner=False)
def _unit_importance(key: str, unit_id: int) -> pd.DataFrame:
    return importance_query.unit_importance(connection.engine_for(key), unit_id)


@st.cache_data(ttl=queries.TTL_S, show_spinner="Reading the ablation file …", max_entries=16)
def _class_changes(key: str, run_id: int, unit_id: int) -> pd.DataFrame:
    return importance_query.unit_class_changes(connection.engine_for(key), run_id, unit_id)


@st.cache_data(ttl=queries.TTL_S, show_spinner=False)
def _layer_baselines(key: str, score_run_id: int) -> pd.DataFrame:
    return importance_query.layer_baselines(connection.engine_for(key), score_run_id)


@st.cache_data(ttl=queries.TTL_S, show_spinner=False)
def _ablation_runs(key: str, score_run_id: int) -> pd.DataFrame:
    return importance_query.ablation_runs(connection.engine_for(key), score_run_id)


@st.cache_data(ttl=queries.TTL_S, show_spinner=False)
def _curve_layers(key: str, ablate_run_id: int) -> list[str]:
    return importance_query.curve_layers(connection.engine_for(key), ablate_run_id)


@st.cache_data(ttl=queries.TTL_S, show_spinner=False)
def _class_curves(key: str, ablate_run_id: int, layer: str) -> pd.DataFrame:
    return importance_query.class_curves(connection.engine_for(key), ablate_run_id, layer)


@st.cache_data(ttl=queries.TTL_S, show_spinner=False)
def _correlations(key: str, ablate_run_id: int, layer: str | None) -> pd.DataFrame:
    return importance_query.importance_correlations(
        connection.engine_for(key), ablate_run_id, layer
    )


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _signed(value: Any) -> str:
    return "—" if _missing(value) else f"{float(value):+.3f}"


def _run_choice(runs: pd.DataFrame, label: str, key: str) -> int:
    names = {int(r.id): f"#{int(r.id)} {r.label or ''}".strip() for r in runs.itertuples()}
    ids = list(names)
    if len(ids) == 1:
        st.caption(f"{label}: {names[ids[0]]}")
        return ids[0]
    return int(st.selectbox(label, ids, format_func=names.__getitem__, key=key))


# -------------------------------------------------------------------------- Unit page


def unit_section(key: str, unit_id: int) -> None:
    """The Unit page's Ablation section."""
    st.subheader("Ablation")
    rows = _unit_importance(key, int(unit_id))
    if rows.empty:
        st.info(f"This unit has not been ablated. {ABLATE_HINT}")
        return
    runs = rows.rename(columns={"run_id": "id"}).assign(
        label=[f"{r.replaced_by or 'zero'}, {r.n_images:,} images" for r in rows.itertuples()]
    )
    run_id = _run_choice(runs, "Ablation run", f"ablation_run_{unit_id}")
    row = rows[rows["run_id"] == run_id].iloc[0].to_dict()
    before = row["accuracy"] - row["accuracy_change"] if not _missing(row["accuracy"]) else None
    c1, c2, c3 = st.columns(3)
    c1.metric(
        "Overall accuracy change",
        _signed(row["accuracy_change"]),
        help=f"Accuracy over the run's images with the unit replaced by {row['replaced_by']} "
        f"({'' if before is None else f'{before:.3f} → '}{row['accuracy']:.3f}).",
    )
    c2.metric(
        "Most hurt class",
        str(row["most_hurt_class"] or "—"),
        _signed(row["most_hurt_change"]),
        delta_color="off",
    )
    c3.metric("Images", f"{int(row['n_images']):,}")
    selective = {}
    lines = []
    for column in SELECTIVE_CLASSES:
        index = row.get(f"{column}_index")
        if _missing(index):
            continue
        name = SELECTIVE_LABELS[column]
        selective.setdefault(int(index), []).append(name)
        lines.append(f"{name} class **{row[column]}**: {_signed(row[f'{column}_change'])}")
    if lines:
        st.markdown("Accuracy change of its selective classes — " + "; ".join(lines) + ".")
    else:
        st.caption("No scoring run named this unit's selective classes.")
    try:
        changes = _class_changes(key, run_id, int(unit_id))
    except (NotFound, InputError) as exc:
        st.info(f"No per-class changes to plot: {exc}")
        return
    shown, caption = importance_plots.shown_classes(changes)
    figures.show(
        importance_plots.class_change_chart(shown, {c: ", ".join(v) for c, v in selective.items()}),
        name=f"unitcat-ablation-run{run_id}-unit{unit_id}",
        key=f"ablation_classes_{unit_id}_{run_id}",
    )
    st.caption(
        f"Accuracy change of {caption} when the unit's whole activation is replaced by "
        f"{row['replaced_by']} (negative: the unit helped that class); its selective classes in red."
    )


# ------------------------------------------------------------------------ Layers page


def baselines_section(key: str, score_run_id: int) -> None:
    """Detectors per layer and criterion: trained, random weights, chance (mean ± sd)."""
    st.subheader("Trained vs random weights vs chance")
    frame = _layer_baselines(key, int(score_run_id))
    has_baseline = not frame.empty and (
        frame["random"].notna().any() or frame["chance_mean"].notna().any()
    )
    if not has_baseline:
        st.info(f"No baselines for this scoring run. {BASELINE_HINT}")
        return
    labels = {k: c.label for k, c in CRITERIA_BY_KEY.items()}
    long = importance_plots.baseline_frame(frame, labels)
    order = frame.sort_values("layer_position")["layer"].drop_duplicates().tolist()
    criteria = list(dict.fromkeys(long["criterion"]))
    columns = st.columns(2)
    for i, criterion in enumerate(criteria):
        with columns[i % 2]:
            st.markdown(f"**{criterion}**")
            figures.show(
                importance_plots.baseline_chart(long[long["criterion"] == criterion], order),
                name=f"unitcat-run{score_run_id}-baselines-{criterion}",
                key=f"baseline_chart_{i}",
            )
    models = ", ".join(sorted(frame["random_model"].dropna().unique()))
    repeats = frame["chance_repeats"].dropna()
    st.caption(
        "Units each criterion calls detectors in the trained network, in the same network "
        f"with random weights ({models or 'none yet'}), and with the labels permuted "
        f"({int(repeats.max()) if len(repeats) else 0} permutations; bar: mean, line: ± sd)."
    )
    with st.expander("As a table"):
        st.dataframe(tables.readable(frame), hide_index=True, key="baseline_table")


def curves_section(key: str, score_run_id: int) -> None:
    """Class-ablation curves of a layer and class (Bau et al. 2020)."""
    st.subheader("Class-ablation curves")
    runs = _ablation_runs(key, int(score_run_id))
    if runs.empty:
        st.info(f"No ablation of this run's extraction. {ABLATE_HINT}")
        return
    run_id = _run_choice(runs, "Ablation run", "curve_run")
    layers = _curve_layers(key, run_id)
    if not layers:
        st.info("This ablation run has no class curves (it was run with --no-curves).")
        return
    c1, c2 = st.columns(2)
    layer = c1.selectbox("Layer", layers, key="curve_layer")
    curves = _class_curves(key, run_id, layer)
    classes = curves[["class_index", "class_name"]].drop_duplicates()
    names = dict(zip(classes["class_index"].astype(int), classes["class_name"], strict=True))
    class_index = c2.selectbox(
        "Class", list(names), format_func=lambda i: str(names[i] or i), key="curve_class"
    )
    chosen = curves[curves["class_index"] == class_index]
    figures.show(
        importance_plots.curve_chart(importance_plots.curve_frame(chosen)),
        name=f"unitcat-ablation-run{run_id}-{layer}-class{class_index}-curves",
        key="curve_chart",
    )
    st.caption(
        "The class's accuracy (solid) and the other classes' (dashed) as the top k units of the "
        "layer, ranked for this class, are removed together: by their single-unit ablation "
        "effect, class-conditional mean, CCMAS or top-60 precision for the class, or at random."
    )


# ---------------------------------------------------------------------- Measures page


def measures_section(key: str, score_run_id: int, layer: str | None) -> None:
    """Importance among the correlations: each measure against the accuracy drop."""
    st.subheader("Selectivity vs importance")
    runs = _ablation_runs(key, int(score_run_id))
    if runs.empty:
        st.info(f"No ablation of this run's extraction to correlate with. {ABLATE_HINT}")
        return
    run_id = _run_choice(runs, "Ablation run", "importance_run")
    frame = _correlations(key, run_id, layer)
    if frame.empty:
        ablated = ", ".join(sorted(_correlations(key, run_id, None)["layer"].unique()))
        st.info(
            f"The ablation run did not ablate {'this layer' if layer else 'any scored layer'}"
            + (f" (it ablated {ablated})." if ablated else ".")
        )
        return
    for name, rows in frame.groupby("layer", sort=False):
        st.markdown(f"**{name}**")
        figures.show(
            importance_plots.importance_chart(importance_plots.importance_frame(rows)),
            name=f"unitcat-ablation-run{run_id}-{name}-selectivity-vs-importance",
            key=f"importance_{name}",
        )
    st.caption(
        "Spearman correlation over the layer's units of each measure with the accuracy drop "
        "(before minus after removing the unit) on the unit's own selective class, and over "
        "all images (Morcos et al. 2018 found selectivity a poor predictor of importance)."
    )
    with st.expander("As a table"):
        st.dataframe(tables.readable(frame), hide_index=True, key="importance_table")
