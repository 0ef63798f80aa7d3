"""What a user's SQL can read: the catalogue's views and tables with their columns, as the
database's own catalog (information_schema) lists them, so the list is never out of date."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import Engine, text

from catalogue.db.engine import reader_connection

_COLUMNS = text(
    """
SELECT c.table_name AS relation,
       CASE t.table_type WHEN 'VIEW' THEN 'view' ELSE 'table' END AS kind,
       c.column_name AS column_name,
       c.data_type AS data_type,
       c.ordinal_position AS position
FROM information_schema.columns c
JOIN information_schema.tables t
  ON t.table_schema = c.table_schema AND t.table_name = c.table_name
WHERE c.table_schema = current_schema()
  AND c.table_name <> 'alembic_version'
ORDER BY CASE t.table_type WHEN 'VIEW' THEN 0 ELSE 1 END, c.table_name, c.ordinal_position
"""
)


def relation_columns(engine: Engine) -> pd.DataFrame:
    """One row per column of every view and table of the catalogue's schema (views first):
    relation, kind ('view' or 'table'), column_name, data_type, position. `engine` is the
    reader's: `ConsoleBusy` when all its connections are running user queries."""
    with reader_connection(engine) as conn:
        result = conn.execute(_COLUMNS)
        return pd.DataFrame([tuple(r) for r in result], columns=list(result.keys()))
