"""The catalogue database: the server and its roles, the schema, and the one write layer.

Its modules by job, kept apart (the reads for people are `catalogue.query`):

- infrastructure: `engine` (which database; the owner's and the reader's engines),
  `server` (the embedded PostgreSQL), `roles` (the owner and reader roles and their
  grants), `revisions` (what the migration scripts hold), `migrate` (running them,
  and the schema check at start), `owner` (which process runs a run, and whether it
  still lives);
- schema: `base` (the declarative base and its naming convention), `schema` and
  `twoafc_schema` (the tables, for Alembic autogenerate), `views` and
  `importance_views`, `twoafc_views` (the views' SQL, generated from `catalogue.measures`),
  `view_revision` (the revision a changed view needs), `summaries` (the SQL of the
  summaries triggers keep);
- writes: typed functions that take the `Connection` of the caller's transaction (a
  run's writes: the one `RunHandle.complete` opens): `identities` (models, layers,
  units, datasets, classes, class groups, concepts), `runs` (the run lifecycle:
  `recorded_run` is the one entry point that takes an `Engine`, since it owns the
  run's session, lock and transactions), `results` (unit_metrics, unit_class_stats,
  unit_top_image, unit_bottom_image, unit_group_metrics, dissection, am_panel),
  `ratings` (participants, ratings, the stored rating analysis), `twoafc` (the 2-AFC
  study's studies, trials, tasks dealt and answers), `ablation` (ablation and baseline rows),
  `bulk` (the COPY primitive);
- user SQL: `readonly` (one statement as the reader role, read-only, rolled back).

Style: SQLAlchemy Core statements on the tables of `schema` (PostgreSQL's
``INSERT … ON CONFLICT`` from `sqlalchemy.dialects.postgresql`), and COPY through
`bulk` for rows that come in bulk. Beside the writers are only the lookups a
writer needs (an id by name, who rated what already).
"""
