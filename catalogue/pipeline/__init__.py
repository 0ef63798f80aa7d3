"""Pipelines: the library functions behind the ingest commands.

Each module joins a pure computation (`catalogue.selectivity`, `.dissection`,
`.am`, `.ablation`, `.ratings`) to the catalogue, and reads as its steps:
check every option, plan the run against the catalogue, then hand the
computation and the write to `lifecycle.run_step`, which owns the rest of a
run's life (reuse of a finished run, the lock, a run finished by another
process, progress that stops when the run's session is lost, the write in one
transaction). `source` is the finished extraction run that scoring, ablation
and the baselines read; `defaults` holds the options' defaults in a module the
command line imports without torch. Pipelines orchestrate; every write (and the
lookups a write needs) is a function of `catalogue.db` and every other read one
of `catalogue.query`, so no SQL is written here.
"""
