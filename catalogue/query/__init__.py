"""The read side of the catalogue: every query the UI, the CLI and the pipelines ask.

One job per module, all SQLAlchemy Core over the views (`views`) and tables of
`catalogue.db.schema`, with user input only in bound parameters:

- `views`: the SQL views as Core tables (declarations only).
- `frame`: run a statement, get a DataFrame with the view's column names.
- `overview`: how much the catalogue holds.
- `search`: the Search page's filters and presets (one per detector criterion).
- `units`: one unit: its record, verdicts, class and group statistics, top images,
  dissection, AM panels and ratings.
- `layers`: per layer: detector counts, measure summaries, correlations, values.
- `report`: what a pipeline run reports (detector counts and the headline query).
- `examples`: example queries for the SQL page (the headline built from the criteria).
- `runs`: the runs and how a scoring run is named.
- `models`: a registered model's name, architecture and weights label (to load it again).
- `ratings`: the rating study's reads and the paper's Table 1.
- `files`: image files, bundled images, artifacts and the run's HDF5 store.
- `importance`: ablation per unit and class, class-ablation curves, selectivity against
  importance, and trained / random-weights / chance detector counts.

Writes live in `catalogue.db`; nothing here writes.
"""
