"""The unitcat app: `unitcat ui`, or `streamlit run ui/app.py`.

Pages are modules in `ui/app_pages/` wired with st.navigation; they read the
catalogue through `catalogue.browse` (Core queries with bound parameters).
A database that cannot be reached shows one error box with the fix instead
of a page.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st
from sqlalchemy.exc import OperationalError

from catalogue.errors import DatabaseUnavailable
from ui.app_pages import common

st.set_page_config(page_title="unitcat", page_icon="🔬", layout="wide")

PAGES_DIR = Path(__file__).parent / "app_pages"
pages = [
    st.Page(common.SEARCH_PAGE, title="Search", icon="🔎", url_path="search", default=True),
    st.Page(common.UNIT_PAGE, title="Unit", icon="🧩", url_path="unit"),
    st.Page(common.LAYERS_PAGE, title="Layers", icon="📊", url_path="layers"),
    st.Page(common.MEASURES_PAGE, title="Measures", icon="🧮", url_path="measures"),
    st.Page(common.RUNS_PAGE, title="Runs", icon="🏃", url_path="runs"),
    st.Page(common.SQL_PAGE, title="SQL", icon="⌨️", url_path="sql"),
]
if (PAGES_DIR / "rate.py").is_file():  # the human rating experiment (its own module)
    pages.append(st.Page("app_pages/rate.py", title="Rate", icon="🗳️", url_path="rate"))

page = st.navigation(pages)
common.connect_or_stop()
st.sidebar.caption(f"Catalogue: {common.database_caption()}")
common.refresh_button()
try:
    page.run()
except (OperationalError, DatabaseUnavailable) as exc:  # the server went away meanwhile
    common.show_database_error(exc)
