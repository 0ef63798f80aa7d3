"""The app in a real browser: `streamlit run` as a subprocess on a test catalogue, driven
by headless Debian Chromium through playwright's Python API (never `playwright install`).

Every page must show its title and no Streamlit exception box; screenshots are kept as
test artefacts for a person to look at, in test-artifacts/screenshots/ (or
$UNITCAT_SCREENSHOTS), whose path the run prints at its end. (Not in the pytest
temporary directory: this suite's conftest deletes it when the session ends.)
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cluster_gates import PATIENCE
from tests.ui_fixtures import UICatalogue

REPO = Path(__file__).resolve().parents[1]
SERVER = REPO / "ui" / "serve.py"  # what `unitcat ui` runs: the app (ui/app.py) in st.App
SCREENSHOTS = Path(os.environ.get("UNITCAT_SCREENSHOTS", REPO / "test-artifacts" / "screenshots"))
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


@pytest.fixture(scope="module", autouse=True)
def screenshots(request: pytest.FixtureRequest) -> Iterator[Path]:
    """Where the screenshots go; the path is printed at the end of the module's tests."""
    yield SCREENSHOTS
    if any(SCREENSHOTS.glob("*.png")):
        capture = request.config.pluginmanager.get_plugin("capturemanager")
        with capture.global_and_fixture_disabled():
            print(f"\nbrowser screenshots: {SCREENSHOTS}", flush=True)


def _start_app(database_url: str, folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    """`streamlit run ui/serve.py` (as `unitcat ui` does) on a free port against `database_url`, once it answers:
    (the process, its base URL). Stop it with `_stop`."""
    port = _free_port()
    log = folder / "server.log"
    env = {**os.environ, "DATABASE_URL": database_url}
    env.pop("UNITCAT_STUDY", None)
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(SERVER),
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
    except BaseException:
        _stop(process)
        raise
    return process, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def server(catalogue: UICatalogue, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    process, url = _start_app(catalogue.url, tmp_path_factory.mktemp("streamlit"))
    try:
        yield url
    finally:
        _stop(process)


class Chromium:
    """The module's browser. `new_page` opens a tab in one context that the module's tests
    share, so the app's front end (Streamlit's JavaScript, several MB) is fetched, served
    compressed and compiled once per module rather than once per test (about a second of
    CPU per page load on two cores). Streamlit keeps a session per tab on the server, so
    tabs share no state but the HTTP cache. `fresh_page` and `new_context` open a context
    of their own, with an empty cache, for tests that watch every request a page makes."""

    def __init__(self, browser: Any) -> None:
        self.browser = browser
        self._shared: Any = None

    def new_page(self, viewport: dict[str, int]) -> Any:
        if self._shared is None:
            self._shared = self.browser.new_context()
        page = self._shared.new_page()
        page.set_viewport_size(viewport)
        return page

    def fresh_page(self, viewport: dict[str, int]) -> Any:
        return self.browser.new_page(viewport=viewport)

    def new_context(self, **options: Any) -> Any:
        return self.browser.new_context(**options)


@pytest.fixture(scope="module")
def browser() -> Iterator[Chromium]:
    executable = ensure_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=str(executable), args=CHROMIUM_FLAGS)
        yield Chromium(instance)
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
        ("Compare", "Compare units"),
        ("Layers", "Layers"),
        ("Measures", "Measures"),
        ("Runs", "Runs"),
        ("SQL", "SQL console"),
    ):
        page.locator('[data-testid="stSidebarNav"]').get_by_text(link, exact=True).click()
        page.get_by_role("heading", name=title).first.wait_for(timeout=WAIT_MS)
        _check(page, link.lower())
    page.close()


def _open_cell(page: object, row: int = 0) -> None:
    """Click the "open ›" cell of a result row (the column after the row markers)."""
    grid = page.locator('[data-testid="stDataFrame"]').first  # type: ignore[attr-defined]
    box = grid.bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + 34 + 30, box["y"] + 35 + 17 + 35 * row)  # type: ignore[attr-defined]


@pytest.mark.browser
def test_clicking_a_search_result_opens_the_unit(
    server: str, browser: object, catalogue: UICatalogue
) -> None:
    """One click on "open ›" opens the unit, at its permalink (with the preset it came from,
    whose class the Unit page highlights)."""
    page = browser.new_page(viewport={"width": 1400, "height": 2000})  # type: ignore[attr-defined]
    _goto(page, server + "/?preset=localist", "1 unit match", "search-localist")
    _open_cell(page)
    page.get_by_text("toynet · fc6 · unit 5").wait_for(timeout=WAIT_MS)
    _check(page, "unit-from-search")
    query = urllib.parse.parse_qs(urllib.parse.urlparse(page.url).query)
    assert query == {
        "model": ["toynet"],
        "layer": ["fc6"],
        "unit": ["5"],
        "run_id": [str(catalogue.score_run)],
        "highlight": ["localist"],
    }
    page.close()


