"""The Unit page's ways to other units: the previous and next unit of the layer, and
the units selective for the same class or detecting the same concept (reads through
`catalogue.query.related`; their addresses through `ui.urlstate`).
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from catalogue.measures import CLASS_MEASURES, MEASURES_BY_NAME
from ui import queries, tables
from ui import urlstate as url
from ui.controls import consume_widget_key, next_widget_key

DEFAULT_SAME = "mi_class"
OPEN_TEXT = "open ›"


def neighbour_buttons(key: str, unit_id: int, run_id: int | None) -> None:
    """‹ previous and next › unit of the layer (by index), as buttons."""
    previous, following = queries.layer_neighbours(key, unit_id)
    left, right, _ = st.columns([1, 1, 4])
    left.button(
        f"‹ {previous.name}" if previous else "‹ first unit",
        key="unit_previous",
        disabled=previous is None,
        on_click=url.go_to_unit if previous else None,
        args=(previous, run_id) if previous else None,
        help="The previous unit of this layer",
        width="stretch",
    )
    right.button(
        f"{following.name} ›" if following else "last unit ›",
        key="unit_next",
        disabled=following is None,
        on_click=url.go_to_unit if following else None,
        args=(following, run_id) if following else None,
        help="The next unit of this layer",
        width="stretch",
    )


def _unit_table(frame: pd.DataFrame, extra: list[str], key: str) -> None:
    """A short list of units; clicking a row's "open ›" opens the unit."""
    columns = ["open", "model", "layer", "unit", *extra, "precision", "max_informedness"]
    columns += ["false_alarm_rate", "best_iou"]
    shown = frame.assign(open=OPEN_TEXT)[list(dict.fromkeys(columns))]
    table_key = next_widget_key(key)
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
        consume_widget_key(key)
        url.open_unit(
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
            frame = queries.units_same_class(key, unit_id, run_id, column)
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
            frame = queries.units_same_concept(key, unit_id)
            st.markdown(f"Other units whose best dissection concept is **{concept}**:")
            if frame.empty:
                st.caption("None.")
            else:
                _unit_table(frame, [], "related_concept")
