"""The 2-AFC study of natural exemplars (Borowski et al. ICLR 2021; Zimmermann et al.
NeurIPS 2021; the IMI data set, NeurIPS 2023): can people tell what a unit responds to?

The protocol itself, pure and below the database:

- `design`: the trials from ranked exemplars;
- `imi`: IMI's published layout of trials and its response rows.

Building a study from a scoring run, dealing tasks, recording answers, the export in
IMI's layout and the import of responses are `catalogue.pipeline.twoafc`'s; the tables
are `catalogue.db.twoafc_schema`'s, the writes `catalogue.db.twoafc`'s, the reads
`catalogue.query.twoafc`'s and the per-unit accuracy the views of
`catalogue.db.twoafc_views`.
"""
