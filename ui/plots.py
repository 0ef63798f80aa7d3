"""Chart builders for the UI: pure functions from arrays or DataFrames to Altair charts.

Nothing here talks to the database or to Streamlit, so every figure can be
tested by looking at the data it carries (`chart.to_dict()`).

Figures of the paper (Bowers et al., "object detectors" paper):
- Figure 2: `layer_box_chart` (each measure per layer) and `detector_count_chart`.
- Figure 3: `jitter_points` + `jitter_chart` (activation of every scored image,
  the class highlighted, lines at the max-informedness threshold and the top-60
  cut-off) and `histogram_frame` + `histogram_chart`.
- Table 3: `correlation_matrix` + `correlation_heatmap`.

Large layers: the browser never gets more than a few thousand points. The
jitter plot shows every image of the highlighted class (up to `max_class`),
the `n_top_other` most active images of the other classes, and a uniform
random sample (fixed seed) of the remaining ones; the histograms count every
image, so the distribution itself is exact.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import altair as alt
import numpy as np
import pandas as pd

from catalogue.measures import MEASURES_BY_NAME

CLASS_COLOUR = "#111111"
OTHER_COLOUR = "#9e9e9e"
MI_COLOUR = "#e4572e"
TOP60_COLOUR = "#1f77b4"
OTHER_LABEL = "other classes"
MI_LINE = "max-informedness threshold"
TOP60_LINE = "top-60 cut-off"


def measure_label(name: str) -> str:
    """The UI label of a measure (catalogue.measures), or the column name itself."""
    extra = {
        "best_iou": "Best dissection IoU",
        "share_yes": "Share of 'yes' ratings",
        "human_2afc_accuracy": "Human 2-AFC accuracy",
        "ablation_drop": "Accuracy drop when ablated",
    }
    measure = MEASURES_BY_NAME.get(name)
    return measure.label if measure is not None else extra.get(name, name)


# ------------------------------------------------------------------------------- Figure 3


@dataclass(frozen=True)
class JitterData:
    """The points of a jitter plot and how they were chosen from all scored images."""

    points: pd.DataFrame  # activation, jitter, group, class_name, image (row among scored images)
    class_name: str
    n_class: int
    n_other: int
    n_class_shown: int
    n_other_shown: int
    n_top_other: int

    @property
    def sampled(self) -> bool:
        return self.n_class_shown < self.n_class or self.n_other_shown < self.n_other

    def caption(self) -> str:
        parts = [f"{self.n_class_shown:,} of {self.n_class:,} '{self.class_name}' images"]
        if self.n_other_shown == self.n_other:
            parts.append(f"all {self.n_other:,} images of other classes")
        else:
            sample = self.n_other_shown - self.n_top_other
            parts.append(
                f"{self.n_other_shown:,} of {self.n_other:,} other images "
                f"(the {self.n_top_other:,} most active and a random sample of {sample:,} "
                "of the rest)"
            )
        return "Shown: " + "; ".join(parts) + ". The histograms count every image."


def jitter_points(
    values: np.ndarray,
    labels: np.ndarray,
    class_index: int,
    class_names: Sequence[str],
    *,
    max_class: int = 20_000,
    n_top_other: int = 200,
    max_other: int = 5_000,
    seed: int = 0,
) -> JitterData:
    """Choose the points of the paper's Figure 3 jitter plot (x = activation, y = jitter).

    Every image of `class_index` is kept (a random `max_class` of them past that);
    of the other images, all when there are at most `max_other`, else the
    `n_top_other` most active plus a random sample filling up to `max_other`.
    """
    values = np.asarray(values, dtype=np.float32).reshape(-1)
    labels = np.asarray(labels).reshape(-1)
    if values.shape != labels.shape:
        raise ValueError(f"{values.shape[0]} activations but {labels.shape[0]} labels")
    if max_other < n_top_other:
        raise ValueError("max_other must be at least n_top_other")
    rng = np.random.default_rng(seed)
    is_class = labels == class_index
    class_rows = np.flatnonzero(is_class)
    n_class = int(class_rows.size)
    if n_class > max_class:
        class_rows = np.sort(rng.choice(class_rows, size=max_class, replace=False))
    n_other = int(values.size - n_class)
    top = np.empty(0, dtype=np.int64)
    if n_other <= max_other:
        other_rows = np.flatnonzero(~is_class)
    else:
        masked = np.where(is_class, -np.inf, values.astype(np.float64))
        top = np.argpartition(-masked, n_top_other - 1)[:n_top_other] if n_top_other else top
        rest_mask = ~is_class
        rest_mask[top] = False
        rest = np.flatnonzero(rest_mask)
        sample = rng.choice(rest, size=max_other - top.size, replace=False)
        other_rows = np.sort(np.concatenate([top, sample]))
    rows = np.concatenate([other_rows, class_rows])  # class last: drawn on top
    names = np.asarray(class_names, dtype=object)
    class_name = str(names[class_index]) if 0 <= class_index < names.size else str(class_index)
    row_labels = labels[rows]
    in_range = (row_labels >= 0) & (row_labels < names.size)
    point_names = np.where(
        in_range, names[np.clip(row_labels, 0, max(names.size - 1, 0))], row_labels.astype(str)
    )
    points = pd.DataFrame(
        {
            "activation": values[rows].astype(np.float64),
            "jitter": rng.uniform(0.0, 1.0, size=rows.size),
            "group": np.where(is_class[rows], class_name, OTHER_LABEL),
            "class_name": point_names.astype(str),
            "image": rows.astype(np.int64),
        }
    )
    return JitterData(
        points=points,
        class_name=class_name,
        n_class=n_class,
        n_other=n_other,
        n_class_shown=int(class_rows.size),
        n_other_shown=int(other_rows.size),
        n_top_other=int(top.size),
    )


def jitter_chart(
    data: JitterData,
    *,
    mi_threshold: float | None,
    top60_threshold: float | None,
    mi_label: str = MI_LINE,
    height: int = 320,
) -> alt.LayerChart:
    """Figure 3 (left): black diamonds for the class, grey circles for the rest, a dashed
    line at the max-informedness threshold and a solid one at the top-60 cut-off.

    Layers are drawn in order: the points, then a white halo under each line, then the
    lines, so both lines stay visible above the densest points (and the dashed one above
    the solid one where the two thresholds coincide)."""
    groups = [data.class_name, OTHER_LABEL]
    points = (
        alt.Chart(data.points)
        .mark_point(filled=True, opacity=0.75)
        .encode(
            x=alt.X("activation:Q", title="activation"),
            y=alt.Y("jitter:Q", axis=None, title=None),
            color=alt.Color(
                "group:N",
                scale=alt.Scale(domain=groups, range=[CLASS_COLOUR, OTHER_COLOUR]),
                legend=alt.Legend(title=None, orient="top", labelLimit=0),
            ),
            shape=alt.Shape(
                "group:N",
                scale=alt.Scale(domain=groups, range=["diamond", "circle"]),
                legend=None,
            ),
            size=alt.Size("group:N", scale=alt.Scale(domain=groups, range=[60, 18]), legend=None),
            tooltip=[
                alt.Tooltip("class_name:N", title="class"),
                alt.Tooltip("activation:Q", format=".4g"),
                alt.Tooltip("image:Q", title="scored image"),
            ],
        )
    )
    lines = threshold_frame(
        mi_threshold=mi_threshold, top60_threshold=top60_threshold, mi_label=mi_label
    )
    layers: list[alt.Chart] = [points]
    if not lines.empty:
        lines = lines.iloc[::-1].reset_index(drop=True)  # the dashed MI line drawn last
        names = lines["line"].tolist()
        colours = [MI_COLOUR if n == mi_label else TOP60_COLOUR for n in names]
        dashes = [[6, 4] if n == mi_label else [1, 0] for n in names]
        layers.append(
            alt.Chart(lines)
            .mark_rule(strokeWidth=6, color="white", opacity=0.85)
            .encode(x="value:Q")
        )
        layers.append(
            alt.Chart(lines)
            .mark_rule(strokeWidth=2.5)
            .encode(
                x="value:Q",
                color=alt.Color(
                    "line:N",
                    scale=alt.Scale(domain=names, range=colours),
                    legend=alt.Legend(
                        title=None, orient="bottom", direction="vertical", labelLimit=0
                    ),
                ),
                strokeDash=alt.StrokeDash(
                    "line:N", scale=alt.Scale(domain=names, range=dashes), legend=None
                ),
                tooltip=["line:N", alt.Tooltip("value:Q", format=".4g")],
            )
        )
    return (
        alt.layer(*layers)
        .resolve_scale(color="independent", shape="independent", size="independent")
        .properties(height=height)
    )


def threshold_frame(
    *, mi_threshold: float | None, top60_threshold: float | None, mi_label: str = MI_LINE
) -> pd.DataFrame:
    rows = []
    if mi_threshold is not None and np.isfinite(mi_threshold):
        rows.append({"line": mi_label, "value": float(mi_threshold)})
    if top60_threshold is not None and np.isfinite(top60_threshold):
        rows.append({"line": TOP60_LINE, "value": float(top60_threshold)})
    return pd.DataFrame(rows, columns=["line", "value"])


def histogram_frame(
    values: np.ndarray,
    *,
    bins: int = 30,
    value_range: tuple[float, float] | None = None,
    drop_zeros: bool = False,
) -> pd.DataFrame:
    """Counts of `values` in equal-width bins: columns start, end, count (every value counted)."""
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    values = values[np.isfinite(values)]
    if drop_zeros:
        values = values[values != 0]
    if values.size == 0:
        return pd.DataFrame({"start": [], "end": [], "count": []})
    low, high = value_range if value_range is not None else (values.min(), values.max())
    if high <= low:
        high = low + 1.0
    counts, edges = np.histogram(values, bins=bins, range=(low, high))
    return pd.DataFrame({"start": edges[:-1], "end": edges[1:], "count": counts.astype(np.int64)})


def zero_share(values: np.ndarray) -> float:
    values = np.asarray(values).reshape(-1)
    return float(np.mean(values == 0)) if values.size else float("nan")


def histogram_chart(
    frame: pd.DataFrame, *, title: str, colour: str = CLASS_COLOUR, height: int = 220
) -> alt.Chart:
    """Figure 3 (middle and inset): a histogram from `histogram_frame`."""
    return (
        alt.Chart(frame, title=title)
        .mark_bar(color=colour, opacity=0.85, binSpacing=0)
        .encode(
            x=alt.X("start:Q", title="activation", bin="binned"),
            x2="end:Q",
            y=alt.Y("count:Q", title="images"),
            tooltip=[
                alt.Tooltip("start:Q", format=".4g"),
                alt.Tooltip("end:Q", format=".4g"),
                "count:Q",
            ],
        )
        .properties(height=height)
    )


# ------------------------------------------------------------------------------- Figure 2


def box_frame(summary: pd.DataFrame) -> pd.DataFrame:
    """`layer_summary` rows with labels and the standard error of the mean added."""
    frame = summary.copy()
    frame["measure_label"] = [measure_label(m) for m in frame["measure"]]
    n = pd.to_numeric(frame["n"], errors="coerce").astype("float64")
    sd = pd.to_numeric(frame["sd"], errors="coerce").astype("float64")
    frame["se"] = (sd / np.sqrt(n.where(n > 0))).fillna(0.0)
    frame["mean_low"] = frame["mean"] - frame["se"]
    frame["mean_high"] = frame["mean"] + frame["se"]
    return frame


def layer_box_chart(
    summary: pd.DataFrame, layer_order: Sequence[str], *, columns: int = 2
) -> alt.FacetChart:
    """Figure 2: per measure, a box per layer (quartiles, median, min–max whiskers) with the
    mean ± standard error, drawn from `layer_summary`."""
    frame = box_frame(summary)
    # a panel is 210 px wide: past four layers their names would collide, so they turn
    many = len(layer_order) > 4
    x = alt.X(
        "layer:N",
        sort=list(layer_order),
        title=None,
        # every layer labelled on every panel (not only the bottom row), turned when many
        axis=alt.Axis(labelAngle=-45 if many else 0, labelOverlap=False, labelLimit=120),
    )
    base = alt.Chart()
    whisker = base.mark_rule(color="#555555").encode(
        x=x, y=alt.Y("min:Q", title=None, axis=alt.Axis(format=".4~g")), y2="max:Q"
    )
    box = base.mark_bar(size=22, color="#c6dbef", stroke="#3b6ea5").encode(
        x=x,
        y="q1:Q",
        y2="q3:Q",
        tooltip=[
            "layer:N",
            "n:Q",
            alt.Tooltip("min:Q", format=".3f"),
            alt.Tooltip("q1:Q", format=".3f"),
            alt.Tooltip("median:Q", format=".3f"),
            alt.Tooltip("q3:Q", format=".3f"),
            alt.Tooltip("max:Q", format=".3f"),
            alt.Tooltip("mean:Q", format=".3f"),
            alt.Tooltip("se:Q", format=".3f"),
        ],
    )
    median = base.mark_tick(color="#d62728", size=22, thickness=2).encode(x=x, y="median:Q")
    mean_err = base.mark_rule(color="#2ca02c", strokeDash=[3, 2]).encode(
        x=x, y="mean_low:Q", y2="mean_high:Q"
    )
    mean = base.mark_point(color="#2ca02c", filled=True, size=30).encode(x=x, y="mean:Q")
    return (
        alt.layer(whisker, box, median, mean_err, mean, data=frame)
        .properties(width=210, height=150)
        .facet(
            facet=alt.Facet(
                "measure_label:N",
                title=None,
                sort=list(dict.fromkeys(frame["measure_label"])),
                header=alt.Header(labelFontSize=12),
            ),
            columns=columns,
        )
        .resolve_scale(y="independent")
        .resolve_axis(x="independent")
    )


def detector_count_frame(counts: pd.DataFrame, criteria: Sequence[tuple[str, str]]) -> pd.DataFrame:
    """Long form of `layer_detector_counts`: one row per layer and criterion."""
    rows = []
    for record in counts.to_dict("records"):
        for key, label in criteria:
            n_units = int(record["n_units"])
            n = int(record[key])
            rows.append(
                {
                    "layer": record["layer"],
                    "layer_position": record["layer_position"],
                    "criterion": label,
                    "n": n,
                    "share": n / n_units if n_units else 0.0,
                    "n_units": n_units,
                }
            )
    return pd.DataFrame(
        rows, columns=["layer", "layer_position", "criterion", "n", "share", "n_units"]
    )


def detector_count_chart(
    frame: pd.DataFrame,
    layer_order: Sequence[str],
    *,
    shares: bool = False,
    height: int = 300,
    title: str | None = None,
) -> alt.Chart:
    """How many "object detectors" each criterion finds per layer: the measures disagree.
    `shares`: the share of the layer's units instead of the count (layers differ in size)."""
    criteria = list(dict.fromkeys(frame["criterion"]))
    y = (
        alt.Y("share:Q", title="share of the layer's units", axis=alt.Axis(format="%"))
        if shares
        else alt.Y("n:Q", title="units called detectors", axis=alt.Axis(format="d"))
    )
    many = len(layer_order) > 6
    return (
        alt.Chart(frame, title=title if title is not None else alt.Undefined)
        .mark_bar()
        .encode(
            x=alt.X(
                "layer:N",
                sort=list(layer_order),
                title=None,
                axis=alt.Axis(labelAngle=-45 if many else 0, labelOverlap=False, labelLimit=120),
            ),
            xOffset=alt.XOffset("criterion:N", sort=criteria),
            y=y,
            color=alt.Color(
                "criterion:N",
                sort=criteria,
                legend=alt.Legend(title=None, orient="right", labelLimit=0),
            ),
            tooltip=[
                "layer:N",
                "criterion:N",
                "n:Q",
                alt.Tooltip("share:Q", format=".1%"),
                "n_units:Q",
            ],
        )
        .properties(height=height)
    )


