"""The unitcat app: `unitcat ui`, or `streamlit run ui/app.py`.

Pages are modules in `ui/app_pages/` wired with st.navigation; they read the
catalogue through `catalogue.query` (Core queries with bound parameters).
A database that cannot be reached shows one error box with the fix instead
of a page.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st
from sqlalchemy.exc import OperationalError

from catalogue.errors import DatabaseUnavailable
from ui.app_pages import common

st.set_page_config(page_title="unitcat", page_icon=":material/biotech:", layout="wide")

PAGES_DIR = Path(__file__).parent / "app_pages"
pages = [
    # the default page is served at "/" (e.g. /?preset=misleading)
    st.Page(common.SEARCH_PAGE, title="Search", icon=":material/search:", default=True),
    st.Page(common.UNIT_PAGE, title="Unit", icon=":material/neurology:", url_path="unit"),
    st.Page(
        common.LAYERS_PAGE, title="Layers", icon=":material/stacked_bar_chart:", url_path="layers"
    ),
    st.Page(common.MEASURES_PAGE, title="Measures", icon=":material/grid_on:", url_path="measures"),
    st.Page(common.RUNS_PAGE, title="Runs", icon=":material/history:", url_path="runs"),
    st.Page(common.SQL_PAGE, title="SQL", icon=":material/terminal:", url_path="sql"),
]
if (PAGES_DIR / "rate.py").is_file():  # the human rating experiment (its own module)
    pages.append(
        st.Page("app_pages/rate.py", title="Rate", icon=":material/how_to_vote:", url_path="rate")
    )

page = st.navigation(pages)
common.connect_or_stop()
st.sidebar.caption(f"Catalogue: {common.database_caption()}")
common.refresh_button()
try:
    page.run()
except (OperationalError, DatabaseUnavailable) as exc:  # the server went away meanwhile
    common.show_database_error(exc)
except Exception as exc:  # any other fault: one box with what to do, the details in a log file
    common.show_fault(exc)
