"""The 2-AFC study of natural exemplars (Borowski et al. ICLR 2021; Zimmermann et al.
NeurIPS 2021; the IMI data set, NeurIPS 2023): can people tell what a unit responds to?

- `design`: the trials from ranked exemplars (pure);
- `study`: building a study from a scoring run, dealing tasks, recording answers;
- `imi`: IMI's published layout of trials and its response rows;
- `export`, `responses`: the study out in IMI's layout, responses in from IMI's format.

The tables are `catalogue.db.twoafc_schema`'s, the writes `catalogue.db.twoafc`'s, the
reads `catalogue.query.twoafc`'s and the per-unit accuracy the views of
`catalogue.db.twoafc_views`.
"""
