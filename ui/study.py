"""Study mode: the app as participants of the rating study see it — the Rate page alone.

On for the whole server with `unitcat ui --study` (environment UNITCAT_STUDY=1), or for
one browser by a study link (?study=1 on any page). A study link pins the browser to the
study with a session cookie, so that editing the address (to /layers, or dropping
?study=1) reloads the Rate page, not the app, until the browser is closed (a researcher
opens study links in a private window). Participants then see no navigation, no
catalogue and no class names, which could bias their answers (Gale et al., appendix 5).
"""

from __future__ import annotations

import os

import streamlit as st

ENV = "UNITCAT_STUDY"
PARAM = "study"
_SESSION = "_study_mode"
#: The session cookie a study link sets (read back by `active` when the page is reloaded).
COOKIE = "unitcat_study"
_PIN = "<script>document.cookie = '" + COOKIE + "=1; path=/; SameSite=Strict';</script>"


def server_wide() -> bool:
    return os.environ.get(ENV, "").strip().lower() in ("1", "true", "yes", "on")


def active() -> bool:
    """Whether this session shows the study only (server-wide, or by a study link)."""
    if server_wide() or st.session_state.get(_SESSION):
        return True
    if st.context.cookies.get(COOKIE) == "1":  # a study link opened earlier in this browser
        st.session_state[_SESSION] = True
        return True
    value = (st.query_params.get(PARAM) or "").strip().lower()
    if value in ("1", "true", "yes", "on"):
        st.session_state[_SESSION] = True
        return True
    return False


def pin_browser() -> None:
    """Set the study cookie in this browser (a study link's session; the server-wide study
    needs none), so that a reload at any address stays in the study."""
    if not server_wide() and st.context.cookies.get(COOKIE) != "1":
        st.html(_PIN, unsafe_allow_javascript=True)
