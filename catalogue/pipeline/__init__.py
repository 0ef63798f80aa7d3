"""Pipelines: the library functions behind the ingest commands.

Each module joins a pure computation (`catalogue.selectivity`, `.dissection`,
`.am`, `.ratings`) to the catalogue: it registers what results refer to, runs
the computation, and writes the results in one transaction per run. Pipelines
orchestrate; every write (and the lookups a write needs) is a function of
`catalogue.db`, so no SQL is written here.
"""
