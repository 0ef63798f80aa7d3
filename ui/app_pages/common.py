"""What every page shares: the engine, cached queries, and the friendly states.

The engine is a `st.cache_resource` keyed by the configured database (so a
test or a user switching DATABASE_URL gets a new one); query results are
`st.cache_data` keyed by that same key and the query's arguments, kept for
`TTL_S` seconds or until "Refresh data" is pressed.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from catalogue.config import get_settings
from catalogue.db.engine import database_url, get_engine, get_reader_engine, redacted
from catalogue.db.migrate import ensure_current
from catalogue.errors import SchemaOutOfDate, UnitcatError
from catalogue.faults import explain, write_log
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
from ui import urlstate as url

TTL_S = 60
EMBEDDED = "embedded"

SEARCH_PAGE = "app_pages/search.py"
UNIT_PAGE = "app_pages/unit.py"
LAYERS_PAGE = "app_pages/layers.py"
MEASURES_PAGE = "app_pages/measures.py"
RUNS_PAGE = "app_pages/runs.py"
SQL_PAGE = "app_pages/sql.py"
COMPARE_PAGE = "app_pages/compare.py"
RATE_PAGE = "app_pages/rate.py"

EMPTY_MESSAGE = (
    "Nothing here yet: the catalogue has no scored units. Run `unitcat ingest …` "
    "(extract activations, then score them) and refresh this page."
)
DATABASE_FIX = (
    "Fix: start the embedded server with `unitcat db start`, or set DATABASE_URL to a "
    "running PostgreSQL server (postgresql+psycopg://user@host/db), then reload this page."
)


def engine_key() -> str:
    """Which database: DATABASE_URL, or the embedded server's marker."""
    return get_settings().database_url or EMBEDDED


@st.cache_resource(show_spinner="Connecting to the catalogue …")
def _engine_for(key: str) -> Engine:
    url = database_url() if key == EMBEDDED else key
    engine = get_engine(url)
    ensure_current(engine, upgrade_empty=key == EMBEDDED)  # a read never creates tables
    return engine


def engine() -> Engine:
    return _engine_for(engine_key())


@st.cache_resource(show_spinner="Connecting to the catalogue …")
def _reader_engine_for(key: str, reader_url: str | None) -> Engine:
    _engine_for(key)  # the catalogue exists and is current
    return get_reader_engine()


def reader_engine() -> Engine:
    """The SELECT-only reader's engine, for user SQL (the SQL page)."""
    return _reader_engine_for(engine_key(), get_settings().reader_url)


def show_database_error(exc: BaseException) -> None:
    """One error box saying what is wrong and how to fix it."""
    if isinstance(exc, OperationalError):
        first = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc).splitlines()[0]
        message = f"The catalogue database stopped answering ({first})."
    else:
        message = str(exc)
    fix = (
        "Fix: run `unitcat db upgrade`, then reload this page."
        if isinstance(exc, SchemaOutOfDate)
        else DATABASE_FIX
    )
    st.error(f"**Cannot open the catalogue.** {message}\n\n{fix}", icon=":material/error:")


def show_fault(exc: BaseException) -> None:
    """One error box for an unexpected failure: its one line and the log file with the
    details (never the traceback or the SQL on the page)."""
    fault = explain(exc)
    path = write_log(exc, argv=["unitcat ui"])
    where = f"\n\nDetails: `{path}`" if path is not None else ""
    st.error(f"**Something went wrong.** {fault.message}{where}", icon=":material/error:")


def connect_or_stop() -> Engine:
    """The engine, or an error box and a stopped script when the database is unusable."""
    try:
        return engine()
    except (UnitcatError, OperationalError) as exc:
        show_database_error(exc)
        st.stop()
        raise  # unreachable: st.stop raises


def database_caption() -> str:
    key = engine_key()
    return "embedded PostgreSQL" if key == EMBEDDED else redacted(key)


def refresh_button() -> None:
    if st.sidebar.button("Refresh data", help=f"Query results are kept for {TTL_S} s."):
        st.cache_data.clear()
        st.rerun()


