"""A page's state in its URL (st.query_params), so that a link reproduces the view.

Every filter, sort, highlighted class and layer choice of a page is a query
parameter. The pattern for one widget:

    value = url.initial("sort", default="precision", choices=SORTABLE)   # from the URL
    order_by = st.selectbox("Sort by", SORTABLE, index=SORTABLE.index(value), key="order_by")
    url.keep("sort", order_by, default="precision")                       # back to the URL

`initial` reads the parameter (falling back to the default, with a note on the
page when the value is not understood); the widget then keeps its own state
(its key) across reruns, and `keep` writes the current value back, leaving
default values out so that links stay short. `check_known` says on the page
which parameters of the URL the page does not understand.

Values that are lists use the parameter once per item (`?layer=conv5&layer=fc6`),
so class names with commas ("tench, Tinca tinca") survive.

Addresses live here too: the pages' paths, a unit's permalink
(/unit?model=…&layer=…&unit=…&run_id=…; the internal `?unit_id=…` still opens it,
and the Unit page then rewrites the address to the permalink), the Compare page's
list of units, and how the Unit page reads its address and carries the user's
choices to the previous or next unit.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Any, TypeVar
from urllib.parse import urlencode

import pandas as pd
import streamlit as st

from catalogue.errors import NotFound
from catalogue.measures import CRITERIA_BY_KEY, MEASURES_BY_NAME
from catalogue.query.related import UnitAddress
from catalogue.query.search import PRESETS
from ui import queries
from ui.connection import engine_key
from ui.display import HIGHLIGHT_PRESETS

T = TypeVar("T")

#: Parameters every page accepts: Streamlit's own (embedding) and the study-mode switch.
GLOBAL_PARAMS: frozenset[str] = frozenset({"embed", "embed_options", "study"})

_PROBLEMS = "_url_problems"


def _problem(message: str) -> None:
    problems: list[str] = st.session_state.setdefault(_PROBLEMS, [])
    if message not in problems:
        problems.append(message)


def _present(name: str) -> bool:
    return name in st.query_params


def as_int(text: str) -> int:
    return int(text)


def as_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def as_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(text)


def fmt_float(value: float) -> str:
    return format(float(value), ".10g")


def _describe(choices: Collection[Any] | None, limit: int = 8) -> str:
    if not choices:
        return ""
    shown = [str(c) for c in list(choices)[:limit]]
    more = " …" if len(choices) > limit else ""
    return f" (one of: {', '.join(shown)}{more})"


def initial(
    name: str,
    default: T,
    *,
    parse: Callable[[str], Any] = str,
    choices: Collection[Any] | None = None,
    key: str | None = None,
) -> T:
    """The value of parameter `name` in the URL, or `default` when it is absent or not
    understood (a note on the page says so). With `key`, a widget that already holds a
    value in this session keeps it (the URL only seeds a fresh widget)."""
    if key is not None and key in st.session_state:
        current = st.session_state[key]
        if choices is None or current is None or current in choices:
            return current  # type: ignore[no-any-return]
    if not _present(name):
        return default
    text = st.query_params.get(name, "")
    try:
        value = parse(text)
    except (TypeError, ValueError):
        _problem(f"`{name}={text}` is not understood{_describe(choices)}; showing the default.")
        return default
    if choices is not None and value not in choices:
        _problem(f"`{name}={text}` is not known here{_describe(choices)}; showing the default.")
        return default
    return value  # type: ignore[no-any-return]


def index_of(
    options: Sequence[Any],
    name: str,
    default: Any,
    *,
    key: str,
    parse: Callable[[str], Any] = str,
    choices: Collection[Any] | None = None,
) -> int:
    """The `index=` of a select box or radio with `key`: the URL's choice for a fresh
    widget, the default's otherwise (a widget with state keeps its own value; its key is
    its identity, so a changed index does not reset it)."""
    if key in st.session_state:
        return list(options).index(default)
    allowed = [o for o in options if o is not None] if choices is None else choices
    return list(options).index(initial(name, default, parse=parse, choices=allowed))


def initial_list(
    name: str,
    *,
    parse: Callable[[str], Any] = str,
    choices: Collection[Any] | None = None,
    key: str | None = None,
) -> list[Any]:
    """Every value of a repeated parameter that is understood (the others are noted); with
    `key`, a widget's own value in this session instead."""
    if key is not None and key in st.session_state:
        current = list(st.session_state[key] or [])
        return [v for v in current if choices is None or v in choices]
    out: list[Any] = []
    for text in st.query_params.get_all(name):
        try:
            value = parse(text)
        except (TypeError, ValueError):
            _problem(f"`{name}={text}` is not understood{_describe(choices)}; it is left out.")
            continue
        if choices is not None and value not in choices:
            _problem(f"`{name}={text}` is not known here{_describe(choices)}; it is left out.")
            continue
        if value not in out:
            out.append(value)
    return out


def keep(name: str, value: Any, *, default: Any = None, fmt: Callable[[Any], str] = str) -> None:
    """Write the widget's current value to the URL (leave it out when it is the default)."""
    if value is None or value == default:
        if _present(name):
            del st.query_params[name]
        return
    text = fmt(value)
    if st.query_params.get(name) != text or len(st.query_params.get_all(name)) != 1:
        st.query_params[name] = text


