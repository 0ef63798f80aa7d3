"""One run with everything known about it: `unitcat runs show N`.

Its row (status as it reads, see `catalogue.query.runs`), model and dataset, the run it
came from, its provenance (`catalogue.provenance`: versions, machine, threads, seeds,
dataset fingerprint), where it came from if it was imported (`catalogue.share`), and how
many rows of each result table it holds.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, func, select

from catalogue.db.runs import current_state, find_run
from catalogue.db.schema import RUN_RESULT_TABLES, Base
from catalogue.query.views import DATASET, MODEL, RUN


def run_details(engine: Engine, run: str | int) -> dict[str, Any]:
    """Every column of run `run` (an id, or a label: the newest), with `model`,
    `model_checksum`, `dataset`, `parent_kind`, `state` and `rows` (result table -> rows)."""
    with engine.connect() as conn:
        row = find_run(conn, run)
        out: dict[str, Any] = dict(row._mapping)
        out["state"] = current_state(conn, row)
        model = conn.execute(
            select(MODEL.c.name, MODEL.c.checksum).where(MODEL.c.id == row.model_id)
        ).one_or_none()
        out["model"], out["model_checksum"] = (
            (model.name, model.checksum) if model else (None, None)
        )
        out["dataset"] = conn.execute(
            select(DATASET.c.name).where(DATASET.c.id == row.dataset_id)
        ).scalar_one_or_none()
        out["parent_kind"] = conn.execute(
            select(RUN.c.kind).where(RUN.c.id == row.parent_id)
        ).scalar_one_or_none()
        out["rows"] = {}
        for name in RUN_RESULT_TABLES:
            table = Base.metadata.tables[name]
            n = conn.execute(
                select(func.count()).select_from(table).where(table.c.run_id == row.id)
            ).scalar_one()
            if n:
                out["rows"][name] = int(n)
    return out