def stop_if_empty(ov: Overview) -> None:
    """Show the friendly empty-catalogue message and stop the page."""
    if ov.is_empty:
        st.info(EMPTY_MESSAGE, icon=":material/inventory_2:")
        st.stop()


def unit_params(
    model: str,
    layer: str,
    unit: int,
    run_id: int | None = None,
    *,
    highlight: str | None = None,
) -> dict[str, str]:
    """The query parameters of a unit's permalink (/unit?model=…&layer=…&unit=…&run_id=…),
    with `highlight`: the measure or preset the user came from (the Unit page highlights
    that measure's class in its jitter plot)."""
    params = {"model": str(model), "layer": str(layer), "unit": str(int(unit))}
    if run_id is not None and not pd.isna(run_id):
        params["run_id"] = str(int(run_id))
    if highlight:
        params["highlight"] = str(highlight)
    return params


def open_unit(
    unit_id: int,
    run_id: int | None,
    *,
    model: str | None = None,
    layer: str | None = None,
    unit: int | None = None,
    highlight: str | None = None,
) -> None:
    """Go to the Unit page of a unit (and scoring run) by its permalink; `highlight` names
    the measure or preset the user came from (its class is highlighted there)."""
    if model is None or layer is None or unit is None:
        address = unit_address(engine_key(), int(unit_id))
        if address is None:
            params = {"unit_id": str(int(unit_id))}
            if highlight:
                params["highlight"] = str(highlight)
            st.switch_page(UNIT_PAGE, query_params=params)
        model, layer, unit = address.model, address.layer, address.unit
    st.switch_page(
        UNIT_PAGE, query_params=unit_params(model, layer, int(unit), run_id, highlight=highlight)
    )


def unit_url(
    model: str,
    layer: str,
    unit: int,
    run_id: int | None = None,
    *,
    highlight: str | None = None,
    absolute: bool = False,
) -> str:
    """URL of a unit's page (for link columns); relative to the app unless `absolute`."""
    from urllib.parse import urlencode

    params = unit_params(model, layer, unit, run_id, highlight=highlight)
    path = f"unit?{urlencode(params)}"
    return f"/{path}" if absolute else path


def unit_ref(model: str, layer: str, unit: int, *, with_model: bool) -> str:
    """A unit as the Compare page's `unit` parameter: LAYER.UNIT, or MODEL:LAYER.UNIT."""
    return f"{model}:{layer}.{int(unit)}" if with_model else f"{layer}.{int(unit)}"


def parse_unit_ref(
    text: str, models: list[str], layers: dict[str, list[str]], default_model: str | None
) -> tuple[str, str, int]:
    """(model, layer, unit) of LAYER.UNIT or MODEL:LAYER.UNIT (layer names may hold dots,
    model names colons: the longest known model name wins); ValueError if not understood."""
    model = default_model
    rest = text.strip()
    for name in sorted(models, key=len, reverse=True):
        if rest.startswith(f"{name}:"):
            model, rest = name, rest[len(name) + 1 :]
            break
    if model is None:
        raise ValueError(f"{text!r} names no model: write MODEL:LAYER.UNIT or add model=…")
    layer, _, index = rest.rpartition(".")
    if not layer or not index.isdigit():
        raise ValueError(f"{text!r} is not LAYER.UNIT (e.g. fc6.3)")
    if layer not in layers.get(model, []):
        raise ValueError(f"{model} has no layer {layer!r}")
    return model, layer, int(index)


def compare_params(records: list[dict[str, Any]]) -> dict[str, str | list[str]]:
    """The Compare page's query parameters for units given as rows with model, layer, unit
    (and run_id): ?model=…&unit=fc6.3&unit=conv5.1&run_id=…"""
    models = list(dict.fromkeys(str(r["model"]) for r in records))
    one_model = len(models) == 1
    params: dict[str, str | list[str]] = {}
    if one_model:
        params["model"] = models[0]
    params["unit"] = [
        unit_ref(r["model"], r["layer"], r["unit"], with_model=not one_model) for r in records
    ]
    run_ids = {
        int(r["run_id"])
        for r in records
        if r.get("run_id") is not None and not pd.isna(r["run_id"])
    }
    if len(run_ids) == 1:
        params["run_id"] = str(run_ids.pop())
    return params


