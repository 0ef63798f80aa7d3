"""The README's SQL runs on a real catalogue, and every statement that returns rows per
layer names the model too: a catalogue holds a trained model and its random-weights
baseline, whose layers share their names, so a per-layer row without `model` is one of
two indistinguishable rows."""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from tests.ui_fixtures import UICatalogue

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_statements() -> list[str]:
    """Each SQL statement of the README's ```sql blocks (comments dropped)."""
    blocks = re.findall(r"```sql\n(.*?)```", README.read_text(), flags=re.DOTALL)
    statements = []
    for block in blocks:
        code = "\n".join(line.split("--", 1)[0] for line in block.splitlines())
        statements += [s.strip() for s in code.split(";") if s.strip()]
    return statements


def test_the_readme_has_its_queries() -> None:
    statements = readme_statements()
    assert len(statements) >= 10
    assert any("FROM layer_detectors" in s for s in statements)


def test_every_readme_query_runs_and_names_the_model_beside_the_layer(
    catalogue: UICatalogue,
) -> None:
    engine = create_engine(catalogue.url, poolclass=NullPool)
    try:
        per_layer = 0
        for statement in readme_statements():
            with engine.connect() as conn:
                conn.execute(text("SET TRANSACTION READ ONLY"))
                columns = list(conn.execute(text(statement)).keys())
                conn.rollback()
            if "layer" in columns:
                per_layer += 1
                assert "model" in columns, f"rows per layer without their model:\n{statement}"
        assert per_layer >= 8
    finally:
        engine.dispose()
