"""Layer grid: every unit of a layer as a tile (its top images or its AM panel), sorted by
any measure, a page at a time, each tile a link to the unit's page — OpenAI Microscope's
view of a layer, for the catalogue's units.

/layer?model=…&layer=…&run_id=…&sort=precision&desc=1&page=2&show=am
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from catalogue.measures import TOP_K_PRECISION
from catalogue.query.layer_grid import GRID_SORTABLE, PAGE_SIZE
from ui import faults, plots, queries, thumbnails, unit_summary
from ui import urlstate as url
from ui.connection import engine_key

TILES_PER_ROW = 6
TILE_IMAGES = 4
SHOW = {"images": "Top images", "am": "AM panels"}


@st.cache_data(ttl=queries.TTL_S, show_spinner=False, max_entries=2048)
def _tile(
    key: str, run_id: int | None, unit_id: int, what: str, _images: list[Any]
) -> bytes | None:
    """A tile's picture, encoded once: the unit's first top images, or its AM panel."""
    if what == "am":
        return thumbnails.encode(_images[0], size=4 * thumbnails.TILE_CELL_PX) if _images else None
    return thumbnails.mosaic(_images)


def _choose_layer(key: str) -> tuple[str, str]:
    options = queries.filter_options(key)
    models = options.models
    if not models:
        st.info("The catalogue holds no model yet (`unitcat ingest extract`).")
        st.stop()
    c1, c2 = st.columns(2)
    model = c1.selectbox(
        "Model",
        models,
        index=url.index_of(models, "model", models[0], key="grid_model"),
        key="grid_model",
    )
    url.keep("model", model)
    layers = options.layers.get(model, [])
    layer = c2.selectbox(
        "Layer",
        layers,
        index=url.index_of(layers, "layer", layers[0], key=f"grid_layer_{model}") if layers else 0,
        key=f"grid_layer_{model}",
    )
    url.keep("layer", layer)
    return model, layer


def _choose_run(key: str, model: str, layer: str) -> int | None:
    runs = queries.layer_runs(key, model, layer)
    if runs.empty:
        st.caption("This layer has not been scored: its units are listed by index.")
        return None
    names = dict(zip(runs["id"].astype(int), runs["name"], strict=True))
    ids = list(names)
    chosen = st.selectbox(
        "Scoring run",
        ids,
        index=url.index_of(ids, "run_id", ids[0], parse=url.as_int, key=f"grid_run_{layer}"),
        format_func=names.__getitem__,
        key=f"grid_run_{layer}",
    )
    url.keep("run_id", chosen)
    return int(chosen)


def _controls() -> tuple[str, bool, str]:
    c1, c2, c3 = st.columns([2, 1, 2])
    sort = c1.selectbox(
        "Sort by",
        GRID_SORTABLE,
        index=url.index_of(GRID_SORTABLE, "sort", "unit", key="grid_sort"),
        format_func=lambda m: "Unit index" if m == "unit" else plots.measure_label(m),
        key="grid_sort",
    )
    url.keep("sort", sort, default="unit")
    c2.write("")
    descending = c2.toggle(
        "Highest first",
        value=url.initial("desc", False, parse=url.as_bool, key="grid_desc"),
        key="grid_desc",
    )
    url.keep("desc", bool(descending), default=False, fmt=lambda v: "1")
    show = c3.radio(
        "Tiles show",
        list(SHOW),
        index=url.index_of(list(SHOW), "show", "images", key="grid_show"),
        format_func=SHOW.__getitem__,
        horizontal=True,
        key="grid_show",
    )
    url.keep("show", show, default="images")
    return sort, bool(descending), show


def _page_number(total: int) -> int:
    pages = max(1, -(-total // PAGE_SIZE))
    wanted = url.initial("page", 1, parse=url.as_int, key="grid_page")
    page = st.number_input(
        f"Page (of {pages:,})",
        min_value=1,
        max_value=pages,
        value=min(max(int(wanted), 1), pages),
        key="grid_page",
    )
    url.keep("page", int(page), default=1)
    return int(page)


def _value(row: pd.Series, name: str) -> str:
    value = row.get(name)
    if value is None or pd.isna(value):
        return "—"
    return f"{float(value):.3f}" if isinstance(value, float) else str(value)


def _caption(row: pd.Series, sort: str) -> str:
    if bool(row.get("constant")):
        return "constant"
    parts = []
    if row.get("precision_class") is not None and not pd.isna(row.get("precision")):
        parts.append(f"{row['precision']:.0%} {row['precision_class']}")
    if sort not in ("unit", "precision"):
        parts.append(f"{plots.measure_label(sort)} {_value(row, sort)}")
    return " · ".join(parts) or "not scored"


def _tiles(
    key: str, model: str, layer: str, run_id: int | None, page: Any, sort: str, show: str
) -> None:
    tops = dict(iter(page.top_images.groupby("unit_id", sort=False)))
    panels = {int(r.unit_id): r.file for r in page.panels.itertuples() if r.file}
    rows = list(page.units.itertuples(index=False))
    for start in range(0, len(rows), TILES_PER_ROW):
        columns = st.columns(TILES_PER_ROW)
        for column, row in zip(columns, rows[start : start + TILES_PER_ROW], strict=False):
            unit_id = int(row.unit_id)
            with column.container(border=True):
                panel = panels.get(unit_id) if show == "am" else None
                if panel is not None:
                    picture = _tile(key, run_id, unit_id, "am", [panel])
                else:
                    top = tops.get(unit_id)
                    images = [] if top is None else list(top["image"])
                    picture = _tile(key, run_id, unit_id, "images", images)
                if picture is not None:
                    st.image(picture, width="stretch")
                elif show == "am":
                    st.caption("no AM panel")
                else:
                    st.caption("no readable top images")
                st.page_link(
                    url.UNIT_PAGE,
                    label=f"{layer}.{int(row.unit)} ›",
                    query_params=url.unit_params(model, layer, int(row.unit), run_id),
                )
                st.caption(unit_summary.escape(_caption(pd.Series(row._asdict()), sort)))


st.title("Layer grid")
notes = st.container()
key = engine_key()
faults.stop_if_empty(queries.overview(key))
model, layer = _choose_layer(key)
run_id = _choose_run(key, model, layer)
sort, descending, show = _controls()
first = queries.layer_grid(key, model, layer, run_id, sort, descending, 0, PAGE_SIZE)
page_no = _page_number(first.total)
page = (
    first
    if page_no == 1
    else queries.layer_grid(
        key, model, layer, run_id, sort, descending, (page_no - 1) * PAGE_SIZE, PAGE_SIZE
    )
)
shown = len(page.units)
order = "highest" if descending else "lowest"
by = "unit index" if sort == "unit" else plots.measure_label(sort)
st.caption(
    f"Units {page.offset + 1:,}–{page.offset + shown:,} of {page.total:,}, by {by} "
    f"({order} first; units without a value last). Each tile: the unit's "
    + ("AM panel where it has one, else its " if show == "am" else "")
    + f"first {TILE_IMAGES} top images; the caption gives its top-{TOP_K_PRECISION} precision and class."
)
_tiles(key, model, layer, run_id, page, sort, show)
url.check_known(url.LAYER_GRID_PARAMS, where=notes)
