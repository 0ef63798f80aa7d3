"""A registered model as the catalogue recorded it: what a later run needs to load it again."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, select

from catalogue.errors import NotFound
from catalogue.query.views import MODEL


@dataclass(frozen=True)
class ModelIdentity:
    """A model's catalogue name, its architecture and the weights label it was loaded with."""

    name: str
    architecture: str
    weights: str | None


def model_identity(engine: Engine, model_id: int) -> ModelIdentity:
    """The name, architecture and weights label of the model with this id."""
    with engine.connect() as conn:
        row = conn.execute(
            select(MODEL.c.name, MODEL.c.architecture, MODEL.c.weights).where(
                MODEL.c.id == model_id
            )
        ).one_or_none()
    if row is None:
        raise NotFound(f"no model {model_id} in the catalogue.")
    return ModelIdentity(str(row.name), str(row.architecture), row.weights)