#: The URL parameter of the constant-units switch (?include_constant=true), which every
#: page with the switch declares to `url.check_known`.
INCLUDE_CONSTANT_PARAM = "include_constant"
#: Session state behind the constant-units switch (kept while the user moves between pages).
_INCLUDE_CONSTANT = "_include_constant"


def _fmt_bool(value: bool) -> str:
    return "true" if value else "false"


def include_constant_switch() -> bool:
    """The one switch, in the sidebar of every page that counts or plots units, that puts
    constant (dead) units back into presets, searches, counts, summaries and plots. Its
    state lives in the URL (?include_constant=true; off is the default and left out), and
    is carried to the next page the user opens in this session."""
    remembered = bool(st.session_state.get(_INCLUDE_CONSTANT, False))
    chosen = st.sidebar.toggle(
        "Include constant units",
        value=url.initial(
            INCLUDE_CONSTANT_PARAM, remembered, parse=url.as_bool, key="include_constant"
        ),
        key="include_constant",
        help="Units whose every scored activation is equal (dead units). Their measures "
        "describe the class sizes, not the unit, so they are left out by default.",
    )
    url.keep(INCLUDE_CONSTANT_PARAM, bool(chosen), default=False, fmt=_fmt_bool)
    st.session_state[_INCLUDE_CONSTANT] = bool(chosen)
    return bool(chosen)


def constant_caption(n_constant: int, included: bool) -> str | None:
    """One line on how many constant units the page left out (or kept)."""
    if not n_constant:
        return None
    units = f"{n_constant:,} constant unit{'s' if n_constant != 1 else ''}"
    if included:
        return f"{units} included (switch *Include constant units* off to leave them out)."
    return f"{units} left out (every activation equal); switch *Include constant units* on to show them."


def next_widget_key(name: str) -> str:
    """A fresh key for a selection widget after its selection was acted on, so that
    coming back to the page does not act on the old selection again."""
    counter = f"_{name}_generation"
    return f"{name}_{st.session_state.get(counter, 0)}"


def consume_widget_key(name: str) -> None:
    counter = f"_{name}_generation"
    st.session_state[counter] = st.session_state.get(counter, 0) + 1


def json_text(value: Any) -> str:
    import json

    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    return json.dumps(value, sort_keys=True, default=str)


# ---------------------------------------------------------------------- cached queries
# One function per query: st.cache_data keys on the function and its arguments.


@st.cache_data(ttl=TTL_S, show_spinner=False)
def overview(key: str) -> Overview:
    return overview_query.overview(_engine_for(key))


@st.cache_data(ttl=TTL_S, show_spinner=False)
def filter_options(key: str) -> FilterOptions:
    return search_query.filter_options(_engine_for(key))


@st.cache_data(ttl=TTL_S, show_spinner=False)
def measure_ranges(key: str) -> dict[str, tuple[float, float]]:
    return search_query.measure_ranges(_engine_for(key))


@st.cache_data(ttl=TTL_S, show_spinner="Searching …")
def search_units(
    key: str, flt: UnitFilter, order_by: str, descending: bool, limit: int | None
) -> SearchResult:
    return search_query.search_units(
        _engine_for(key), flt, order_by=order_by, descending=descending, limit=limit
    )


@st.cache_data(ttl=TTL_S, show_spinner=False)
def score_runs(key: str) -> pd.DataFrame:
    return run_query.score_runs(_engine_for(key))


