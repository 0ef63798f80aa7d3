"""The app in a real browser: `streamlit run` as a subprocess on a test catalogue, driven
by headless Debian Chromium through playwright's Python API (never `playwright install`).

Every page must show its title and no Streamlit exception box; screenshots are kept
under test-artifacts/screenshots/ for a person to look at.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ui_fixtures import UICatalogue

REPO = Path(__file__).resolve().parents[1]
APP = REPO / "ui" / "app.py"
SCREENSHOTS = REPO / "test-artifacts" / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
STARTUP_S = 90  # generous: the machine is shared; this bounds a hung server, not speed
WAIT_MS = 60_000


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_healthy(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_S
    url = f"http://127.0.0.1:{port}/_stcore/health"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the UI server exited with {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.25)
    pytest.fail(f"the UI server did not answer on {url} within {STARTUP_S} s:\n{log.read_text()}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def ensure_chromium() -> Path:
    """Debian's chromium, installed with apt-get when missing (or a clear failure)."""
    if CHROMIUM.exists():
        return CHROMIUM
    if shutil.which("apt-get") is None:
        pytest.fail(f"{CHROMIUM} is missing and apt-get is not available; install Chromium.")
    result = subprocess.run(
        ["apt-get", "install", "-y", "chromium"], capture_output=True, text=True, check=False
    )
    if result.returncode != 0 or not CHROMIUM.exists():
        tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        pytest.fail(
            f"{CHROMIUM} is missing and `apt-get install -y chromium` failed "
            f"({' / '.join(tail)}); install it as root (apt-get update && apt-get install -y "
            "chromium) and run the browser tests again."
        )
    return CHROMIUM


@pytest.fixture(scope="module")
def server(catalogue: UICatalogue, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = _free_port()
    log = tmp_path_factory.mktemp("streamlit") / "server.log"
    env = {**os.environ, "DATABASE_URL": catalogue.url}
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP),
        "--server.headless",
        "true",
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
        "--client.toolbarMode",
        "viewer",
    ]
    with open(log, "wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
    try:
        _wait_healthy(port, process, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop(process)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    executable = ensure_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=str(executable), args=CHROMIUM_FLAGS)
        yield instance
        instance.close()


SETTLED = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  if (!app || app.getAttribute('data-test-script-state') !== 'notRunning') return false;
  if (document.querySelector('[data-testid="stSkeleton"], [data-testid="stSkeletonElement"]'))
    return false;
  const shown = (selector) => [...document.querySelectorAll(selector)].filter(e => e.checkVisibility());
  if (!shown('[data-testid="stVegaLiteChart"]').every(c => c.querySelector('canvas, svg')))
    return false;
  return shown('[data-testid="stDataFrame"]').every(g => g.querySelector('canvas'));
}"""


STATE = """() => ({
  script: document.querySelector('[data-testid="stApp"]')?.getAttribute('data-test-script-state'),
  skeletons: document.querySelectorAll('[data-testid="stSkeleton"], [data-testid="stSkeletonElement"]').length,
  charts: [...document.querySelectorAll('[data-testid="stVegaLiteChart"]')].map(c => !!c.querySelector('canvas, svg')),
  grids: [...document.querySelectorAll('[data-testid="stDataFrame"]')].map(g => !!g.querySelector('canvas')),
})"""


def _settle(page: object) -> None:
    """Wait until the script finished and every chart and table has drawn."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(SETTLED, timeout=WAIT_MS)  # type: ignore[attr-defined]
    except PlaywrightTimeout:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "unsettled.png"), full_page=True)  # type: ignore[attr-defined]
        pytest.fail(f"{page.url} did not finish drawing: {page.evaluate(STATE)}")  # type: ignore[attr-defined]


def _check(page: object, screenshot: str) -> None:
    """Wait for everything to draw, keep a screenshot, and fail on a Streamlit exception box."""
    _settle(page)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{screenshot}.png"), full_page=True)  # type: ignore[attr-defined]
    exceptions = page.locator('[data-testid="stException"]')  # type: ignore[attr-defined]
    assert exceptions.count() == 0, exceptions.first.inner_text()


def _goto(page: object, url: str, title: str, screenshot: str) -> None:
    page.goto(url)  # type: ignore[attr-defined]
    page.get_by_text(title, exact=False).first.wait_for(timeout=WAIT_MS)  # type: ignore[attr-defined]
    _check(page, screenshot)


@pytest.mark.browser
def test_every_page_renders_in_chromium(
    server: str, browser: object, catalogue: UICatalogue
) -> None:
    """Search (with a preset in the URL) and Unit by URL; the other pages through the
    sidebar, as a user moves between them (no page reload)."""
    page = browser.new_page(viewport={"width": 1400, "height": 2000})  # type: ignore[attr-defined]
    _goto(page, server + "/?preset=misleading", "Search units", "search")
    page.get_by_text("3 units match").wait_for(timeout=WAIT_MS)

    unit = catalogue.unit_ids[("fc6", 3)]
    _goto(
        page,
        f"{server}/unit?unit_id={unit}&run_id={catalogue.score_run}",
        "toynet · fc6 · unit 3",
        "unit",
    )
    charts = page.locator('[data-testid="stVegaLiteChart"]')
    assert charts.count() == 3  # the jitter plot and the two histograms
    assert page.locator('[data-testid="stImage"] img').count() >= 20  # top-image thumbnails

    for link, title in (
        ("Layers", "Layers"),
        ("Measures", "Measures"),
        ("Runs", "Runs"),
        ("SQL", "SQL console"),
    ):
        page.locator('[data-testid="stSidebarNav"]').get_by_text(link, exact=True).click()
        page.get_by_role("heading", name=title).first.wait_for(timeout=WAIT_MS)
        _check(page, link.lower())
    page.close()


@pytest.mark.browser
def test_clicking_a_search_result_opens_the_unit(
    server: str, browser: object, catalogue: UICatalogue
) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 2000})  # type: ignore[attr-defined]
    _goto(page, server + "/?preset=localist", "1 unit match", "search-localist")
    grid = page.locator('[data-testid="stDataFrame"]').first
    box = grid.bounding_box()
    assert box is not None
    # the first data row's selection checkbox (row-marker column, below the header row)
    page.mouse.click(box["x"] + 18, box["y"] + 35 + 17)
    page.get_by_text("toynet · fc6 · unit 5").wait_for(timeout=WAIT_MS)
    _check(page, "unit-from-search")
    assert f"unit_id={catalogue.unit_ids[('fc6', 5)]}" in page.url
    assert f"run_id={catalogue.score_run}" in page.url
    page.close()


def test_unitcat_ui_serves_the_app(database_url: str) -> None:
    """`unitcat ui --port P` starts Streamlit headless on that port."""
    port = _free_port()
    unitcat = str(Path(sys.executable).with_name("unitcat"))
    log = Path(os.environ["UNITCAT_HOME"]) / f"unitcat-ui-{port}.log"
    env = {**os.environ, "DATABASE_URL": database_url}
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [unitcat, "ui", "--port", str(port), "--address", "127.0.0.1"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_healthy(port, process, log)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
            assert "<title>Streamlit</title>" in response.read().decode()
    finally:
        _stop(process)
    assert f"unitcat UI at http://127.0.0.1:{port}" in log.read_text()
    assert process.returncode == 0