@pytest.mark.browser
def test_a_permalink_opens_the_unit(server: str, browser: object, catalogue: UICatalogue) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 2000})  # type: ignore[attr-defined]
    _goto(
        page,
        f"{server}/unit?model=toynet&layer=conv5&unit=1&run_id={catalogue.score_run}",
        "toynet · conv5 · unit 1",
        "unit-permalink",
    )
    assert page.locator('[data-testid="stVegaLiteChart"]').count() >= 3  # type: ignore[attr-defined]
    page.get_by_role("button", name="conv5.2 ›").click()  # type: ignore[attr-defined]
    page.get_by_text("toynet · conv5 · unit 2").wait_for(timeout=WAIT_MS)  # type: ignore[attr-defined]
    _settle(page)
    assert "unit=2" in page.url and "layer=conv5" in page.url  # type: ignore[attr-defined]
    page.close()


def _download_csv(page: object) -> str:
    with page.expect_download(timeout=WAIT_MS) as info:  # type: ignore[attr-defined]
        page.get_by_role("button", name="Download all").click()  # type: ignore[attr-defined]
    return Path(info.value.path()).read_text()


@pytest.mark.browser
def test_a_search_url_reloads_with_the_same_rows(
    server: str, browser: object, catalogue: UICatalogue
) -> None:
    """Filters chosen on the page go into the address; opening that address in a new
    session shows the same rows."""
    context = browser.new_context(  # type: ignore[attr-defined]
        viewport={"width": 1400, "height": 2000}, accept_downloads=True
    )
    page = context.new_page()
    _goto(page, server + "/", "21 units match", "search-all")  # the dead conv5.5 left out
    page.locator('[data-testid="stSelectbox"]').first.click()
    page.get_by_role("option").filter(has_text="but false-alarm rate").first.click()
    page.get_by_text("3 units match").wait_for(timeout=WAIT_MS)
    layer_box = page.locator('[data-testid="stMultiSelect"]').nth(1)
    layer_box.click()
    page.get_by_role("option", name="fc6", exact=True).click()
    page.keyboard.press("Escape")
    page.get_by_text("2 units match").wait_for(timeout=WAIT_MS)
    _settle(page)
    shared = page.url
    query = urllib.parse.parse_qs(urllib.parse.urlparse(shared).query)
    assert query == {"preset": ["misleading"], "layer": ["fc6"]}
    rows = _download_csv(page)

    again = context.new_page()  # a new session from the link alone
    _goto(again, shared, "2 units match", "search-from-link")
    assert _download_csv(again) == rows
    lines = rows.splitlines()
    header = lines[0].split(",")
    found = {(dict(zip(header, line.split(","), strict=False))["layer"],) for line in lines[1:]}
    assert found == {("fc6",)} and len(lines) == 3  # fc6.3 in both scoring runs
    context.close()


@pytest.mark.browser
def test_compare_shows_two_units(server: str, browser: object, catalogue: UICatalogue) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 2400})  # type: ignore[attr-defined]
    _goto(
        page,
        f"{server}/compare?model=toynet&unit=fc6.3&unit=conv5.1&run_id={catalogue.score_run}",
        "Activations on one scale",
        "compare",
    )
    assert page.locator('[data-testid="stVegaLiteChart"]').count() == 2  # type: ignore[attr-defined]
    for name in ("fc6.3", "conv5.1"):
        assert page.get_by_text(name, exact=True).count() >= 1  # type: ignore[attr-defined]
    assert page.locator('[data-testid="stImage"] img').count() >= 3  # type: ignore[attr-defined]
    assert page.get_by_role("button", name="SVG").count() == 2  # type: ignore[attr-defined]
    page.close()


