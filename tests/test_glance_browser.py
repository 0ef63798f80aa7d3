"""A unit's story at a glance, in a real browser (Debian Chromium via playwright, the
server and browser fixtures of tests/test_browser.py): the summary line, the top images
and the AM panel on the first screen of a laptop-sized window, heat maps over a conv
unit's top images, the AM panel enlarged, and the layer grid in the order SQL gives.
"""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from tests.test_browser import WAIT_MS, _goto, browser, screenshots, server  # noqa: F401
from tests.ui_fixtures import UICatalogue

#: A laptop's window: what "the first screen" means here.
VIEWPORT = {"width": 1400, "height": 900}

pytestmark = pytest.mark.browser


def _unit_url(base: str, catalogue: UICatalogue, layer: str, unit: int, extra: str = "") -> str:
    return f"{base}/unit?model=toynet&layer={layer}&unit={unit}&run_id={catalogue.score_run}{extra}"


#: The rectangles (y, bottom) of the image captioned with text starting with `prefix`
#: (the first such caption) and of that caption, in window coordinates.
CAPTIONED = """(prefix) => {
  const caption = [...document.querySelectorAll('*')].find(
    e => e.children.length === 0 && e.textContent.trim().startsWith(prefix));
  if (!caption) return null;
  let holder = caption;
  while (holder && !holder.querySelector('img')) holder = holder.parentElement;
  const image = holder.querySelector('img').getBoundingClientRect();
  const text = caption.getBoundingClientRect();
  return {image: [image.y, image.bottom], caption: [text.y, text.bottom]};
}"""


def test_the_summary_top_images_and_am_panel_are_on_the_first_screen(
    server: str,  # noqa: F811
    browser: object,  # noqa: F811
    catalogue: UICatalogue,
) -> None:
    page = browser.new_page(viewport=VIEWPORT)  # type: ignore[attr-defined]
    _goto(page, _unit_url(server, catalogue, "fc6", 3), "toynet · fc6 · unit 3", "glance-unit")
    page.evaluate("window.scrollTo(0, 0)")  # type: ignore[attr-defined]
    summary = page.get_by_text("monarch butterfly in its top 60").first  # type: ignore[attr-defined]
    box = summary.bounding_box()
    assert box is not None and box["y"] + box["height"] <= VIEWPORT["height"], box
    for prefix in ("#1 monarch butterfly", "toy-am"):  # the rank-1 top image, the AM panel
        where = page.evaluate(CAPTIONED, prefix)  # type: ignore[attr-defined]
        assert where is not None, prefix
        assert 0 <= where["image"][0] < where["image"][1] <= VIEWPORT["height"], (prefix, where)
        assert where["caption"][1] <= VIEWPORT["height"], (prefix, where)
    # the summary's numbers are the stored measures (checked in tests/test_unit_glance.py)
    assert "77.6% monarch butterfly in its top 60" in summary.inner_text()
    page.close()


def test_a_conv_units_top_images_get_heat_maps_on_request(
    server: str,  # noqa: F811
    browser: object,  # noqa: F811
    catalogue: UICatalogue,
) -> None:
    page = browser.new_page(viewport=VIEWPORT)  # type: ignore[attr-defined]
    _goto(page, _unit_url(server, catalogue, "conv5", 1), "toynet · conv5 · unit 1", "glance-conv")
    plain = page.locator('[data-testid="stImage"]').filter(has_text="#1 ").first  # type: ignore[attr-defined]
    before = plain.locator("img").first.get_attribute("src")
    assert page.get_by_text("Heat: the unit's").count() == 0  # type: ignore[attr-defined]
    page.get_by_text("Heat maps", exact=True).click()  # type: ignore[attr-defined]
    page.get_by_text("Heat: the unit's 3 × 3 spatial map (kept in the store)").wait_for(  # type: ignore[attr-defined]
        timeout=WAIT_MS
    )
    _goto(page, page.url, "Heat: the unit's 3 × 3", "glance-heat")  # type: ignore[attr-defined]
    assert "heat=1" in page.url  # type: ignore[attr-defined]
    heated = page.locator('[data-testid="stImage"]').filter(has_text="#1 ").first  # type: ignore[attr-defined]
    assert heated.locator("img").first.get_attribute("src") != before
    assert page.locator('[data-testid="stImage"] img').count() >= 20  # type: ignore[attr-defined]
    # a fully connected unit has no spatial map: no switch
    _goto(page, _unit_url(server, catalogue, "fc6", 4, "&heat=1"), "fc6 · unit 4", "glance-fc")
    assert page.get_by_text("Heat maps", exact=True).count() == 0  # type: ignore[attr-defined]
    page.close()


