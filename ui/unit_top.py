"""The Unit page's first screen: the unit's story in one line, its top images (with heat
maps for a conv unit) and its AM panel, which can be enlarged.

Reads are cached here like the pages' own (`ui.queries`): the summary's facts
(`catalogue.query.glance`), thumbnails encoded once (`ui.thumbnails`), and a conv unit's
spatial maps on its top images (`catalogue.pipeline.unit_maps`: the store's, or a forward
pass of the run's own network, loaded once per extraction run).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from catalogue.errors import UnitcatError
from catalogue.measures import MEASURES_BY_NAME, TOP_K_PRECISION, TOP_N_CLASSES
from catalogue.query import glance as glance_query
from catalogue.query.glance import UnitGlance
from ui import queries, tables, thumbnails, unit_summary
from ui import urlstate as url
from ui.connection import engine_for

#: The cut-offs of the top images the measures count: top-k precision, and the classes
#: in the top n (with Rafegas's index).
TOP_CUTS = (TOP_K_PRECISION, TOP_N_CLASSES)
HEAT_PARAM = "heat"
#: How much larger than its file the enlarged AM panel is drawn (at least), in whole pixels.
ZOOM_WIDTH_PX = 1200


# ------------------------------------------------------------------------ cached reads


@st.cache_data(ttl=queries.TTL_S, show_spinner=False, max_entries=64)
def unit_glance(key: str, unit_id: int, run_id: int | None) -> UnitGlance:
    return glance_query.unit_glance(engine_for(key), unit_id, run_id)


@st.cache_data(ttl=queries.TTL_S, show_spinner=False, max_entries=32)
def _thumbnails(key: str, unit_id: int, run_id: int, _images: list[Any]) -> list[bytes | None]:
    """The unit's top images (`_images`, in rank order) encoded once per unit and run."""
    return [thumbnails.encode(image) for image in _images]


@st.cache_resource(show_spinner="Loading the run's network …", max_entries=2)
def _network(key: str, extract_run_id: int) -> Any:
    from catalogue.pipeline.unit_maps import run_network

    return run_network(engine_for(key), extract_run_id)


@dataclass(frozen=True)
class HeatImages:
    """Heat-map thumbnails of a unit's top images (rank order) and how they were made."""

    images: list[bytes | None]
    source: str
    vmax: float
    map_shape: tuple[int, int]


@st.cache_data(ttl=queries.TTL_S, show_spinner="Computing heat maps …", max_entries=16)
def _heat_images(key: str, unit_id: int, run_id: int, _originals: list[Any]) -> HeatImages:
    from catalogue.pipeline.unit_maps import unit_top_maps

    maps = unit_top_maps(
        engine_for(key), unit_id, run_id, network=lambda extract: _network(key, extract)
    )
    vmax = float(maps.maps.max()) if maps.maps.size else 0.0
    bases = list(maps.inputs) if maps.inputs is not None else list(_originals)
    images = [
        thumbnails.encode(thumbnails.heat_overlay(base, heat, vmax))
        for base, heat in zip(bases, maps.maps, strict=False)
    ]
    shape = tuple(int(n) for n in maps.maps.shape[1:]) if maps.maps.ndim == 3 else (0, 0)
    return HeatImages(images, maps.source, vmax, shape)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- summary


def summary(key: str, unit_id: int, run_id: int | None) -> None:
    """The one-line story of the unit, from the catalogue's own numbers."""
    try:
        facts = unit_glance(key, int(unit_id), run_id)
    except UnitcatError as exc:
        st.caption(f"No summary: {exc}")
        return
    st.markdown(unit_summary.summary_markdown(facts))


# ------------------------------------------------------------------------- top images


def _heat_switch(record: dict[str, Any]) -> bool:
    """The heat-map toggle of a conv unit (?heat=1 in the URL)."""
    if record.get("layer_kind") != "conv":
        return False
    on = st.toggle(
        "Heat maps",
        value=url.initial(HEAT_PARAM, False, parse=url.as_bool, key="unit_heat"),
        key="unit_heat",
        help="Where in each image the unit fires: its spatial map over the image as the "
        "network saw it (the store's maps, or the run's network run again on these images).",
    )
    url.keep(HEAT_PARAM, bool(on), default=False, fmt=lambda v: "1")
    return bool(on)


