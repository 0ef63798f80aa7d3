"""Charts of unit importance and baselines: pure functions from DataFrames to Altair charts.

- `class_change_chart`: one unit's accuracy change per class when it is removed, sorted.
- `curve_chart`: class-ablation curves (Bau et al. 2020): a class's accuracy, and the
  other classes', as the top k units by each ranking are removed.
- `baseline_frame` + `baseline_chart`: detectors per layer, trained vs random weights vs
  chance (mean ± sd).
- `importance_chart`: the Spearman correlation of each selectivity measure with the
  accuracy drop on the unit's selective class and overall (Morcos et al. 2018).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import altair as alt
import numpy as np
import pandas as pd

from ui.plots import measure_label

SELECTIVE_COLOUR = "#e4572e"
OTHER_COLOUR = "#9e9e9e"
SOURCES = ("trained", "random weights", "chance")
SOURCE_COLOURS = ("#1f77b4", "#ff7f0e", "#7f7f7f")


def shown_classes(frame: pd.DataFrame, limit: int = 60) -> tuple[pd.DataFrame, str]:
    """At most ``limit`` classes of a sorted per-class frame: all of them, or the most hurt
    and the most helped; and a caption saying which."""
    if len(frame) <= limit:
        return frame, f"all {len(frame)} classes"
    head = frame.head(limit - limit // 4)
    tail = frame.tail(limit // 4)
    return (
        pd.concat([head, tail]),
        f"the {len(head)} most hurt and the {len(tail)} most helped of {len(frame)} classes",
    )


def class_change_chart(frame: pd.DataFrame, selective: Mapping[int, str]) -> alt.LayerChart:
    """Bars of ``change`` per class (sorted as given); the unit's selective classes in colour,
    named in the tooltip (``selective``: class index → which measures chose it)."""
    data = frame.assign(
        chosen_by=[selective.get(int(c), "") for c in frame["class_index"]],
        selective=[int(c) in selective for c in frame["class_index"]],
    )
    order = list(data["class_name"])
    bars = (
        alt.Chart(data)
        .mark_bar()
        .encode(
            y=alt.Y(
                "class_name:N",
                sort=order,
                title=None,
                axis=alt.Axis(labelLimit=200, labelOverlap=False),
            ),
            x=alt.X("change:Q", title="accuracy change when the unit is removed"),
            color=alt.condition(
                "datum.selective", alt.value(SELECTIVE_COLOUR), alt.value(OTHER_COLOUR)
            ),
            tooltip=[
                "class_name:N",
                alt.Tooltip("change:Q", format="+.3f"),
                alt.Tooltip("baseline_accuracy:Q", format=".3f", title="accuracy before"),
                "n_images:Q",
                alt.Tooltip("chosen_by:N", title="selective class by"),
            ],
        )
    )
    zero = alt.Chart(pd.DataFrame({"x": [0.0]})).mark_rule(color="black").encode(x="x:Q")
    return alt.layer(bars, zero).properties(height=alt.Step(18))


def curve_frame(curves: pd.DataFrame) -> pd.DataFrame:
    """Long form of one class's curves: ranking, k, which (this class / other classes), accuracy."""
    rows = []
    for r in curves.itertuples():
        for which, value in (("this class", r.class_accuracy), ("other classes", r.other_accuracy)):
            rows.append({"ranking": r.ranking, "k": int(r.k), "which": which, "accuracy": value})
    return pd.DataFrame(rows, columns=["ranking", "k", "which", "accuracy"])


#: Line styles of a class-ablation curve: solid for the class, dashed for the others.
CURVE_WHICH = ("this class", "other classes")
CURVE_DASHES = ([1, 0], [6, 4])


def curve_chart(frame: pd.DataFrame) -> alt.Chart:
    """Accuracy against the number of units removed (0, 1, 2, 4, …; a symlog axis).

    The axis is labelled at every k the curves hold (automatic ticks on a symlog scale skip
    k = 1 and 2, where a class's accuracy usually falls), and the legend draws the two
    line styles as lines (its default symbol, a circle, draws both alike)."""
    ks = sorted({int(k) for k in frame["k"]}) if len(frame) else []
    return (
        alt.Chart(frame)
        .mark_line(point=True)
        .encode(
            x=alt.X(
                "k:Q",
                title="units removed (top k by the ranking)",
                scale=alt.Scale(type="symlog"),
                axis=alt.Axis(values=ks, format="d"),
            ),
            y=alt.Y("accuracy:Q", title="accuracy", scale=alt.Scale(domain=[0, 1])),
            color=alt.Color("ranking:N", title="ranking"),
            strokeDash=alt.StrokeDash(
                "which:N",
                title=None,
                sort=list(CURVE_WHICH),
                scale=alt.Scale(domain=list(CURVE_WHICH), range=[list(d) for d in CURVE_DASHES]),
                legend=alt.Legend(symbolType="stroke", symbolStrokeWidth=2, symbolSize=400),
            ),
            tooltip=["ranking:N", "k:Q", "which:N", alt.Tooltip("accuracy:Q", format=".3f")],
        )
        .properties(height=320)
    )


