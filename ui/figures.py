"""Figures a reader can take away: every chart of the app downloads as SVG and PNG,
rendered offline from its Vega-Lite spec by vl-convert (no browser, no network).

`show(chart, name=…, key=…)` draws an Altair chart with st.altair_chart and puts two
small download buttons under it; the files are made only when a button is pressed.

A file holds every point the page draws. Altair refuses to serialise a chart of more
than 5,000 rows by default (its MaxRowsError; the app's jitter plots carry up to
25,000 points and the Measures scatter 20,000), and switching that check off is a
setting global to every session's thread: `export_spec` instead hands Altair each
chart's rows as inline values, which it passes through unchecked. The bound is ours,
`EXPORT_MAX_ROWS`, far above any chart of the app: past it the buttons say why they
are missing instead of failing silently.
"""

from __future__ import annotations

import re
from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

#: Width of an exported chart that has none (the app stretches charts to their column).
EXPORT_WIDTH = 720
PNG_SCALE = 2


#: The most rows of data (all of a chart's datasets together) a chart may carry into a file.
EXPORT_MAX_ROWS = 250_000

#: Attributes of an Altair chart that hold the charts it is made of.
_PARTS = ("layer", "hconcat", "vconcat", "concat", "spec")


def _charts(chart: Any) -> list[Any]:
    """The chart and every chart inside it (layers, concatenations, a facet's spec)."""
    found = [chart]
    for part in _PARTS:
        inner = getattr(chart, part, alt.Undefined)
        if inner is alt.Undefined or inner is None or isinstance(inner, dict):
            continue
        for child in inner if isinstance(inner, list) else [inner]:
            found += _charts(child)
    return found


def export_rows(chart: alt.TopLevelMixin) -> int:
    """How many rows of data the chart carries (every dataset of every part)."""
    return sum(
        len(data)
        for part in _charts(chart)
        if isinstance(data := getattr(part, "data", None), pd.DataFrame)
    )


def _inline(chart: alt.TopLevelMixin) -> alt.TopLevelMixin:
    """A copy of the chart whose DataFrames are inline values (which Altair does not count)."""
    copy = chart.copy(deep=True)
    for part in _charts(copy):
        data = getattr(part, "data", None)
        if isinstance(data, pd.DataFrame):
            part.data = alt.utils.data.to_values(data)
    return copy


def export_spec(chart: alt.TopLevelMixin) -> dict[str, Any]:
    """The chart's Vega-Lite spec with every row of its data inline and a fixed width for a
    file (a chart of more than `EXPORT_MAX_ROWS` rows raises ValueError)."""
    rows = export_rows(chart)
    if rows > EXPORT_MAX_ROWS:
        raise ValueError(f"the chart carries {rows:,} rows; a file holds {EXPORT_MAX_ROWS:,}.")
    spec = _inline(chart).to_dict()
    composite = any(k in spec for k in ("facet", "hconcat", "vconcat", "concat", "repeat"))
    if not composite and spec.get("width") in (None, "container"):
        spec["width"] = EXPORT_WIDTH
    return spec


def to_svg(chart: alt.TopLevelMixin) -> bytes:
    import vl_convert

    return vl_convert.vegalite_to_svg(export_spec(chart)).encode()


def to_png(chart: alt.TopLevelMixin, scale: float = PNG_SCALE) -> bytes:
    import vl_convert

    return bytes(vl_convert.vegalite_to_png(export_spec(chart), scale=scale))


def file_stem(name: str) -> str:
    """A file name from a figure's name (model names may hold ':' or '/')."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "figure"


def downloads(chart: alt.TopLevelMixin, *, name: str, key: str, where: Any = None) -> None:
    """SVG and PNG download buttons for `chart` (files made on demand)."""
    place = where if where is not None else st
    name = file_stem(name)
    rows = export_rows(chart)
    if rows > EXPORT_MAX_ROWS:
        place.caption(
            f"No SVG/PNG download: this figure draws {rows:,} rows of data, more than a file "
            f"holds here ({EXPORT_MAX_ROWS:,})."
        )
        return
    row = place.container(horizontal=True, gap="small")
    row.download_button(
        "SVG",
        data=lambda: to_svg(chart),
        file_name=f"{name}.svg",
        mime="image/svg+xml",
        on_click="ignore",
        icon=":material/download:",
        key=f"{key}_svg",
        help="Download this figure as SVG",
        type="tertiary",
    )
    row.download_button(
        "PNG",
        data=lambda: to_png(chart),
        file_name=f"{name}.png",
        mime="image/png",
        on_click="ignore",
        icon=":material/download:",
        key=f"{key}_png",
        help="Download this figure as PNG",
        type="tertiary",
    )


def show(chart: alt.TopLevelMixin, *, name: str, key: str, where: Any = None, **kwargs: Any) -> Any:
    """st.altair_chart(chart, key=key, **kwargs) with SVG and PNG downloads under it."""
    place = where if where is not None else st
    event = place.altair_chart(chart, key=key, **kwargs)
    downloads(chart, name=name, key=key, where=place)
    return event


def with_x_domain(chart: alt.TopLevelMixin, domain: tuple[float, float]) -> alt.TopLevelMixin:
    """The same chart with its x scale fixed to `domain` (several charts on one scale)."""
    copy = chart.copy(deep=True)
    layers = getattr(copy, "layer", None) or [copy]
    for layer in layers:
        encoding = getattr(layer, "encoding", alt.Undefined)
        x = getattr(encoding, "x", alt.Undefined) if encoding is not alt.Undefined else None
        if x is None or x is alt.Undefined or isinstance(x, dict | str):
            continue
        x.scale = alt.Scale(domain=list(domain), nice=False, zero=False)
    return copy
