"""Pipelines: the library functions behind the ingest commands.

Each module joins a pure computation (`catalogue.selectivity`, `.dissection`,
`.am`, `.ratings`) to the catalogue: it registers what results refer to, runs
the computation, and writes the results in one transaction per run.
"""