def baseline_frame(baselines: pd.DataFrame, labels: Mapping[str, str]) -> pd.DataFrame:
    """Long form of `layer_baselines`: one row per layer, criterion and source, with the
    chance sd as an error bar (lo, hi)."""
    rows = []
    for r in baselines.itertuples():
        label = labels.get(r.criterion, r.criterion)
        for source, value, sd in (
            ("trained", r.trained, 0.0),
            ("random weights", r.random, 0.0),
            ("chance", r.chance_mean, r.chance_sd),
        ):
            if value is None or (isinstance(value, float) and np.isnan(value)):
                continue
            sd = 0.0 if sd is None or (isinstance(sd, float) and np.isnan(sd)) else float(sd)
            rows.append(
                {
                    "layer": r.layer,
                    "layer_position": r.layer_position,
                    "criterion": label,
                    "source": source,
                    "n": float(value),
                    "lo": max(0.0, float(value) - sd),
                    "hi": float(value) + sd,
                }
            )
    return pd.DataFrame(
        rows, columns=["layer", "layer_position", "criterion", "source", "n", "lo", "hi"]
    )


def baseline_chart(frame: pd.DataFrame, layer_order: Sequence[str]) -> alt.LayerChart:
    """Detectors per layer for one criterion: trained, random weights, chance (bar: mean,
    line: ± sd over permutations)."""
    base = alt.Chart(frame).encode(
        x=alt.X("layer:N", sort=list(layer_order), title=None, axis=alt.Axis(labelAngle=0)),
        xOffset=alt.XOffset("source:N", sort=list(SOURCES)),
    )
    top = float(frame["hi"].max()) if len(frame) else 0.0
    bars = base.mark_bar().encode(
        y=alt.Y(
            "n:Q",
            title="units called detectors",
            scale=alt.Scale(domain=[0, max(1.0, top)]),
            axis=alt.Axis(format="d", tickMinStep=1),
        ),
        color=alt.Color(
            "source:N",
            sort=list(SOURCES),
            scale=alt.Scale(domain=list(SOURCES), range=list(SOURCE_COLOURS)),
            legend=alt.Legend(title=None, orient="bottom"),
        ),
        tooltip=["layer:N", "source:N", alt.Tooltip("n:Q", format=".1f")],
    )
    errors = base.mark_rule(color="black").encode(y="lo:Q", y2="hi:Q")
    return alt.layer(bars, errors).properties(height=220)


def importance_frame(correlations: pd.DataFrame) -> pd.DataFrame:
    """Long form of `selectivity_vs_importance` rows of one layer: measure, against, spearman."""
    rows = []
    for r in correlations.itertuples():
        for against, value in (
            ("drop on its class", r.spearman_class_drop),
            ("overall drop", r.spearman_overall_drop),
        ):
            rows.append(
                {
                    "measure": measure_label(r.measure),
                    "class_column": r.class_column,
                    "against": against,
                    "spearman": value,
                    "n": r.n,
                }
            )
    return pd.DataFrame(rows, columns=["measure", "class_column", "against", "spearman", "n"])


def importance_chart(frame: pd.DataFrame) -> alt.Chart:
    """Spearman correlation of each measure with importance: bars from -1 to 1."""
    return (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            y=alt.Y("measure:N", title=None, axis=alt.Axis(labelLimit=220)),
            yOffset=alt.YOffset("against:N"),
            x=alt.X("spearman:Q", title="Spearman r", scale=alt.Scale(domain=[-1, 1])),
            color=alt.Color("against:N", title=None, legend=alt.Legend(orient="bottom")),
            tooltip=[
                "measure:N",
                "against:N",
                alt.Tooltip("spearman:Q", format="+.3f"),
                "n:Q",
                alt.Tooltip("class_column:N", title="class used"),
            ],
        )
        .properties(height=max(200, 34 * frame["measure"].nunique()))
    )
