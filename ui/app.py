"""The unitcat app: `unitcat ui`, or `streamlit run ui/serve.py` (both listen on 127.0.0.1
only and send no usage statistics: see ui/.streamlit/config.toml). ui/serve.py serves
this script; `streamlit run ui/app.py` works too, but its deep links (/unit?…) log two
404s in the browser's console (ui/rootpath.py says why).

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
from ui import addresses, connection, faults, queries, study
from ui import urlstate as url

ICON = Path(__file__).with_name("favicon.png")  # local: a :material/…: icon is fetched online

st.set_page_config(page_title="unitcat", page_icon=ICON, layout="wide")
url.drop_unreadable()  # a NUL byte in the URL: noted on the page, never sent to the database

PAGES_DIR = Path(__file__).parent / "app_pages"
#: The app's pages: (script, title, icon, address); the default page is served at "/"
#: (e.g. /?preset=misleading).
#: (Addresses come from ui/addresses.py, which the server (ui/serve.py) reads too.)
PAGES = [
    (url.SEARCH_PAGE, "Search", ":material/search:", addresses.SEARCH),
    (url.UNIT_PAGE, "Unit", ":material/neurology:", addresses.UNIT),
    (url.COMPARE_PAGE, "Compare", ":material/compare:", addresses.COMPARE),
    (url.LAYERS_PAGE, "Layers", ":material/stacked_bar_chart:", addresses.LAYERS),
    (url.LAYER_PAGE, "Layer grid", ":material/grid_view:", addresses.LAYER),
    (url.MEASURES_PAGE, "Measures", ":material/grid_on:", addresses.MEASURES),
    (url.RUNS_PAGE, "Runs", ":material/history:", addresses.RUNS),
    (url.SQL_PAGE, "SQL", ":material/terminal:", addresses.SQL),
]
if (PAGES_DIR / "rate.py").is_file():  # the human rating experiment (its own module)
    PAGES.append((url.RATE_PAGE, "Rate", ":material/how_to_vote:", addresses.RATE))

if study.active():
    # every address of the app serves the Rate page, so that a participant's link, edited
    # or not, reaches nothing else (the --study server's own /rate included)
    rate_addresses = sorted(
        {address for *_, address in PAGES if address} | set(addresses.STUDY_EXTRA)
    )
    page = st.navigation(
        [st.Page(url.RATE_PAGE, title="Rate", url_path=addresses.STUDY, default=True)]
        + [st.Page(url.RATE_PAGE, title="Rate", url_path=a) for a in rate_addresses],
        position="hidden",
    )
    st.set_page_config(page_title="Rating study", page_icon=ICON, layout="wide")
    study.pin_browser()
    try:
        page.run()
    except (OperationalError, DatabaseUnavailable) as exc:
        faults.show_database_error(exc)
    st.stop()

pages = [
    st.Page(script, title=title, icon=icon, url_path=address or None, default=not address)
    for script, title, icon, address in PAGES
]
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
