"""Study mode: the app as participants of the rating study see it — the Rate page alone.

On for the whole server with `unitcat ui --study` (environment UNITCAT_STUDY=1), or for
one browser session by a study link (?study=1 on any page: the session stays in study
mode until the tab is closed). Participants then see no navigation, no catalogue and
no class names, which could bias their answers (Gale et al., appendix 5).
"""

from __future__ import annotations

import os

import streamlit as st

ENV = "UNITCAT_STUDY"
PARAM = "study"
_SESSION = "_study_mode"


def server_wide() -> bool:
    return os.environ.get(ENV, "").strip().lower() in ("1", "true", "yes", "on")


def active() -> bool:
    """Whether this session shows the study only (server-wide, or by a study link)."""
    if server_wide() or st.session_state.get(_SESSION):
        return True
    value = (st.query_params.get(PARAM) or "").strip().lower()
    if value in ("1", "true", "yes", "on"):
        st.session_state[_SESSION] = True
        return True
    return False
