"""Fixtures of the dump tests: `shared_catalogue` (`tests.share_builders`, built once per
session), `shared_dump` and `ui_dump` (it and the UI test catalogue exported),
`twoafc_catalogue` and `twoafc_dump` (a scored catalogue with a 2-AFC study answered on
the Rate page's path, and its export), `empty` (a fresh catalogue at the newest schema)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine
from sqlalchemy.pool import NullPool

from tests.share_builders import AnsweredStudy, SharedCatalogue, build_shared_catalogue
from tests.twoafc_fixtures import build_twoafc_catalogue


@pytest.fixture(scope="session")
def shared_catalogue(
    database_factory: Callable[..., str],
    trained_checkpoint: Path,
    tmp_path_factory: pytest.TempPathFactory,
    unitcat_home: Path,
) -> SharedCatalogue:
    """Built with the session's UNITCAT_HOME (its AM panels are stored relative to it)."""
    url = database_factory()
    engine = create_engine(url, poolclass=NullPool)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("UNITCAT_HOME", str(unitcat_home))
            return build_shared_catalogue(
                engine, url, trained_checkpoint, tmp_path_factory.mktemp("shared")
            )
    finally:
        engine.dispose()


def _export(url: str, out: Path, home: Path) -> Path:
    """The catalogue at `url` exported to `out` (with images) as the session's UNITCAT_HOME
    sees it, whatever home the test that first asks for the dump has set (its AM panels
    are stored relative to the session home's artifacts)."""
    from catalogue.share.export import export_catalogue

    engine = create_engine(url, poolclass=NullPool)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("UNITCAT_HOME", str(home))
            export_catalogue(engine, out)
    finally:
        engine.dispose()
    return out


@pytest.fixture(scope="session")
def shared_dump(
    shared_catalogue: SharedCatalogue,
    tmp_path_factory: pytest.TempPathFactory,
    unitcat_home: Path,
) -> Path:
    """The whole shared catalogue exported (with images)."""
    out = tmp_path_factory.mktemp("dumps") / "shared"
    return _export(shared_catalogue.url, out, unitcat_home)


@pytest.fixture(scope="module")
def ui_dump(catalogue: Any, tmp_path_factory: pytest.TempPathFactory, unitcat_home: Path) -> Path:
    """The UI test catalogue exported (with its image files and AM panel)."""
    return _export(catalogue.url, tmp_path_factory.mktemp("dumps") / "ui", unitcat_home)


@pytest.fixture(scope="module")
def twoafc_catalogue(
    database_factory: Callable[..., str], tmp_path_factory: pytest.TempPathFactory
) -> AnsweredStudy:
    """A scored catalogue (top and least activating images) with a 2-AFC study of conv5
    and four fc6 units, dealt to three participants who answered every trial of their
    task: p0 every catch trial wrong (left out of the accuracy), p1 and p2 all right but
    every third main trial; p2 without confidence or response time."""
    from catalogue.pipeline.twoafc.study import build_study, enrol, progress, record_response
    from catalogue.query.twoafc import find_study
    from catalogue.twoafc.design import DesignOptions

    url = database_factory()
    engine = create_engine(url, poolclass=NullPool)
    built = build_twoafc_catalogue(engine, tmp_path_factory.mktemp("afc-share"))
    units = [("conv5", None), ("fc6", [0, 1, 2, 3])]
    build_study(engine, built.score_run, units, name="shared-2afc",
                options=DesignOptions(catch_trials=2, seed=1))  # fmt: skip
    study = find_study(engine, "shared-2afc")
    for person in ("p0", "p1", "p2"):
        assignment = enrol(engine, study, person)
        for i, trial in enumerate(progress(engine, assignment).trials):
            right = not trial.catch if person == "p0" else (trial.catch or i % 3 != 0)
            extra = {} if person == "p2" else {"confidence": 1 + i % 3, "rt_ms": 500.0 + i}
            record_response(engine, assignment, trial, chose_max=right, **extra)
    engine.dispose()
    return AnsweredStudy(url, built, "shared-2afc")


@pytest.fixture(scope="module")
def twoafc_dump(
    twoafc_catalogue: AnsweredStudy, tmp_path_factory: pytest.TempPathFactory, unitcat_home: Path
) -> Path:
    """The 2-AFC catalogue exported (with its images)."""
    out = tmp_path_factory.mktemp("dumps") / "twoafc"
    return _export(twoafc_catalogue.url, out, unitcat_home)


@pytest.fixture
def empty(
    database_factory: Callable[..., str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Engine]:
    """A fresh catalogue at the newest schema, with a UNITCAT_HOME of its own: the images
    and AM panels an import writes stay with it, so another test's catalogue of the same
    dataset never finds them in place of its own (missing) files."""
    monkeypatch.setenv("UNITCAT_HOME", str(tmp_path / "empty-home"))
    engine = create_engine(database_factory(), poolclass=NullPool)
    yield engine
    engine.dispose()