def keep_list(name: str, values: Iterable[Any], *, fmt: Callable[[Any], str] = str) -> None:
    texts = [fmt(v) for v in values]
    if not texts:
        if _present(name):
            del st.query_params[name]
        return
    if st.query_params.get_all(name) != texts:
        st.query_params[name] = texts


def check_known(known: Iterable[str], *, prefixes: Sequence[str] = (), where: Any = None) -> None:
    """A note on the page for every URL parameter the page does not understand, and for
    every value `initial` could not use. Call it once, after the page's widgets; `where`
    (a container made at the top of the page) puts the note above them."""
    allowed = set(known) | GLOBAL_PARAMS
    unknown = [
        name
        for name in st.query_params
        if name not in allowed and not any(name.startswith(p) for p in prefixes)
    ]
    problems: list[str] = st.session_state.pop(_PROBLEMS, [])
    if unknown:
        names = ", ".join(f"`{n}`" for n in unknown)
        understood = ", ".join(f"`{n}`" for n in sorted(allowed - GLOBAL_PARAMS))
        problems.insert(
            0,
            f"This page ignores the URL parameter{'s' if len(unknown) > 1 else ''} {names}; "
            f"it understands {understood}.",
        )
    if problems:
        (where if where is not None else st).warning(
            "  \n".join(problems), icon=":material/link_off:"
        )


def note(message: str) -> None:
    """A problem with the URL that the page found itself (shown by `check_known`)."""
    _problem(message)


# ------------------------------------------------------------------------- addresses

#: The pages, as `st.Page` and `st.switch_page` name them (relative to ui/app.py).
SEARCH_PAGE = "app_pages/search.py"
UNIT_PAGE = "app_pages/unit.py"
LAYERS_PAGE = "app_pages/layers.py"
MEASURES_PAGE = "app_pages/measures.py"
RUNS_PAGE = "app_pages/runs.py"
SQL_PAGE = "app_pages/sql.py"
COMPARE_PAGE = "app_pages/compare.py"
RATE_PAGE = "app_pages/rate.py"


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
        address = queries.unit_address(engine_key(), int(unit_id))
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


#: Query parameters the Unit page understands (`highlight`: the measure or preset the user
#: came from, whose class the jitter plot highlights first; `preset` says the same).
UNIT_PARAMS: frozenset[str] = frozenset(
    {"unit_id", "run_id", "model", "layer", "unit", "class", "same", "highlight", "preset"}
)
#: Choices that go along to the previous or next unit.
CARRIED: tuple[str, ...] = ("same", "highlight", "preset")


def _int(name: str) -> int | None:
    value = st.query_params.get(name)
    if value in (None, ""):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        note(f"`{name}={value}` is not a whole number; it is ignored.")
        return None


def requested_unit(key: str) -> tuple[int | None, int | None]:
    """(unit_id, run_id) the URL asks for: by internal id, or by model, layer and unit.
    A unit that does not exist is noted on the page and gives (None, run_id)."""
    run_id = _int("run_id")
    if "unit_id" in st.query_params:  # the internal id, when given, names the unit
        return _int("unit_id"), run_id
    layer, index = st.query_params.get("layer"), st.query_params.get("unit")
    if layer is not None or index is not None:
        options = queries.filter_options(key)
        model = st.query_params.get("model")
        if model is None and len(options.models) == 1:
            model = options.models[0]
        number = _int("unit")
        if model is None or layer is None or number is None:
            note(
                "A unit's address needs `model`, `layer` and `unit` "
                "(e.g. ?model=alexnet&layer=fc6&unit=1199)."
            )
            return None, run_id
        try:
            return queries.find_unit(key, model, layer, number), run_id
        except NotFound as exc:
            note(str(exc))
            return None, run_id
    return _int("unit_id"), run_id


def _highlight_choices() -> frozenset[str]:
    """What ?highlight= (or ?preset=) may name: a measure, a criterion or a Search preset."""
    return frozenset({*MEASURES_BY_NAME, *CRITERIA_BY_KEY, *PRESETS, *HIGHLIGHT_PRESETS})


def came_from() -> str | None:
    """The measure or preset the user came from (?highlight=…, else ?preset=…); a value
    that names neither is noted on the page and ignored (the MI class is highlighted)."""
    for name in ("highlight", "preset"):
        value = st.query_params.get(name)
        if not value:
            continue
        if value in _highlight_choices():
            return value
        note(
            f"`{name}={value}` names no measure or preset; highlighting the max-informedness class."
        )
    return None


def canonical_address(address: UnitAddress, run_id: int | None) -> None:
    """Rewrite the address bar to the unit's permalink (keeping the page's other choices)."""
    wanted = unit_params(address.model, address.layer, address.unit, run_id)
    for name in ("unit_id", "run_id"):
        if name in st.query_params and name not in wanted:
            del st.query_params[name]
    for name, value in wanted.items():
        if st.query_params.get(name) != value:
            st.query_params[name] = value


def go_to_unit(address: UnitAddress, run_id: int | None) -> None:
    """Open another unit: its permalink, keeping the choice of related-class measure and the
    measure the user came from (the highlighted class is the new unit's own class of it)."""
    params = unit_params(address.model, address.layer, address.unit, run_id)
    for name in CARRIED:
        if name in st.query_params:
            params[name] = st.query_params[name]
    st.query_params.from_dict(params)
