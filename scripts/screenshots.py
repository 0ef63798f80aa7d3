"""Screenshots of every UI page on the current catalogue, for the README.

Starts the app (`streamlit run ui/serve.py`, as `unitcat ui` does) on the catalogue that DATABASE_URL /
UNITCAT_HOME select, opens each page in headless Debian Chromium and writes
PNGs to docs/screenshots/. The Unit page shows the precision "detector" with
the highest false-alarm rate (constant units left out), its precision class
highlighted, as a user arriving from the misleading preset sees it. Run after
`make demo` (scripts/readme_figures.py runs it too):

    .venv/bin/python scripts/screenshots.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script: the repository's packages and tests
    sys.path.insert(0, str(REPO))

from catalogue.db.engine import database_url, get_engine  # noqa: E402
from catalogue.errors import NotFound  # noqa: E402
from catalogue.query.report import showcase_unit  # noqa: E402
from tests.test_browser import CHROMIUM_FLAGS, SERVER, SETTLED, _free_port, ensure_chromium  # noqa: E402

OUT = REPO / "docs" / "screenshots"


def _showcase_unit() -> tuple[int, int]:
    found = showcase_unit(get_engine())
    if found is None:
        raise NotFound("no precision detector in the catalogue to show; run `make demo` first.")
    return found


def pages_for(unit_id: int, run_id: int, highlight: str = "misleading") -> dict[str, str]:
    """The pages to photograph: name -> path (with query parameters)."""
    unit = f"/unit?unit_id={unit_id}&run_id={run_id}&highlight={highlight}"
    return {
        "search": "/?preset=misleading",
        "unit": unit,
        "unit-verdicts": unit,
        "layers": f"/layers?run_id={run_id}",
        "measures": f"/measures?run_id={run_id}",
    }


#: Pages photographed scrolled down to a text: name -> the text to bring into view.
SCROLL_TO = {"unit-verdicts": "Is it an object detector?"}
#: Bring an element to the top of Streamlit's scrolling container, with a margin above it.
SCROLL_JS = """e => {
  e.scrollIntoView({block: 'start'});
  let box = e.parentElement;
  while (box && !(box.scrollHeight > box.clientHeight
                  && getComputedStyle(box).overflowY !== 'visible')) box = box.parentElement;
  if (box) box.scrollTop -= 140;
}"""


def take(pages: dict[str, str], out: Path = OUT, *, height: int = 1000) -> list[Path]:
    """Serve the app on the configured catalogue and save one PNG per page under `out`:
    the first 1400 × `height` pixels (Streamlit scrolls inside the page, so a taller
    window, not a full-page screenshot, shows more of it)."""
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(SERVER), "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1",
         "--browser.gatherUsageStats", "false", "--client.toolbarMode", "viewer"],
        env={**os.environ, "DATABASE_URL": database_url(), "PYTHONPATH": str(REPO)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    written: list[Path] = []
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{base}/_stcore/health", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        from playwright.sync_api import sync_playwright

        out.mkdir(parents=True, exist_ok=True)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=str(ensure_chromium()), args=CHROMIUM_FLAGS
            )
            page = browser.new_page(viewport={"width": 1400, "height": height})
            for name, path in pages.items():
                page.goto(base + path)
                page.wait_for_function(SETTLED, timeout=180_000)
                if name in SCROLL_TO:
                    page.get_by_text(SCROLL_TO[name], exact=True).evaluate(SCROLL_JS)
                time.sleep(1.0)
                target = out / f"{name}.png"
                page.screenshot(path=str(target))
                written.append(target)
                print(f"wrote {target}")
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=20)
    return written


def main() -> None:
    unit_id, run_id = _showcase_unit()
    take(pages_for(unit_id, run_id))


if __name__ == "__main__":
    main()
