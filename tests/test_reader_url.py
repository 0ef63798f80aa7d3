"""The reader's URL never carries the owner's password.

Handing out `unitcat db url --reader` (the read-only URL, for psql or pandas)
must not hand out the write role's password, and user SQL must not connect with
it either: the reader's password comes from its own source (UNITCAT_READER_URL,
~/.pgpass, PGPASSWORD) or there is none.
"""

from __future__ import annotations

import pytest
from sqlalchemy.engine import make_url

from catalogue.config import same_database
from catalogue.db import roles
from catalogue.db.engine import get_reader_engine, reader_database_url
from tests.cli import unitcat

SECRET = "owner-secret-7f3a"


def _with_password(url: str) -> str:
    return make_url(url).set(password=SECRET).render_as_string(hide_password=False)


def _with_password_parameter(url: str) -> str:
    parsed = make_url(url)
    return parsed.update_query_dict({"password": SECRET}).render_as_string(hide_password=False)


@pytest.mark.parametrize("carry", [_with_password, _with_password_parameter])
def test_db_url_reader_never_prints_the_owners_password(database_url: str, carry) -> None:
    owner_url = carry(database_url)
    assert SECRET in owner_url
    printed = unitcat("db", "url", "--reader", env={"DATABASE_URL": owner_url})
    assert printed.returncode == 0, printed.stderr
    reader_url = printed.stdout.strip()
    assert SECRET not in printed.stdout + printed.stderr
    parsed = make_url(reader_url)
    assert parsed.username == roles.READER_ROLE and parsed.password is None
    assert parsed.database == make_url(database_url).database
    assert same_database(reader_url, owner_url)
    owner = unitcat("db", "url", env={"DATABASE_URL": owner_url})  # the owner's own URL keeps it
    assert SECRET in owner.stdout


def test_user_sql_connects_without_the_owners_password(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", _with_password_parameter(_with_password(database_url)))
    assert SECRET not in reader_database_url()
    engine = get_reader_engine()
    assert engine.url.password is None and "password" not in engine.url.query
    assert engine.url.username == roles.READER_ROLE
    queried = unitcat(
        "query",
        "SELECT current_user AS who",
        "--csv",
        env={"DATABASE_URL": _with_password(database_url)},
    )
    assert queried.returncode == 0, queried.stderr
    assert queried.stdout.splitlines() == ["who", roles.READER_ROLE]


def test_the_readers_own_password_comes_from_unitcat_reader_url(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    own = make_url(roles.url_as(database_url, roles.READER_ROLE)).set(password="reader-pw")
    monkeypatch.setenv("DATABASE_URL", _with_password(database_url))
    monkeypatch.setenv("UNITCAT_READER_URL", own.render_as_string(hide_password=False))
    url = make_url(reader_database_url())
    assert url.password == "reader-pw"


def test_a_database_url_with_spaces_around_it_is_used_as_written_inside(database_url: str) -> None:
    """A pasted value or an .env line may carry spaces or a line break around the URL."""
    padded = f"  {database_url} \n"
    printed = unitcat("db", "url", env={"DATABASE_URL": padded})
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout.strip() == database_url
    queried = unitcat("query", "SELECT 1 AS one", "--csv", env={"DATABASE_URL": padded})
    assert queried.returncode == 0, queried.stderr
    assert queried.stdout.splitlines() == ["one", "1"]
    reader = roles.url_as(database_url, roles.READER_ROLE)
    both = unitcat(
        "query", "SELECT current_user AS who", "--csv",
        env={"DATABASE_URL": padded, "UNITCAT_READER_URL": f"\t{reader} "},
    )  # fmt: skip
    assert both.returncode == 0, both.stderr
    assert both.stdout.splitlines() == ["who", roles.READER_ROLE]
