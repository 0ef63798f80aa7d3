"""Text from a URL never becomes Markdown on a page.

The pages repeat URL parameters they do not understand in notes, and the Rate page
shows the participant code it was given. A value such as `![a](http://host/x.png)`
rendered as Markdown makes every visitor's browser fetch that address (and a link
or a `:red[…]` directive would be as bad). The Markdown each page sends is parsed
here with a CommonMark parser: text from the URL must come out as text or code,
never an image, a link or HTML. (tests/test_browser.py checks the same in Chromium,
and that no request leaves the machine.)
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from markdown_it import MarkdownIt
from streamlit.testing.v1 import AppTest

from tests.ui_fixtures import UICatalogue
from ui.urlstate import code, literal

APP = Path(__file__).resolve().parents[1] / "ui" / "app.py"
TIMEOUT = 60
HOST = "203.0.113.9"  # TEST-NET-3: reserved for documentation, never routed
IMAGE = f"![a](http://{HOST}/x.png)"
PAYLOADS = (
    IMAGE,
    f"`{IMAGE}`",
    f"``x``{IMAGE}",
    f"<img src=http://{HOST}/y.png>",
    f"[link](http://{HOST}/)",
    f"<http://{HOST}/z>",
    f"x\n\n{IMAGE}",
    ":red[red] :material/home: $x^2$",
    f"see http://{HOST}/z or www.example.org or me@example.org",
)
_MARKDOWN = MarkdownIt("commonmark")


def _active(source: str) -> list[str]:
    """What in `source` Markdown would turn into more than text: images, links, HTML."""
    found = []
    for token in _MARKDOWN.parse(source):
        for child in token.children or []:
            if child.type in ("image", "link_open", "html_inline"):
                found.append(child.type)
        if token.type == "html_block":
            found.append(token.type)
    return found


@pytest.mark.parametrize("payload", PAYLOADS)
def test_literal_and_code_show_any_text_as_text(payload: str) -> None:
    assert _active(payload) or "\n" in payload or ":" in payload  # the payloads are real
    for shown in (literal(payload), code(payload), f"**{literal(payload)}** and {code(payload)}"):
        assert _active(shown) == [], shown
        assert "\n" not in shown
    # GitHub-style bare links are found after escapes are resolved: none may be left
    unescaped = literal(payload).replace("\\", "")
    assert re.search(r"(?i)(https?://|www\.|\w@\w)", unescaped) is None, unescaped
    # outside a code span, Streamlit's own Markdown (colours, icons, LaTeX) is escaped too
    assert ":red[" not in literal(payload) and ":material/" not in literal(payload)
    assert re.search(r"(?<!\\)\$", literal(payload)) is None  # every $ escaped


def test_literal_keeps_plain_words_and_shows_a_nul_byte() -> None:
    assert literal("school bus") == "school bus"
    assert literal("a\0b") == "a\\\\x00b"  # shown as a\x00b
    assert code("conv5") == "`conv5`"


@pytest.fixture
def app(catalogue: UICatalogue, monkeypatch: pytest.MonkeyPatch) -> Callable[..., AppTest]:
    monkeypatch.setenv("DATABASE_URL", catalogue.url)

    def run(page: str, **query: str) -> AppTest:
        at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
        for name, value in query.items():
            at.query_params[name] = value
        at.switch_page(page)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    return run


def _markdown(at: AppTest) -> list[str]:
    """The Markdown source of every element that renders Markdown."""
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    parts += (
        [w.value for w in at.warning] + [i.value for i in at.info] + [e.value for e in at.error]
    )
    parts += [c.value for c in at.sidebar.caption]
    return parts


@pytest.mark.parametrize(
    ("page", "name"),
    [
        ("app_pages/search.py", "sort"),
        ("app_pages/search.py", "preset"),
        ("app_pages/layers.py", "mi"),
        ("app_pages/unit.py", "unit_id"),
        ("app_pages/unit.py", "highlight"),
        ("app_pages/unit.py", "layer"),
        ("app_pages/compare.py", "unit"),
        ("app_pages/compare.py", "model"),
    ],
)
def test_a_url_value_in_a_note_is_text(
    app: Callable[..., AppTest], catalogue: UICatalogue, page: str, name: str
) -> None:
    unit = {"unit_id": str(catalogue.unit_ids[("fc6", 3)])} if name == "highlight" else {}
    unit |= {"model": "toynet", "unit": "3"} if name == "layer" else {}
    for payload in (IMAGE, f"`{IMAGE}`", f"x\n\n{IMAGE}"):
        at = app(page, **unit, **{name: payload, IMAGE: "1"})  # and a parameter named so
        shown = _markdown(at)
        assert any("x.png" in part.replace("\\", "") for part in shown), (
            shown
        )  # the note repeats it …
        for part in shown:
            assert _active(part) == [], part  # … as text


def test_a_participant_code_from_the_url_is_text(app: Callable[..., AppTest]) -> None:
    at = app("app_pages/rate.py", participant=IMAGE)
    shown = [c.value for c in at.sidebar.caption]
    assert any("x.png" in part.replace("\\", "") for part in shown), shown
    for part in _markdown(at):
        assert _active(part) == [], part


def test_a_study_name_from_the_url_is_text_in_the_2afc_mode(app: Callable[..., AppTest]) -> None:
    at = app("app_pages/rate.py", protocol="2afc", study_name=IMAGE)
    shown = _markdown(at)
    assert any("x.png" in part.replace("\\", "") for part in shown), shown  # named …
    for part in shown:
        assert _active(part) == [], part  # … as text
