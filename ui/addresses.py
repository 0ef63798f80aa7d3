"""The app's page addresses (the path of each page: /unit, /compare, …).

Kept apart from ui/app.py, which runs Streamlit when imported, so that the server
(ui/serve.py) knows them before any page runs.
"""

from __future__ import annotations

SEARCH = ""  # the default page, served at "/"
UNIT = "unit"
COMPARE = "compare"
LAYERS = "layers"
LAYER = "layer"
MEASURES = "measures"
RUNS = "runs"
SQL = "sql"
RATE = "rate"
#: study mode's own address, and the addresses that serve the Rate page in study mode
#: besides every page's ("search": the default page's name)
STUDY = "study"
STUDY_EXTRA = (RATE, "search")

PAGE_ADDRESSES = (UNIT, COMPARE, LAYERS, LAYER, MEASURES, RUNS, SQL)
#: every address the app answers with a page, in either mode
ALL_ADDRESSES = frozenset({*PAGE_ADDRESSES, RATE, STUDY, *STUDY_EXTRA})
