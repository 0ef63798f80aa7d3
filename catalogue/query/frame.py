"""Run a Core statement and return its rows as a DataFrame with the statement's column names.

The UI, a notebook and `psql` then see the same names (docs/DESIGN.md), and a result
with no rows still has its columns.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from sqlalchemy import Double, Engine


def read_frame(engine: Engine, statement: Any) -> pd.DataFrame:
    """The rows of `statement`; double-precision columns come back as float64 (NULL → NaN)."""
    with engine.connect() as conn:
        result = conn.execute(statement)
        keys = list(result.keys())
        rows = result.fetchall()
    frame = pd.DataFrame([tuple(r) for r in rows], columns=keys)
    for col in getattr(statement, "selected_columns", ()):
        name = col.key
        if name in frame.columns and isinstance(col.type, Double):
            frame[name] = pd.to_numeric(frame[name], errors="coerce").astype("float64")
    return frame
