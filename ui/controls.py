"""Controls that several pages share: the scoring-run picker, the constant-units switch,
and fresh keys for selection widgets.

Each keeps its value in the URL (`ui.urlstate`), so a link reproduces the page.
"""

from __future__ import annotations

import streamlit as st

from ui import queries
from ui import urlstate as url
from ui.connection import engine_key
from ui.faults import EMPTY_MESSAGE, stop_if_empty

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


def score_run_picker(label: str = "Scoring run", key: str = "score_run") -> int | None:
    """A select box of the scoring runs with results (newest first, or ?run_id=…);
    None when there are none."""
    runs = queries.score_runs(engine_key())
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
    stop_if_empty(queries.overview(key))
    run_id = score_run_picker()
    if run_id is None:
        st.info(EMPTY_MESSAGE)
        st.stop()
    return key, run_id
