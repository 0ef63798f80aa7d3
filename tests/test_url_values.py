"""URL values a widget cannot take, and NUL bytes, give a one-line note, not an error box.

`?limit=999999999` or `?limit=-5` on Search (a number input of 10 … 100,000), `?mi=5`
on Layers (a slider of 0 … 1) and a NUL byte in any parameter (no database text can
hold one) stopped the page with a Streamlit error box.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine
from streamlit.testing.v1 import AppTest

from catalogue.db.readonly import run_readonly
from catalogue.errors import InputError
from tests.ui_fixtures import UICatalogue

APP = Path(__file__).resolve().parents[1] / "ui" / "app.py"


@pytest.fixture
def app(catalogue: UICatalogue, monkeypatch: pytest.MonkeyPatch) -> Callable[..., AppTest]:
    monkeypatch.setenv("DATABASE_URL", catalogue.url)

    def run(page: str, **query: str) -> AppTest:
        at = AppTest.from_file(str(APP), default_timeout=60)
        for name, value in query.items():
            at.query_params[name] = value
        at.switch_page(page)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        assert not at.error, [e.value for e in at.error]
        return at

    return run


def _notes(at: AppTest) -> str:
    return " ".join(w.value for w in at.warning)


@pytest.mark.parametrize(("given", "shown"), [("999999999", 100_000), ("-5", 10), ("10", 10)])
def test_a_search_limit_outside_its_range_is_moved_inside_with_a_note(
    app: Callable[..., AppTest], given: str, shown: int
) -> None:
    at = app("app_pages/search.py", limit=given)
    assert at.number_input(key="limit").value == shown
    if int(given) != shown:
        assert f"`limit={given}` is outside 10 … 100,000; showing {shown:,}." in _notes(at)
    else:
        assert "outside" not in _notes(at)  # the bound itself is inside


def test_a_layers_cut_off_outside_0_to_1_is_moved_inside(app: Callable[..., AppTest]) -> None:
    at = app("app_pages/layers.py", mi="5")
    assert at.slider(key="mi_cutoff").value == 1.0
    assert "`mi=5` is outside 0.0 … 1.0; showing 1.0." in _notes(at)


@pytest.mark.parametrize(
    ("page", "name"),
    [
        ("app_pages/search.py", "class"),
        ("app_pages/search.py", "model"),
        ("app_pages/unit.py", "layer"),
        ("app_pages/compare.py", "unit"),
        ("app_pages/sql.py", "sql"),
    ],
)
def test_a_nul_byte_in_a_url_parameter_is_a_note(
    app: Callable[..., AppTest], page: str, name: str
) -> None:
    at = app(page, **{name: "fc6\x00x", "a\x00b": "1"})
    notes = _notes(at)
    assert f"the URL parameter `{name}` holds a NUL byte; it is ignored." in notes
    assert "the URL parameter `a\\x00b` holds a NUL byte" in notes


def test_a_nul_byte_in_a_participant_code_asks_for_the_code(app: Callable[..., AppTest]) -> None:
    at = app("app_pages/rate.py", participant="p\x00q")
    assert "participant" not in at.query_params
    assert not [c.value for c in at.sidebar.caption if c.value.startswith("Participant:")]


def test_user_sql_with_a_nul_byte_is_one_line(reader_engine: Engine) -> None:
    with pytest.raises(InputError, match="contains a NUL byte"):
        run_readonly(reader_engine, "SELECT 'a\x00b'")
