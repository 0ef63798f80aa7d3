"""Figures a reader can take away: every chart of the app downloads as SVG and PNG,
rendered offline from its Vega-Lite spec by vl-convert (no browser, no network).

`show(chart, name=…, key=…)` draws an Altair chart with st.altair_chart and puts two
small download buttons under it; the files are made only when a button is pressed.
"""

from __future__ import annotations

import re
from typing import Any

import altair as alt
import streamlit as st

#: Width of an exported chart that has none (the app stretches charts to their column).
EXPORT_WIDTH = 720
PNG_SCALE = 2


def export_spec(chart: alt.TopLevelMixin) -> dict[str, Any]:
    """The chart's Vega-Lite spec with its data inline and a fixed width for a file."""
    spec = chart.to_dict()
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
