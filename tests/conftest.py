"""Shared fixtures: a real PostgreSQL (embedded, or DATABASE_URL) and an isolated UNITCAT_HOME.

The embedded server starts once per test session in a temporary directory. Each
test that asks for `engine` gets its own database, cloned in milliseconds from a
template that was migrated to head once, so tests never see each other's rows.
Catalogues that take long to build (a scored extraction, the UI catalogue) are
built once per session in template databases of their own (`database_template`);
a test that asks for one (`CATALOGUE_TEMPLATES`) gets a clone of it as its database.

The roles are used as in production (`catalogue.db.roles`): each test database
is set up by the superuser with the roles' script, its URL (`database_url`,
`engine`) is the owner's (`unitcat_owner`, not a superuser), so every ingest in
the suite writes as the owner, and user SQL connects as `unitcat_reader`.
`admin_url` is the superuser's, for administration only.

With DATABASE_URL set, the same happens on that server: its user must be a
superuser, and the two roles must be able to log in without a password in the
URL (trust, or entries in ~/.pgpass).
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from catalogue.config import normalise_database_url
from catalogue.db import migrate, roles, server

#: the UI test catalogue fixture (`catalogue`), shared by the AppTest and browser tests; the
#: trained and scored demo CNN; the small scored catalogue of the 2-AFC tests
pytest_plugins = ("tests.ui_fixtures", "tests.ablation_fixtures", "tests.twoafc_fixtures")

_counter = itertools.count()
T = TypeVar("T")
_OWN_BASETEMP_KEY = pytest.StashKey[str]()
_EMBEDDED_KEY = pytest.StashKey[bool]()
#: the embedded test server keeps nothing past the session, so it need not wait for the disk
#: (every commit and CREATE DATABASE otherwise waits for fsync on a shared machine)
_NO_DURABILITY = ("fsync", "synchronous_commit", "full_page_writes")


def pytest_configure(config: pytest.Config) -> None:
    """Give every session its own temporary root unless --basetemp is given.

    pytest's default root keeps the three newest sessions and deletes older ones,
    so two sessions running at once can delete each other's files (an embedded
    server's data directory among them).
    """
    if config.option.basetemp is None:
        config.option.basetemp = tempfile.mkdtemp(prefix="unitcat-pytest-")
        config.stash[_OWN_BASETEMP_KEY] = config.option.basetemp


def pytest_unconfigure(config: pytest.Config) -> None:
    own = config.stash.get(_OWN_BASETEMP_KEY, None)
    if own is not None:
        shutil.rmtree(own, ignore_errors=True)


#: fixtures that make a test slow wherever it is (a Ray cluster, a trained network, a server
#: of its own): `pytest -m "not slow"` (`make test-fast`) leaves their tests out
SLOW_FIXTURES = frozenset(
    {"ray_cluster", "trained_checkpoint", "quick_checkpoint_file", "initialised_data_dir"}
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark slow the tests that use a `SLOW_FIXTURES` fixture or drive a browser (a Chromium
    and a `unitcat ui` server each), so `-m "not slow"` is the whole quick part."""
    for item in items:
        uses_slow = SLOW_FIXTURES.intersection(getattr(item, "fixturenames", ()))
        if uses_slow or item.get_closest_marker("browser") is not None:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session", autouse=True)
def unitcat_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Point UNITCAT_HOME at a temporary folder so tests never touch the user's catalogue."""
    home = tmp_path_factory.mktemp("unitcat-home")
    old = os.environ.get("UNITCAT_HOME")
    os.environ["UNITCAT_HOME"] = str(home)
    yield home
    if old is None:
        os.environ.pop("UNITCAT_HOME", None)
    else:
        os.environ["UNITCAT_HOME"] = old


@pytest.fixture(scope="session")
def admin_url(request: pytest.FixtureRequest, unitcat_home: Path) -> Iterator[str]:
    """The superuser's URL of a maintenance database on the test server (administration only)."""
    configured = os.environ.get("DATABASE_URL")
    request.config.stash[_EMBEDDED_KEY] = not configured
    if configured:
        url = normalise_database_url(configured)
        _admin_script(url, roles.cluster_sql())
        yield url
        return
    data_dir = unitcat_home / "postgres"
    server.start(data_dir)  # as in production: the roles exist once it is up
    socket_dir = server.status(data_dir).socket_dir
    assert socket_dir is not None
    url = server.superuser_url(socket_dir)
    for setting in _NO_DURABILITY:
        _admin_execute(url, f"ALTER SYSTEM SET {setting} = off")
    _admin_execute(url, "SELECT pg_reload_conf()")
    yield url
    server.stop(data_dir)