# -------------------------------------------------------------------------------- Table 3


def correlation_matrix(pairs: pd.DataFrame, method: str) -> pd.DataFrame:
    """Both halves and the diagonal of a correlation matrix from the view's long rows
    (measure_a < measure_b): columns a, b, a_label, b_label, r, n."""
    if method not in ("pearson", "spearman"):
        raise ValueError(f"method must be pearson or spearman, not {method!r}")
    rows: list[dict[str, object]] = []
    measures: dict[str, None] = {}
    for record in pairs.to_dict("records"):
        a, b, r, n = record["measure_a"], record["measure_b"], record[method], record["n"]
        r = None if r is None or (isinstance(r, float) and np.isnan(r)) else float(r)
        measures.setdefault(a)
        measures.setdefault(b)
        rows.append({"a": a, "b": b, "r": r, "n": n})
        rows.append({"a": b, "b": a, "r": r, "n": n})
    for m in measures:
        rows.append({"a": m, "b": m, "r": 1.0, "n": None})
    frame = pd.DataFrame(rows, columns=["a", "b", "r", "n"])
    frame["a_label"] = [measure_label(m) for m in frame["a"]]
    frame["b_label"] = [measure_label(m) for m in frame["b"]]
    frame["r"] = pd.to_numeric(frame["r"], errors="coerce").astype("float64")
    return frame


