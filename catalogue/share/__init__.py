"""Share a catalogue: a folder of Parquet files that a lab, DuckDB, pandas and Hugging Face
`datasets` can read, and that `unitcat import` merges into another catalogue.

- `spec`: the tables of a dump, their columns and keys (no database ids);
- `keys`: run content keys, the same in every catalogue;
- `manifest`, `croissant`: `manifest.json` (format, versions, checksums) and
  `croissant.json` (ML Commons Croissant metadata);
- `read`, `images`, `export`: the export (`export_catalogue`);
- `load`, `columns`, `write`, `twoafc`, `importer`: the import (`import_dump`; `twoafc`
  merges the 2-AFC studies).

docs/DUMP_FORMAT.md describes the files.
"""