def _shown_images(
    key: str, record: dict[str, Any], run_id: int, frame: pd.DataFrame, heat: bool
) -> list[bytes | None]:
    unit_id = int(record["unit_id"])
    plain = _thumbnails(key, unit_id, run_id, list(frame["image"]))
    if not heat:
        return plain
    try:
        made = _heat_images(key, unit_id, run_id, list(frame["image"]))
    except (UnitcatError, OSError) as exc:
        st.info(f"No heat maps: {exc}")
        return plain
    where = "kept in the store" if made.source == "store" else "computed by the run's network"
    h, w = made.map_shape
    st.caption(
        f"Heat: the unit's {h} × {w} spatial map ({where}), upsampled over the image the "
        f"network saw; yellow at {made.vmax:.4g}, the highest value over these images, none "
        "at 0 or below."
    )
    return [h or p for h, p in zip(made.images, plain, strict=False)]


def top_images(key: str, frame: pd.DataFrame, record: dict[str, Any], run_id: int) -> None:
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
    heat = _heat_switch(record)
    encoded = _shown_images(key, record, run_id, frame, heat)
    frame = frame.assign(thumbnail=encoded)
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
            f"{part['activation'].iloc[-1]:.4g}; most frequent class "
            f"{unit_summary.escape(top.index[0])} ({int(top.iloc[0])} of {len(part)})"
        )
        _thumbnail_grid(part)
    _tie_note(frame, record)
    with st.expander("The top images as a table"):
        listed = frame[["rank", "image_key", "class_name", "activation", "image_index"]]
        st.dataframe(
            tables.readable(listed, digits=4),
            hide_index=True,
            column_config=tables.column_config(listed, pinned=("rank",)),
            key="top_images",
        )


def _thumbnail_grid(part: pd.DataFrame) -> None:
    readable = part[part["thumbnail"].notna()]
    if readable.empty:
        st.caption("The image files are not readable here; their keys are listed below.")
        return
    st.image(
        readable["thumbnail"].tolist(),
        caption=[
            f"#{r} {c} ({a:.3g})"
            for r, c, a in zip(
                readable["rank"], readable["class_name"], readable["activation"], strict=True
            )
        ],
        width=thumbnails.THUMB_PX,
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


# ---------------------------------------------------------------------------- AM panel


@st.cache_data(ttl=queries.TTL_S, show_spinner=False, max_entries=16)
def _zoomed(path: str, width: int = ZOOM_WIDTH_PX) -> tuple[bytes, bytes, tuple[int, int]] | None:
    """The panel's file bytes, the panel enlarged by whole pixels to at least `width`, and
    its size in pixels."""
    from PIL import Image

    try:
        with open(path, "rb") as handle:
            raw = handle.read()
        with Image.open(path) as panel:
            picture = panel.convert("RGB")
    except OSError:
        return None
    factor = max(1, -(-width // max(picture.width, 1)))
    big = picture.resize(
        (picture.width * factor, picture.height * factor), Image.Resampling.NEAREST
    )
    return raw, thumbnails.encode(np.asarray(big), size=max(big.size)) or b"", picture.size


@st.dialog("AM panel", width="large")
def _enlarge(path: str, caption: str) -> None:
    zoomed = _zoomed(path)
    if zoomed is None:
        st.warning(f"The panel file {url.code(path)} cannot be read here.")
        return
    raw, big, (width, height) = zoomed
    st.image(big, caption=f"{caption}, {width} × {height} px, enlarged by whole pixels")
    st.download_button(
        "Full resolution (PNG)",
        data=raw,
        file_name=path.rsplit("/", 1)[-1],
        mime="image/png",
        icon=":material/download:",
        on_click="ignore",
        key="am_full_resolution",
    )


def am_panel(frame: pd.DataFrame) -> None:
    """The newest AM panel, as wide as its column, with a button that enlarges it."""
    if frame.empty:
        st.info("No activation-maximisation panel for this unit (`unitcat ingest am`).")
        return
    panel = frame.iloc[0]
    caption = f"{panel['method']} (run {panel['run_id']})"
    if panel["file"]:
        st.image(panel["file"], caption=caption, width="stretch")
        if st.button("Enlarge", key="am_enlarge", icon=":material/zoom_in:"):
            _enlarge(str(panel["file"]), caption)
    else:
        st.warning(f"The panel file {url.code(panel['path'])} cannot be read here.")
    activations = panel["activations"] or []
    if activations:
        best = max(activations)
        ref = panel["dataset_max"]
        ratio = f" = {best / ref:.2f} × the dataset maximum ({ref:.3g})" if ref else ""
        st.caption(f"Activation on the panel images: up to {best:.3g}{ratio}.")
