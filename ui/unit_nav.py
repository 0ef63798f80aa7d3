"""Moving through units on the Unit page: which unit the URL names, the previous and
next unit of the layer, and the units selective for the same class or detecting the
same concept (reads through `catalogue.query.related`).

A unit's permalink is /unit?model=…&layer=…&unit=…(&run_id=…); the internal
`?unit_id=…` still opens it, and the page then rewrites the address to the permalink.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from catalogue.errors import NotFound
from catalogue.measures import CLASS_MEASURES, CRITERIA_BY_KEY, MEASURES_BY_NAME
from catalogue.query.related import UnitAddress
from catalogue.query.search import PRESETS
from ui import tables
from ui import urlstate as url
from ui.app_pages import common
from ui.display import HIGHLIGHT_PRESETS

#: Query parameters the Unit page understands (`highlight`: the measure or preset the user
#: came from, whose class the jitter plot highlights first; `preset` says the same).
UNIT_PARAMS: frozenset[str] = frozenset(
    {"unit_id", "run_id", "model", "layer", "unit", "class", "same", "highlight", "preset"}
)
#: Choices that go along to the previous or next unit.
CARRIED: tuple[str, ...] = ("same", "highlight", "preset")
DEFAULT_SAME = "mi_class"
OPEN_TEXT = "open ›"


def _int(name: str) -> int | None:
    value = st.query_params.get(name)
    if value in (None, ""):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        url.note(f"{url.code(f'{name}={value}')} is not a whole number; it is ignored.")
        return None


def requested_unit(key: str) -> tuple[int | None, int | None]:
    """(unit_id, run_id) the URL asks for: by internal id, or by model, layer and unit.
    A unit that does not exist is noted on the page and gives (None, run_id)."""
    run_id = _int("run_id")
    if "unit_id" in st.query_params:  # the internal id, when given, names the unit
        return _int("unit_id"), run_id
    layer, index = st.query_params.get("layer"), st.query_params.get("unit")
    if layer is not None or index is not None:
        options = common.filter_options(key)
        model = st.query_params.get("model")
        if model is None and len(options.models) == 1:
            model = options.models[0]
        number = _int("unit")
        if model is None or layer is None or number is None:
            url.note(
                "A unit's address needs `model`, `layer` and `unit` "
                "(e.g. ?model=alexnet&layer=fc6&unit=1199)."
            )
            return None, run_id
        try:
            return common.find_unit(key, model, layer, number), run_id
        except NotFound as exc:
            url.note(url.literal(exc))
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
        url.note(
            f"{url.code(f'{name}={value}')} names no measure or preset; highlighting the "
            "max-informedness class."
        )
    return None


def canonical_address(address: UnitAddress, run_id: int | None) -> None:
    """Rewrite the address bar to the unit's permalink (keeping the page's other choices)."""
    wanted = common.unit_params(address.model, address.layer, address.unit, run_id)
    for name in ("unit_id", "run_id"):
        if name in st.query_params and name not in wanted:
            del st.query_params[name]
    for name, value in wanted.items():
        if st.query_params.get(name) != value:
            st.query_params[name] = value


def _go(address: UnitAddress, run_id: int | None) -> None:
    """Open another unit: its permalink, keeping the choice of related-class measure and the
    measure the user came from (the highlighted class is the new unit's own class of it)."""
    params = common.unit_params(address.model, address.layer, address.unit, run_id)
    for name in CARRIED:
        if name in st.query_params:
            params[name] = st.query_params[name]
    st.query_params.from_dict(params)


def neighbour_buttons(key: str, unit_id: int, run_id: int | None) -> None:
    """‹ previous and next › unit of the layer (by index), as buttons."""
    previous, following = common.layer_neighbours(key, unit_id)
    left, right, _ = st.columns([1, 1, 4])
    left.button(
        f"‹ {previous.name}" if previous else "‹ first unit",
        key="unit_previous",
        disabled=previous is None,
        on_click=_go if previous else None,
        args=(previous, run_id) if previous else None,
        help="The previous unit of this layer",
        width="stretch",
    )
    right.button(
        f"{following.name} ›" if following else "last unit ›",
        key="unit_next",
        disabled=following is None,
        on_click=_go if following else None,
        args=(following, run_id) if following else None,
        help="The next unit of this layer",
        width="stretch",
    )


def _unit_table(frame: pd.DataFrame, extra: list[str], key: str) -> None:
    """A short list of units; clicking a row's "open ›" opens the unit."""
    columns = ["open", "model", "layer", "unit", *extra, "precision", "max_informedness"]
    columns += ["false_alarm_rate", "best_iou"]
    shown = frame.assign(open=OPEN_TEXT)[list(dict.fromkeys(columns))]
    table_key = common.next_widget_key(key)
    event = st.dataframe(
        tables.readable(shown),
        column_config=tables.column_config(
            shown, overrides={"open": st.column_config.Column("Open", width="small", pinned=True)}
        ),
        hide_index=True,
        on_select="rerun",
        selection_mode="single-cell",
        key=table_key,
    )
    cells = ((event or {}).get("selection") or {}).get("cells") or []
    if cells:
        row = frame.iloc[int(cells[0][0])]
        common.consume_widget_key(key)
        common.open_unit(
            int(row["unit_id"]),
            row["run_id"],
            model=row["model"],
            layer=row["layer"],
            unit=int(row["unit"]),
        )


def related_units(key: str, record: dict[str, Any], run_id: int | None) -> None:
    """Units selective for the same class, and units detecting the same concept."""
    st.subheader("Related units")
    same_class, same_concept = st.columns(2)
    unit_id = int(record["unit_id"])
    with same_class:
        options = [c for c in CLASS_MEASURES if c != "localist_class" or record.get(c)]
        column = st.selectbox(
            "Units selective for the same class, by",
            options,
            index=url.index_of(options, "same", DEFAULT_SAME, key="related_class_measure"),
            format_func=lambda c: MEASURES_BY_NAME[c].label,
            key="related_class_measure",
        )
        url.keep("same", column, default=DEFAULT_SAME)
        own = record.get(column)
        if run_id is None or own is None or pd.isna(own):
            st.caption("This unit has no such class in this scoring run.")
        else:
            frame = common.units_same_class(key, unit_id, run_id, column)
            st.markdown(f"Other units whose {MEASURES_BY_NAME[column].label} is **{own}**:")
            if frame.empty:
                st.caption("None in this scoring run.")
            else:
                _unit_table(frame, [], "related_class")
    with same_concept:
        concept = record.get("best_concept")
        st.markdown("**Units detecting the same concept**")
        if concept is None or pd.isna(concept):
            st.caption("This unit was not dissected.")
        else:
            frame = common.units_same_concept(key, unit_id)
            st.markdown(f"Other units whose best dissection concept is **{concept}**:")
            if frame.empty:
                st.caption("None.")
            else:
                _unit_table(frame, [], "related_concept")