@pytest.fixture(scope="session")
def initialised_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Path], Path]:
    """`copy(target)`: a stopped embedded server's data directory at `target`, initialised
    (`initdb`, the roles, the `unitcat` database) and migrated once per session, for a test
    that needs a server of its own and does not test initdb. `cp -a` keeps owner and modes
    (as root the server runs as its own OS user)."""
    source = tmp_path_factory.mktemp("initialised") / "postgres"
    engine = create_engine(server.start(source), poolclass=NullPool)
    migrate.upgrade(engine)
    engine.dispose()
    server.stop(source)

    def copy(target: Path) -> Path:
        target.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["cp", "-a", str(source), str(target)], check=True)
        return target

    return copy


def _admin_script(url: str, script: str) -> None:
    """Run a script (several statements, DO blocks) as the superuser, in one transaction."""
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://", 1)) as conn:
        conn.execute(script)


def _with_database(url: str, name: str) -> str:
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def _admin_execute(admin_url: str, statement: str) -> None:
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with engine.connect() as conn:
        conn.execute(text(statement))
    engine.dispose()


@pytest.fixture(scope="session")
def database_factory(
    request: pytest.FixtureRequest, admin_url: str
) -> Iterator[Callable[..., str]]:
    """Create databases on the test server: empty, or cloned from the migrated template."""
    prefix = f"unitcat_test_{os.getpid()}"
    created: list[str] = []
    template = f"{prefix}_template"
    # the roles' script names every relation of every revision: written once, not per database
    database_sql = roles.database_sql()
    _admin_execute(admin_url, f'DROP DATABASE IF EXISTS "{template}" WITH (FORCE)')
    _admin_execute(admin_url, f'CREATE DATABASE "{template}"')
    created.append(template)
    _admin_script(_with_database(admin_url, template), database_sql)
    template_url = roles.url_as(_with_database(admin_url, template), roles.OWNER_ROLE)
    template_engine = create_engine(template_url, poolclass=NullPool)
    migrate.upgrade(template_engine)
    template_engine.dispose()

    def create(*, migrated: bool = True, bare: bool = False, clone_of: str | None = None) -> str:
        """The owner's URL of a new database (`bare`: the superuser's, roles not set up;
        `clone_of`: a copy of that database, made by `database_template`)."""
        name = f"{prefix}_{next(_counter)}"
        source = f' TEMPLATE "{clone_of or template}"' if migrated and not bare else ""
        _admin_execute(admin_url, f'CREATE DATABASE "{name}"{source}')
        created.append(name)
        url = _with_database(admin_url, name)
        if bare:
            return url
        _admin_script(url, database_sql)
        return roles.url_as(url, roles.OWNER_ROLE)

    yield create
    if request.config.stash[_EMBEDDED_KEY]:
        return  # the embedded server and its data directory go with the session
    for name in reversed(created):
        _admin_execute(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def database_template(
    database_factory: Callable[..., str], admin_url: str, unitcat_home: Path
) -> Callable[[Callable[[str], T]], tuple[str, T]]:
    """Build a catalogue once per session: `make(build)` runs `build(url)` in a new migrated
    database and returns (that database's name, what `build` returned); databases cloned from
    it (`database_factory(clone_of=name)`) start with its rows, in milliseconds.

    `build` runs with the session's UNITCAT_HOME whatever the test that first asks for the
    catalogue has set: what it writes relative to the home (AM panels under artifacts/) must
    be where every later test looks."""

    def make(build: Callable[[str], T]) -> tuple[str, T]:
        url = database_factory()
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("UNITCAT_HOME", str(unitcat_home))
            built = build(url)
        name = make_url(url).database
        assert name is not None
        # CREATE DATABASE … TEMPLATE needs the source without sessions
        _admin_execute(
            admin_url,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = '{name}' AND pid <> pg_backend_pid()",
        )
        return name, built

    return make


#: session fixtures that build a catalogue in a template database (`database_template`; their
#: value has its name as `database`): a test whose fixtures use one (e.g. `scored`) gets a
#: clone of that catalogue as `database_url` and `engine`
CATALOGUE_TEMPLATES = (
    "scored_template",
    "am_scored_template",
    "twoafc_template",
    "pipeline_extracted_template",
)


@pytest.fixture
def database_url(
    request: pytest.FixtureRequest,
    admin_url: str,
    database_factory: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[str]:
    """A fresh database at the newest schema (or a clone of the built catalogue the test asks
    for, `CATALOGUE_TEMPLATES`); DATABASE_URL points at it for in-process code. Dropped when
    the test ends, so the server holds a few databases, not one per test."""
    templates = [n for n in CATALOGUE_TEMPLATES if n in request.fixturenames]
    assert len(templates) <= 1, f"a test can have one built catalogue, not {templates}"
    clone_of = request.getfixturevalue(templates[0]).database if templates else None
    url = database_factory(clone_of=clone_of)
    monkeypatch.setenv("DATABASE_URL", url)
    yield url
    _admin_execute(admin_url, f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    eng = create_engine(database_url)
    yield eng
    eng.dispose()


@pytest.fixture
def reader_engine(database_url: str) -> Iterator[Engine]:
    """The test database as the SELECT-only reader, as user SQL connects."""
    eng = create_engine(roles.reader_url_for(database_url))
    yield eng
    eng.dispose()
