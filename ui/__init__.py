"""The Streamlit app on the catalogue (`unitcat ui`): pages in `ui/app_pages/`, charts in
`ui/plots.py`, data through `catalogue.query`, labels and
display frames in `ui/display.py`."""