def test_the_am_panel_enlarges_by_whole_pixels(
    server: str,  # noqa: F811
    browser: object,  # noqa: F811
    catalogue: UICatalogue,
) -> None:
    page = browser.new_page(viewport=VIEWPORT)  # type: ignore[attr-defined]
    _goto(page, _unit_url(server, catalogue, "fc6", 3), "toynet · fc6 · unit 3", "glance-am")
    panel = page.locator('[data-testid="stImage"]').filter(has_text="toy-am").first  # type: ignore[attr-defined]
    shown = panel.locator("img").evaluate("i => i.getBoundingClientRect().width")
    page.get_by_role("button", name="Enlarge").click()  # type: ignore[attr-defined]
    dialog = page.get_by_role("dialog")  # type: ignore[attr-defined]
    dialog.get_by_text("enlarged by whole pixels").wait_for(timeout=WAIT_MS)
    big = dialog.locator('[data-testid="stImage"] img').first
    big.wait_for(timeout=WAIT_MS)
    natural, height, width = big.evaluate(
        "i => [i.naturalWidth, i.naturalHeight, i.getBoundingClientRect().width]"
    )
    assert (natural, height) == (96 * 13, 32 * 13)  # the 96 × 32 file, 13 × to ≥ 1,200 px
    assert width > shown
    assert dialog.get_by_role("button", name="Full resolution (PNG)").count() == 1
    page.close()


def test_the_layer_grid_shows_the_units_in_the_order_sql_gives(
    server: str,  # noqa: F811
    browser: object,  # noqa: F811
    catalogue: UICatalogue,
) -> None:
    engine = create_engine(catalogue.url, poolclass=NullPool)
    with engine.connect() as conn:
        expected = (
            conn.execute(
                text(
                    "SELECT u.unit_index FROM unit_metrics um JOIN unit u ON u.id = um.unit_id "
                    "JOIN layer l ON l.id = u.layer_id WHERE l.name = 'conv5' AND um.run_id = :r "
                    "ORDER BY um.false_alarm_rate DESC NULLS LAST, u.unit_index"
                ),
                {"r": catalogue.score_run},
            )
            .scalars()
            .all()
        )
        with_images = conn.execute(
            text(
                "SELECT count(DISTINCT t.unit_id) FROM unit_top_image t "
                "JOIN unit u ON u.id = t.unit_id JOIN layer l ON l.id = u.layer_id "
                "WHERE l.name = 'conv5' AND t.run_id = :r"
            ),
            {"r": catalogue.score_run},
        ).scalar_one()
    engine.dispose()
    page = browser.new_page(viewport={"width": 1400, "height": 1400})  # type: ignore[attr-defined]
    _goto(
        page,
        f"{server}/layer?model=toynet&layer=conv5&run_id={catalogue.score_run}"
        "&sort=false_alarm_rate&desc=1",
        "Units 1–6 of 6",
        "layer-grid",
    )
    links = page.locator("a").filter(has_text="conv5.")  # type: ignore[attr-defined]
    labels = [t.strip() for t in links.all_inner_texts()]
    assert labels == [f"conv5.{u} ›" for u in expected]
    assert page.locator('[data-testid="stImage"] img').count() == with_images  # type: ignore[attr-defined]
    links.first.click()
    page.get_by_text(f"toynet · conv5 · unit {expected[0]}").wait_for(timeout=WAIT_MS)  # type: ignore[attr-defined]
    page.get_by_text("All of conv5 as a grid").click()  # type: ignore[attr-defined]
    page.get_by_text("Units 1–6 of 6, by unit index").wait_for(timeout=WAIT_MS)  # type: ignore[attr-defined]
    assert f"run_id={catalogue.score_run}" in page.url  # type: ignore[attr-defined]
    page.close()