def correlation_heatmap(matrix: pd.DataFrame, order: Sequence[str] = ()) -> alt.LayerChart:
    """Table 3 as a heatmap: red positive, blue negative, the value written in each cell."""
    labels = [measure_label(m) for m in order] if order else sorted(set(matrix["a_label"]))
    present = [label for label in labels if label in set(matrix["a_label"])]
    base = alt.Chart(matrix).encode(
        x=alt.X(
            "a_label:N",
            sort=present,
            title=None,
            axis=alt.Axis(labelAngle=-45, labelLimit=220, labelOverlap=False),
        ),
        y=alt.Y("b_label:N", sort=present, title=None, axis=alt.Axis(labelLimit=220)),
    )
    cells = base.mark_rect().encode(
        color=alt.Color(
            "r:Q", scale=alt.Scale(domain=[-1, 1], scheme="redblue", reverse=True), title="r"
        ),
        tooltip=["a_label:N", "b_label:N", alt.Tooltip("r:Q", format=".3f"), "n:Q"],
    )
    text = (
        base.transform_filter("isValid(datum.r)")
        .mark_text(fontSize=10)
        .encode(
            text=alt.Text("r:Q", format=".2f"),
            color=alt.condition("abs(datum.r) > 0.6", alt.value("white"), alt.value("black")),
        )
    )
    size = max(260, 42 * len(present))
    return alt.layer(cells, text).properties(width=size, height=size)


