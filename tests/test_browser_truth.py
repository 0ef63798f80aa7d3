"""What a reader sees in a real browser must be what the catalogue holds: figures that
download whatever their size, jitter plots drawn with room for their points, baselines
marked in the result grid, deep links without failed requests, and study links that
never leave the Rate page.

The app runs with `streamlit run` on the catalogues of tests/ui_truth_fixtures.py
(more than 5,000 scored images, a trained model and its random-weights baseline) and
tests/ui_fixtures.py, driven by headless Debian Chromium as in tests/test_browser.py.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.test_browser import (  # noqa: F401  (fixtures)
    WAIT_MS,
    _goto,
    _settle,
    _start_app,
    _start_unitcat_ui,
    _stop,
    browser,
    screenshots,
)
from tests.ui_truth_fixtures import BigCatalogue, big_catalogue  # noqa: F401
from ui.plots import CLASS_COLOUR


@pytest.fixture(scope="module")
def big_server(
    big_catalogue: BigCatalogue,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    process, base = _start_app(big_catalogue.url, tmp_path_factory.mktemp("streamlit-big"))
    try:
        yield base
    finally:
        _stop(process)


def _download_button(page: object, label: str) -> object:
    """The page's first download button of `label` (not the chart toolbar's own "Download
    as PNG", which Vega's canvas covers until the chart is hovered)."""
    buttons = page.locator('[data-testid="stDownloadButton"] button')  # type: ignore[attr-defined]
    return buttons.filter(has_text=label).first


def _download(page: object, button: object) -> bytes:
    with page.expect_download(timeout=WAIT_MS) as info:  # type: ignore[attr-defined]
        button.click()  # type: ignore[attr-defined]
    return Path(info.value.path()).read_bytes()


@pytest.mark.browser
def test_a_jitter_plot_of_more_than_5000_points_downloads_as_svg_and_png(
    big_server: str,
    browser: object,  # noqa: F811
    big_catalogue: BigCatalogue,  # noqa: F811
) -> None:
    """The Unit page's jitter plot of bignet.fc1.0 draws 5,300 points (every red-coat image
    and 5,000 others); both of its buttons give a file holding them."""
    context = browser.new_context(  # type: ignore[attr-defined]
        viewport={"width": 1400, "height": 2000}, accept_downloads=True
    )
    page = context.new_page()
    _goto(
        page,
        f"{big_server}/unit?model=bignet&layer=fc1&unit=0&run_id={big_catalogue.score_run}",
        "bignet · fc1 · unit 0",
        "big-unit",
    )
    page.get_by_text("5,000 of 5,700 other images").first.wait_for(timeout=WAIT_MS)
    svg = _download(page, _download_button(page, "SVG"))
    assert svg.startswith(b"<svg")
    assert svg.count(b"<path") > 5300
    _settle(page)  # the page may redraw after a download; click the PNG button once it has
    png = _download(page, _download_button(page, "PNG"))
    assert Image.open(io.BytesIO(png)).format == "PNG"
    context.close()


def _dark_rows(shot: bytes, colour: str) -> np.ndarray:
    """Row indices of a screenshot that hold pixels of `colour` (within a small tolerance)."""
    pixels = np.asarray(Image.open(io.BytesIO(shot)).convert("RGB")).astype(int)
    target = np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)])
    near = np.abs(pixels - target).max(axis=2) <= 24
    return np.flatnonzero(near.any(axis=1))


@pytest.mark.browser
def test_compare_draws_its_jitter_plots_with_room_for_the_points(
    big_server: str,
    browser: object,  # noqa: F811
    big_catalogue: BigCatalogue,  # noqa: F811
) -> None:
    """Each plot's points spread over the plot's height (the jitter is uniform in [0, 1]):
    a chart squeezed to its legends and axis draws them on one line."""
    page = browser.new_page(viewport={"width": 1400, "height": 2400})  # type: ignore[attr-defined]
    _goto(
        page,
        f"{big_server}/compare?unit=bignet:fc1.0&unit=bignet:fc1.2",
        "Activations on one scale",
        "big-compare",
    )
    charts = page.locator('[data-testid="stVegaLiteChart"]')
    assert charts.count() == 2
    for i in range(2):
        chart = charts.nth(i)
        chart.scroll_into_view_if_needed()
        rows = _dark_rows(chart.screenshot(), CLASS_COLOUR)
        spread = int(rows.max() - rows.min()) if rows.size else 0
        assert spread >= 150, f"chart {i}: the highlighted class's points span {spread} px"
    page.close()


def _only_the_rate_page(page: object) -> None:
    """The page shows the Rate page alone: its title, no navigation, nothing of the app."""
    page.get_by_text("Rate AM panels").first.wait_for(timeout=WAIT_MS)  # type: ignore[attr-defined]
    _settle(page)
    assert page.locator('[data-testid="stSidebarNav"]').count() == 0  # type: ignore[attr-defined]
    text = page.locator("body").inner_text()  # type: ignore[attr-defined]
    for other in ("Search units", "Page not found", "red dress", "bignet"):
        assert other not in text, other


@pytest.mark.browser
def test_a_study_link_keeps_the_browser_on_the_rate_page(
    big_server: str,
    browser: object,  # noqa: F811
) -> None:
    """After a study link (?study=1) on a normal server, an edited address (another page,
    the parameter dropped, a unit's deep link) reloads the Rate page, not the app; a
    browser that never opened a study link still gets the app."""
    context = browser.new_context(viewport={"width": 1400, "height": 1200})  # type: ignore[attr-defined]
    page = context.new_page()
    page.goto(f"{big_server}/?study=1")
    _only_the_rate_page(page)
    for address in ("layers", "", "unit?model=bignet&layer=fc1&unit=0", "sql"):
        page.goto(f"{big_server}/{address}")
        _only_the_rate_page(page)
    context.close()
    other = browser.new_context(viewport={"width": 1400, "height": 1200})  # type: ignore[attr-defined]
    fresh = other.new_page()
    _goto(fresh, f"{big_server}/layers", "Layers", "study-not-pinned")
    assert fresh.locator('[data-testid="stSidebarNav"]').count() == 1
    other.close()


@pytest.mark.browser
def test_the_study_server_answers_its_own_rate_path(
    big_catalogue: BigCatalogue,  # noqa: F811
    browser: object,  # noqa: F811
) -> None:
    """`unitcat ui --study` serves the Rate page at /rate (the address its links use) and at
    every other address of the app, never a "Page not found" box."""
    process, port, _log = _start_unitcat_ui(big_catalogue.url, "--study")
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1200})  # type: ignore[attr-defined]
        for address in ("rate", "rate?study=1&protocol=2afc", "layers", ""):
            page.goto(f"http://127.0.0.1:{port}/{address}")
            page.locator('[data-testid="stApp"]').first.wait_for(timeout=WAIT_MS)
            _settle(page)
            text = page.locator("body").inner_text()
            assert "Page not found" not in text, address
            assert page.locator('[data-testid="stSidebarNav"]').count() == 0
            assert "Search units" not in text
        page.close()
    finally:
        _stop(process)
