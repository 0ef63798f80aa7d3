"""The server of the unitcat app: `unitcat ui` runs `streamlit run ui/serve.py`.

`app` serves ui/app.py as `streamlit run ui/app.py` does (same pages, settings and
ui/.streamlit/config.toml, which Streamlit reads next to this file), with one
middleware: deep links (/unit?model=…, /compare?…) log no 404s in the browser's
console (ui/rootpath.py says why they did).
"""

from __future__ import annotations

import streamlit as st
from starlette.middleware import Middleware

from ui.addresses import ALL_ADDRESSES
from ui.rootpath import RootOfPages

app = st.App(
    "app.py",
    middleware=[
        Middleware(
            RootOfPages,
            pages=ALL_ADDRESSES,
            base_path=str(st.get_option("server.baseUrlPath") or ""),
        )
    ],
)
