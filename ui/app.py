"""The unitcat app: `unitcat ui`, or `streamlit run ui/app.py`.

Pages are modules in `ui/app_pages/` wired with st.navigation; they read the
catalogue through `catalogue.query` (Core queries with bound parameters).
A database that cannot be reached shows one error box with the fix instead
of a page.

Study mode (`unitcat ui --study`, or a link with ?study=1) serves the Rate page
alone, without navigation or anything that names a class, so that participants of
the rating study see only the panels and the questions. Nothing is fetched from
outside the machine: the tab icon is a file of this package.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st
from sqlalchemy.exc import OperationalError

from catalogue.errors import DatabaseUnavailable
from ui import connection, faults, queries, study
from ui import urlstate as url

ICON = Path(__file__).with_name("favicon.png")  # local: a :material/…: icon is fetched online

st.set_page_config(page_title="unitcat", page_icon=ICON, layout="wide")

PAGES_DIR = Path(__file__).parent / "app_pages"
if study.active():
    page = st.navigation([st.Page(url.RATE_PAGE, title="Rate", url_path="rate")], position="hidden")
    st.set_page_config(page_title="Rating study", page_icon=ICON, layout="wide")
    try:
        page.run()
    except (OperationalError, DatabaseUnavailable) as exc:
        faults.show_database_error(exc)
    st.stop()

pages = [
    # the default page is served at "/" (e.g. /?preset=misleading)
    st.Page(url.SEARCH_PAGE, title="Search", icon=":material/search:", default=True),
    st.Page(url.UNIT_PAGE, title="Unit", icon=":material/neurology:", url_path="unit"),
    st.Page(url.COMPARE_PAGE, title="Compare", icon=":material/compare:", url_path="compare"),
    st.Page(
        url.LAYERS_PAGE, title="Layers", icon=":material/stacked_bar_chart:", url_path="layers"
    ),
    st.Page(url.MEASURES_PAGE, title="Measures", icon=":material/grid_on:", url_path="measures"),
    st.Page(url.RUNS_PAGE, title="Runs", icon=":material/history:", url_path="runs"),
    st.Page(url.SQL_PAGE, title="SQL", icon=":material/terminal:", url_path="sql"),
]
if (PAGES_DIR / "rate.py").is_file():  # the human rating experiment (its own module)
    pages.append(
        st.Page(url.RATE_PAGE, title="Rate", icon=":material/how_to_vote:", url_path="rate")
    )

page = st.navigation(pages)
st.set_page_config(page_icon=ICON, layout="wide")  # after navigation: a page icon is fetched online
connection.connect_or_stop()
st.sidebar.caption(f"Catalogue: {connection.database_caption()}")
queries.refresh_button()
try:
    page.run()
except (OperationalError, DatabaseUnavailable) as exc:  # the server went away meanwhile
    faults.show_database_error(exc)
except Exception as exc:  # any other fault: one box with what to do, the details in a log file
    faults.show_fault(exc)