@st.cache_data(ttl=TTL_S, show_spinner=False)
def list_runs(key: str, kinds: tuple[str, ...], statuses: tuple[str, ...]) -> pd.DataFrame:
    return run_query.list_runs(_engine_for(key), kinds, statuses)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def unit_record(key: str, unit_id: int, run_id: int | None) -> dict[str, Any]:
    return unit_query.unit_record(_engine_for(key), unit_id, run_id)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def unit_runs(key: str, unit_id: int) -> pd.DataFrame:
    return unit_query.unit_runs(_engine_for(key), unit_id)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def unit_details(key: str, unit_id: int, run_id: int | None) -> dict[str, Any]:
    """Everything the Unit page lists besides the measures, in one cached call."""
    eng = _engine_for(key)
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
    return file_query.unit_activations(_engine_for(key), unit_id, run_id)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def find_unit(key: str, model: str, layer: str, unit: int) -> int:
    return unit_query.find_unit(_engine_for(key), model, layer, unit)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def unit_address(key: str, unit_id: int) -> related_query.UnitAddress | None:
    return related_query.unit_address(_engine_for(key), unit_id)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def layer_neighbours(
    key: str, unit_id: int
) -> tuple[related_query.UnitAddress | None, related_query.UnitAddress | None]:
    return related_query.layer_neighbours(_engine_for(key), unit_id)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def units_same_class(key: str, unit_id: int, run_id: int, class_column: str) -> pd.DataFrame:
    return related_query.units_same_class(_engine_for(key), unit_id, run_id, class_column)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def units_same_concept(key: str, unit_id: int) -> pd.DataFrame:
    return related_query.units_same_concept(_engine_for(key), unit_id)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def rated_layers(key: str) -> set[tuple[str, str]]:
    """(model, layer) of every layer with at least one rating."""
    return {(row.model, row.layer) for row in rating_query.table1(_engine_for(key))}


@st.cache_data(ttl=TTL_S, show_spinner=False)
def relation_columns(key: str, reader_url: str | None = None) -> pd.DataFrame:
    """The relations and columns user SQL can read: listed as the reader, whose
    information_schema shows only what it may SELECT."""
    return catalog_query.relation_columns(_reader_engine_for(key, reader_url))


@st.cache_data(ttl=TTL_S, show_spinner=False)
def layer_detector_counts(
    key: str, run_id: int, mi_cutoff: float, include_constant: bool = False
) -> pd.DataFrame:
    return layer_query.layer_detector_counts(
        _engine_for(key), run_id, mi_cutoff=mi_cutoff, include_constant=include_constant
    )


@st.cache_data(ttl=TTL_S, show_spinner=False)
def undefined_counts(key: str, run_id: int, include_constant: bool = False) -> pd.DataFrame:
    return layer_query.undefined_counts(_engine_for(key), run_id, include_constant=include_constant)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def layer_summary(
    key: str, run_id: int, measures: tuple[str, ...], include_constant: bool = False
) -> pd.DataFrame:
    return layer_query.layer_summary(
        _engine_for(key), run_id, measures, include_constant=include_constant
    )


@st.cache_data(ttl=TTL_S, show_spinner=False)
def dissection_summary(key: str) -> pd.DataFrame:
    return layer_query.dissection_summary(_engine_for(key))


@st.cache_data(ttl=TTL_S, show_spinner=False)
def measure_correlations(
    key: str, run_id: int, layer: str, include_constant: bool = False
) -> pd.DataFrame:
    return layer_query.measure_correlations(
        _engine_for(key), run_id, layer, include_constant=include_constant
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
        _engine_for(key), run_id, measures, layers=layers, include_constant=include_constant
    )


def score_run_picker(label: str = "Scoring run", key: str = "score_run") -> int | None:
    """A select box of the scoring runs with results (newest first, or ?run_id=…);
    None when there are none."""
    runs = score_runs(engine_key())
    if runs.empty:
        return None
    names = dict(zip(runs["id"].astype(int), runs["name"], strict=True))
    ids = list(names)
    wanted = url.initial("run_id", ids[0], parse=url.as_int, choices=ids)
    chosen = st.selectbox(
        label, ids, index=ids.index(wanted), format_func=names.__getitem__, key=key
    )
    st.query_params["run_id"] = str(chosen)  # the URL names the run shown
    return chosen


def require_score_run() -> tuple[str, int]:
    """The engine key and the chosen scoring run; stops the page with the
    "nothing here yet" message when the catalogue has no scores."""
    key = engine_key()
    stop_if_empty(overview(key))
    run_id = score_run_picker()
    if run_id is None:
        st.info(EMPTY_MESSAGE)
        st.stop()
    return key, run_id
