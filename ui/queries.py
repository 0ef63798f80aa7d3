"""The pages' reads of the catalogue, cached: one function per query of `catalogue.query`.

Results are `st.cache_data` keyed by the database (`ui.connection.engine_key`, the
first argument of every function) and the query's arguments, kept for `TTL_S` seconds
or until "Refresh data" is pressed. A page calls these, never `catalogue.query` with an
engine of its own, so that moving between pages does not repeat a query.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from catalogue.query import catalog as catalog_query
from catalogue.query import files as file_query
from catalogue.query import layers as layer_query
from catalogue.query import overview as overview_query
from catalogue.query import ratings as rating_query
from catalogue.query import related as related_query
from catalogue.query import runs as run_query
from catalogue.query import search as search_query
from catalogue.query import units as unit_query
from catalogue.query.files import UnitActivations
from catalogue.query.overview import Overview
from catalogue.query.search import FilterOptions, SearchResult, UnitFilter
from ui.connection import engine_for, reader_engine_for

TTL_S = 60


def refresh_button() -> None:
    if st.sidebar.button("Refresh data", help=f"Query results are kept for {TTL_S} s."):
        st.cache_data.clear()
        st.rerun()


@st.cache_data(ttl=TTL_S, show_spinner=False)
def overview(key: str) -> Overview:
    return overview_query.overview(engine_for(key))


@st.cache_data(ttl=TTL_S, show_spinner=False)
def filter_options(key: str) -> FilterOptions:
    return search_query.filter_options(engine_for(key))


@st.cache_data(ttl=TTL_S, show_spinner=False)
def measure_ranges(key: str) -> dict[str, tuple[float, float]]:
    return search_query.measure_ranges(engine_for(key))


@st.cache_data(ttl=TTL_S, show_spinner="Searching …")
def search_units(
    key: str, flt: UnitFilter, order_by: str, descending: bool, limit: int | None
) -> SearchResult:
    return search_query.search_units(
        engine_for(key), flt, order_by=order_by, descending=descending, limit=limit
    )


@st.cache_data(ttl=TTL_S, show_spinner=False)
def score_runs(key: str) -> pd.DataFrame:
    return run_query.score_runs(engine_for(key))


@st.cache_data(ttl=TTL_S, show_spinner=False)
def list_runs(key: str, kinds: tuple[str, ...], statuses: tuple[str, ...]) -> pd.DataFrame:
    return run_query.list_runs(engine_for(key), kinds, statuses)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def unit_record(key: str, unit_id: int, run_id: int | None) -> dict[str, Any]:
    return unit_query.unit_record(engine_for(key), unit_id, run_id)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def unit_runs(key: str, unit_id: int) -> pd.DataFrame:
    return unit_query.unit_runs(engine_for(key), unit_id)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def unit_details(key: str, unit_id: int, run_id: int | None) -> dict[str, Any]:
    """Everything the Unit page lists besides the measures, in one cached call."""
    eng = engine_for(key)
    out: dict[str, Any] = {
        "dissection": unit_query.unit_dissection(eng, unit_id),
        "am": unit_query.unit_am_panels(eng, unit_id),
        "ratings": unit_query.unit_ratings(eng, unit_id),
        "rating_summary": unit_query.unit_rating_summary(eng, unit_id),
    }
    if run_id is not None:
        out["class_stats"] = unit_query.unit_class_stats(eng, unit_id, run_id)
        out["group_metrics"] = unit_query.unit_group_metrics(eng, unit_id, run_id)
        out["top_images"] = unit_query.unit_top_images(eng, unit_id, run_id)
    return out


@st.cache_data(ttl=TTL_S, show_spinner="Reading activations …", max_entries=8)
def unit_activations(key: str, unit_id: int, run_id: int) -> UnitActivations:
    return file_query.unit_activations(engine_for(key), unit_id, run_id)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def find_unit(key: str, model: str, layer: str, unit: int) -> int:
    return unit_query.find_unit(engine_for(key), model, layer, unit)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def unit_address(key: str, unit_id: int) -> related_query.UnitAddress | None:
    return related_query.unit_address(engine_for(key), unit_id)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def layer_neighbours(
    key: str, unit_id: int
) -> tuple[related_query.UnitAddress | None, related_query.UnitAddress | None]:
    return related_query.layer_neighbours(engine_for(key), unit_id)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def units_same_class(key: str, unit_id: int, run_id: int, class_column: str) -> pd.DataFrame:
    return related_query.units_same_class(engine_for(key), unit_id, run_id, class_column)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def units_same_concept(key: str, unit_id: int) -> pd.DataFrame:
    return related_query.units_same_concept(engine_for(key), unit_id)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def rated_layers(key: str) -> set[tuple[str, str]]:
    """(model, layer) of every layer with at least one rating."""
    return {(row.model, row.layer) for row in rating_query.table1(engine_for(key))}


@st.cache_data(ttl=TTL_S, show_spinner=False)
def relation_columns(key: str, reader_url: str | None = None) -> pd.DataFrame:
    """The relations and columns user SQL can read: listed as the reader, whose
    information_schema shows only what it may SELECT."""
    return catalog_query.relation_columns(reader_engine_for(key, reader_url))


@st.cache_data(ttl=TTL_S, show_spinner=False)
def layer_detector_counts(
    key: str, run_id: int, mi_cutoff: float, include_constant: bool = False
) -> pd.DataFrame:
    return layer_query.layer_detector_counts(
        engine_for(key), run_id, mi_cutoff=mi_cutoff, include_constant=include_constant
    )


@st.cache_data(ttl=TTL_S, show_spinner=False)
def layer_summary(
    key: str, run_id: int, measures: tuple[str, ...], include_constant: bool = False
) -> pd.DataFrame:
    return layer_query.layer_summary(
        engine_for(key), run_id, measures, include_constant=include_constant
    )


@st.cache_data(ttl=TTL_S, show_spinner=False)
def dissection_summary(key: str) -> pd.DataFrame:
    return layer_query.dissection_summary(engine_for(key))


@st.cache_data(ttl=TTL_S, show_spinner=False)
def measure_correlations(
    key: str, run_id: int, layer: str, include_constant: bool = False
) -> pd.DataFrame:
    return layer_query.measure_correlations(
        engine_for(key), run_id, layer, include_constant=include_constant
    )


@st.cache_data(ttl=TTL_S, show_spinner=False)
def measure_values(
    key: str,
    run_id: int,
    measures: tuple[str, ...],
    layers: tuple[str, ...],
    include_constant: bool = False,
) -> pd.DataFrame:
    return layer_query.measure_values(
        engine_for(key), run_id, measures, layers=layers, include_constant=include_constant
    )
