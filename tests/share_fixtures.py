"""Fixtures of the dump tests: `shared_catalogue` (`tests.share_builders`, built once per
session), `shared_dump` and `ui_dump` (it and the UI test catalogue exported), `empty` (a
fresh catalogue at the newest schema)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine
from sqlalchemy.pool import NullPool

from tests.share_builders import SharedCatalogue, build_shared_catalogue


@pytest.fixture(scope="session")
def shared_catalogue(
    database_factory: Callable[..., str],
    trained_checkpoint: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> SharedCatalogue:
    url = database_factory()
    engine = create_engine(url, poolclass=NullPool)
    try:
        return build_shared_catalogue(
            engine, url, trained_checkpoint, tmp_path_factory.mktemp("shared")
        )
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def shared_dump(
    shared_catalogue: SharedCatalogue, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The whole shared catalogue exported (with images)."""
    from catalogue.share.export import export_catalogue

    out = tmp_path_factory.mktemp("dumps") / "shared"
    engine = create_engine(shared_catalogue.url, poolclass=NullPool)
    export_catalogue(engine, out)
    engine.dispose()
    return out


@pytest.fixture(scope="module")
def ui_dump(catalogue: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The UI test catalogue exported (with its image files and AM panel)."""
    from catalogue.share.export import export_catalogue

    out = tmp_path_factory.mktemp("dumps") / "ui"
    engine = create_engine(catalogue.url, poolclass=NullPool)
    export_catalogue(engine, out)
    engine.dispose()
    return out


@pytest.fixture
def empty(database_factory: Callable[..., str]) -> Iterator[Engine]:
    """A fresh catalogue at the newest schema."""
    engine = create_engine(database_factory(), poolclass=NullPool)
    yield engine
    engine.dispose()
