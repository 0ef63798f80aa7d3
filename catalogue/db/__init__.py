"""The catalogue database: engine and embedded server, schema, and the one write layer.

Writes go through typed functions that take the `Connection` of the caller's
transaction (a run's writes: the one `RunHandle.complete` opens), split by job:

- `registry`: models, layers, units, datasets, classes, class groups, concepts;
- `runs`: the run lifecycle (`recorded_run` is the one entry point that takes
  an `Engine`, since it owns the run's session, lock and transactions; `owner`:
  which process runs a run, and whether it still lives);
- `results`: a run's result rows (unit_metrics, unit_class_stats, unit_top_image,
  unit_bottom_image, unit_group_metrics, dissection, am_panel);
- `ratings`: participants, ratings, the stored rating analysis;
- `twoafc`: the 2-AFC study's studies, trials, tasks dealt and answers (tables in
  `twoafc_schema`, views in `twoafc_views`);
- `bulk`: the COPY primitive.

Style: SQLAlchemy Core statements on the tables of `schema` (PostgreSQL's
``INSERT … ON CONFLICT`` from `sqlalchemy.dialects.postgresql`), and COPY through
`bulk` for rows that come in bulk. Beside the writers are only the lookups a
writer needs (an id by name, who rated what already); reads for people go
through the read-side package.
"""