def scatter_chart(
    frame: pd.DataFrame,
    x: str,
    y: str,
    *,
    colour: str = "layer",
    selection_name: str = "unit",
    extra_tooltip: Mapping[str, str] | None = None,
) -> alt.Chart:
    """Any two measures against each other, one point per unit; clicking a point selects
    it (Streamlit returns its unit_id and run_id through `on_select`)."""
    pick = alt.selection_point(name=selection_name, fields=["unit_id", "run_id"], on="click")
    tooltip = [
        "model:N",
        "layer:N",
        "unit:Q",
        alt.Tooltip(f"{x}:Q", title=measure_label(x), format=".3f"),
        alt.Tooltip(f"{y}:Q", title=measure_label(y), format=".3f"),
    ]
    for column, title in (extra_tooltip or {}).items():
        tooltip.append(alt.Tooltip(f"{column}:N", title=title))
    return (
        alt.Chart(frame)
        .mark_circle(size=40)
        .encode(
            x=alt.X(f"{x}:Q", title=measure_label(x), axis=alt.Axis(format=".4~g")),
            y=alt.Y(f"{y}:Q", title=measure_label(y), axis=alt.Axis(format=".4~g")),
            color=alt.Color(f"{colour}:N", title=colour),
            opacity=alt.condition(pick, alt.value(0.85), alt.value(0.3)),
            tooltip=tooltip,
        )
        .add_params(pick)
        .properties(height=420)
    )