@pytest.mark.browser
def test_deep_links_log_no_404_and_no_console_error(
    server: str, browser: object, catalogue: UICatalogue
) -> None:
    """A Unit permalink and a Compare link opened directly (pasted, shared) open their page
    and ask the server only for what it serves: no 404, no error in the console. Streamlit's
    front end alone first asks /unit/_stcore/health and /unit/_stcore/host-config
    (ui/rootpath.py)."""
    page = browser.fresh_page(viewport={"width": 1400, "height": 2000})  # type: ignore[attr-defined]
    errors: list[str] = []
    failed: list[str] = []
    asked: list[str] = []

    def console(message: Any) -> None:
        if message.type == "error":
            errors.append(message.text)

    def response(answer: Any) -> None:
        if answer.status >= 400:
            failed.append(f"{answer.status} {answer.url}")

    page.on("console", console)  # type: ignore[attr-defined]
    page.on("pageerror", lambda error: errors.append(str(error)))  # type: ignore[attr-defined]
    page.on("response", response)  # type: ignore[attr-defined]
    page.on("request", lambda r: asked.append(urllib.parse.urlparse(r.url).path))  # type: ignore[attr-defined]
    run = catalogue.score_run
    for path, title, screenshot in (
        (f"/unit?model=toynet&layer=fc6&unit=3&run_id={run}", "toynet · fc6 · unit 3", "deep-unit"),
        (f"/compare?model=toynet&unit=fc6.3&unit=conv5.1&run_id={run}", "Activations on one scale", "deep-compare"),
    ):  # fmt: skip
        _goto(page, server + path, title, screenshot)
        assert urllib.parse.urlparse(page.url).path == path.split("?")[0]  # type: ignore[attr-defined]
    page.close()
    assert failed == []
    assert errors == []
    assert "/_stcore/health" in asked  # the root's: the front end did connect
    assert [p for p in asked if p.startswith(("/unit/", "/compare/"))] == []


@pytest.mark.browser
def test_no_request_leaves_the_machine(
    server: str, browser: object, catalogue: UICatalogue
) -> None:
    """Every request of every page load goes to the app itself (no fonts, icons or
    telemetry from elsewhere)."""
    app_host = urllib.parse.urlparse(server).netloc
    page = browser.fresh_page(viewport={"width": 1400, "height": 2000})  # type: ignore[attr-defined]
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))  # type: ignore[attr-defined]
    unit = f"model=toynet&layer=fc6&unit=3&run_id={catalogue.score_run}"
    for path, title in (
        ("/", "Search units"),
        (f"/unit?{unit}", "toynet · fc6 · unit 3"),
        ("/compare?unit=fc6.3&unit=fc6.4", "Compare units"),
        ("/layers", "Layers"),
        ("/measures", "Measures"),
        ("/runs", "Runs"),
        ("/sql", "SQL console"),
        ("/rate", "Rate AM panels"),
    ):
        page.goto(server + path)  # type: ignore[attr-defined]
        page.get_by_text(title).first.wait_for(timeout=WAIT_MS)  # type: ignore[attr-defined]
        _settle(page)
        page.wait_for_timeout(500)  # type: ignore[attr-defined]
    outside = sorted(
        {
            url
            for url in requests
            if urllib.parse.urlparse(url).scheme not in ("data", "blob")
            and urllib.parse.urlparse(url).netloc != app_host
        }
    )
    assert len(requests) > 20
    assert outside == []
    icon = page.locator('link[rel~="icon"]').first.get_attribute("href")  # type: ignore[attr-defined]
    assert icon is not None and "gstatic" not in icon
    page.close()


@pytest.mark.browser
def test_markdown_in_a_url_parameter_is_shown_as_text_and_fetches_nothing(
    server: str, browser: object
) -> None:
    """A URL value (or name) holding Markdown is repeated in a note as text: no image is
    drawn from it, no link made, and no request leaves the machine."""
    host = "203.0.113.9"  # TEST-NET-3: never routed
    image = urllib.parse.quote(f"![a](http://{host}/x.png)")
    app_host = urllib.parse.urlparse(server).netloc
    page = browser.fresh_page(viewport={"width": 1400, "height": 1600})  # type: ignore[attr-defined]
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))  # type: ignore[attr-defined]
    for path in (
        f"/?sort={image}&{image}=1",
        f"/compare?unit={image}",
        f"/unit?unit_id={image}",
        f"/rate?participant={image}",
    ):
        page.goto(server + path)  # type: ignore[attr-defined]
        shown = page.get_by_text(f"{host}/x.png)")  # type: ignore[attr-defined]
        shown.first.wait_for(timeout=WAIT_MS)  # the note repeats the value as text
        _settle(page)
        for selector in (f'img[src*="//{host}"]', f'a[href^="http://{host}"]'):
            found = page.locator(selector)  # type: ignore[attr-defined]
            assert found.count() == 0, (path, found.first.evaluate("e => e.outerHTML"))
    outside = [
        url
        for url in requests
        if urllib.parse.urlparse(url).scheme not in ("data", "blob")
        and urllib.parse.urlparse(url).netloc != app_host
    ]
    assert outside == []
    page.close()


def _start_unitcat_ui(database_url: str, *extra: str) -> tuple[subprocess.Popen[bytes], int, Path]:
    port = _free_port()
    unitcat = str(Path(sys.executable).with_name("unitcat"))
    log = Path(os.environ["UNITCAT_HOME"]) / f"unitcat-ui-{port}.log"
    env = {**os.environ, "DATABASE_URL": database_url}
    env.pop("UNITCAT_STUDY", None)
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [unitcat, "ui", "--port", str(port), "--address", "127.0.0.1", *extra],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    _wait_healthy(port, process, log)
    return process, port, log


