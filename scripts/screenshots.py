"""Screenshots of every UI page on the current catalogue, for the README.

Starts the app (`streamlit run ui/app.py`) on the catalogue that DATABASE_URL /
UNITCAT_HOME select, opens each page in headless Debian Chromium and writes
PNGs to docs/screenshots/. The Unit page shows the precision "detector" with
the highest false-alarm rate. Run after `make demo`:

    .venv/bin/python scripts/screenshots.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from catalogue.db.engine import database_url, get_engine
from catalogue.errors import NotFound
from catalogue.query.report import showcase_unit
from tests.test_browser import APP, CHROMIUM_FLAGS, SETTLED, _free_port, ensure_chromium

OUT = Path(__file__).resolve().parents[1] / "docs" / "screenshots"


def _showcase_unit() -> tuple[int, int]:
    found = showcase_unit(get_engine())
    if found is None:
        raise NotFound("no precision detector in the catalogue to show; run `make demo` first.")
    return found


def main() -> None:
    url = database_url()
    unit_id, run_id = _showcase_unit()
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(APP), "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1",
         "--browser.gatherUsageStats", "false", "--client.toolbarMode", "viewer"],
        env={**os.environ, "DATABASE_URL": url},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{base}/_stcore/health", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        from playwright.sync_api import sync_playwright

        OUT.mkdir(parents=True, exist_ok=True)
        pages = {
            "search": "/",
            "unit": f"/unit?unit_id={unit_id}&run_id={run_id}",
            "layers": "/layers",
            "measures": "/measures",
        }
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=str(ensure_chromium()), args=CHROMIUM_FLAGS
            )
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            for name, path in pages.items():
                page.goto(base + path)
                page.wait_for_function(SETTLED, timeout=120_000)
                time.sleep(1.0)
                page.screenshot(path=str(OUT / f"{name}.png"), full_page=False)
                print(f"wrote {OUT / name}.png")
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=20)


if __name__ == "__main__":
    main()