def _port_answers(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_unitcat_ui_serves_the_app_and_stopping_it_stops_the_server(
    database_url: str, how: signal.Signals
) -> None:
    """`unitcat ui --port P` starts Streamlit headless on that port; Ctrl+C or SIGTERM to
    `unitcat ui` alone stops the server it started (the port is free again)."""
    process, port, log = _start_unitcat_ui(database_url)
    server_pid = _server_pid(process)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
            assert "<title>Streamlit</title>" in response.read().decode()
        process.send_signal(how)
        process.wait(timeout=STARTUP_S)  # bounds a hang; stopping takes about a second
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, log.read_text()
    assert f"unitcat UI at http://127.0.0.1:{port}" in log.read_text()
    # `unitcat ui` exits only once it has reaped its Streamlit child: the port is free now
    assert _gone(server_pid), "the Streamlit child outlived `unitcat ui`"
    assert not _port_answers(port), "the Streamlit child still serves the port"


def _server_pid(process: subprocess.Popen[bytes]) -> int:
    """The pid of the Streamlit server that `unitcat ui` started (its one child, which
    answers the health check `_start_unitcat_ui` waited for)."""
    children = [pid for pid, parent in _processes() if parent == process.pid]
    assert len(children) == 1, children
    return children[0]


def _processes() -> list[tuple[int, int]]:
    """(pid, parent pid) of every process, from /proc (Linux, as `unitcat ui`'s
    parent-death signal is)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):  # ended while we looked
            continue
        found.append((int(stat.parent.name), int(fields[1])))
    return found


def _gone(pid: int) -> bool:
    """The process has ended: no such pid, or a zombie (ended, its exit status not yet
    collected by whoever inherited it; its sockets are closed)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def test_a_killed_unitcat_ui_takes_its_server_with_it(database_url: str) -> None:
    """Even `kill -9` of `unitcat ui` leaves no server behind (the child's parent-death signal)."""
    process, port, _log = _start_unitcat_ui(database_url)
    server_pid = _server_pid(process)
    process.kill()
    process.wait()
    # the child ends on the signal its parent's death sends: waited for as a process, not for
    # a time (PATIENCE only bounds a hang), then its port must be closed
    deadline = time.monotonic() + PATIENCE
    while not _gone(server_pid):
        assert time.monotonic() < deadline, "the Streamlit child outlived a killed `unitcat ui`"
        time.sleep(0.05)
    assert not _port_answers(port)


@pytest.mark.browser
def test_unitcat_ui_study_shows_the_rate_page_alone(
    catalogue: UICatalogue, browser: object
) -> None:
    """`unitcat ui --study`: the Rate page and nothing else — no navigation, no class names;
    the panel at its native size."""
    process, port, log = _start_unitcat_ui(catalogue.url, "--study")
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1200})  # type: ignore[attr-defined]
        _goto(page, f"http://127.0.0.1:{port}/", "Rate AM panels", "study-start")
        assert page.locator('[data-testid="stSidebarNav"]').count() == 0
        page.get_by_label("Participant code").fill("p-browser")
        page.get_by_role("button", name="Start").click()
        page.get_by_text("Q1. Can you identify").wait_for(timeout=WAIT_MS)
        _settle(page)
        image = page.locator('[data-testid="stImage"] img').first
        image.wait_for(timeout=WAIT_MS)
        natural, shown = image.evaluate("i => [i.naturalWidth, i.getBoundingClientRect().width]")
        assert natural == 96 and shown == pytest.approx(natural, abs=1)
        page.get_by_role("button", name="Yes").click()
        page.get_by_text("Q2.").wait_for(timeout=WAIT_MS)
        _check(page, "study-question")
        assert page.get_by_role("button", name="Yes ✓").count() == 1
        text = page.locator("body").inner_text()
        for name in ("monarch", "ladybird", "school bus", "tabby", "toynet", "fc6", "conv5"):
            assert name not in text, name
        for other in ("unit?model=toynet&layer=fc6&unit=3", "layers", "sql"):
            page.goto(f"http://127.0.0.1:{port}/{other}")
            page.get_by_text("Rate AM panels").first.wait_for(timeout=WAIT_MS)
            _settle(page)
            assert page.get_by_text("Search units").count() == 0
            assert page.locator('[data-testid="stSidebarNav"]').count() == 0
        page.close()
    finally:
        _stop(process)
    assert "unitcat rating study at" in log.read_text()
