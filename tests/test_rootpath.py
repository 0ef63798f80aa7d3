"""ui/rootpath.py's middleware on a real Starlette app (served in-process through ASGI):
only a GET of one of the app's page addresses gets the script that names the root, in the
head, with a Content-Length that matches; every other request and answer passes as it was.
(The browser test `test_deep_links_log_no_404_and_no_console_error` checks the effect.)"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from ui.addresses import ALL_ADDRESSES, PAGE_ADDRESSES
from ui.rootpath import ROOT_SCRIPT, RootOfPages

PAGE = "<!DOCTYPE html><html><head><title>Streamlit</title></head><body></body></html>"


async def _html(_request: Any) -> Response:
    return HTMLResponse(PAGE)


async def _seen_encoding(request: Any) -> Response:
    return HTMLResponse(f"<head>{request.headers.get('accept-encoding', '-')}</head>")


async def _missing(_request: Any) -> Response:
    return HTMLResponse(PAGE, status_code=404)


async def _json(_request: Any) -> Response:
    return JSONResponse({"status": "ok"})


def _app(base_path: str = "") -> RootOfPages:
    routes = [
        Route("/_stcore/health", _json),
        Route("/enc/{page}", _seen_encoding),
        Route("/gone/{page}", _missing),
        Route("/{rest:path}", _html, methods=["GET", "HEAD", "POST"]),
    ]
    return RootOfPages(Starlette(routes=routes), pages=ALL_ADDRESSES, base_path=base_path)


def _request(
    app: RootOfPages, path: str, method: str = "GET", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of one HTTP request through the ASGI app."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "server": ("127.0.0.1", 8501), "client": ("127.0.0.1", 5000),
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
    }  # fmt: skip
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    start, *bodies = sent
    head = {k.decode(): v.decode() for k, v in start["headers"]}
    return start["status"], head, b"".join(m.get("body", b"") for m in bodies)


@pytest.mark.parametrize("address", sorted(ALL_ADDRESSES))
def test_a_page_address_gets_the_root_script_first_in_its_head(address: str) -> None:
    status, headers, body = _request(_app(), f"/{address}")
    assert status == 200
    assert body == PAGE.replace("<head>", "<head>" + ROOT_SCRIPT.decode(), 1).encode()
    assert int(headers["content-length"]) == len(body)
    assert body.count(b"BACKEND_BASE_URL") == 1


def test_the_app_pages_are_all_covered() -> None:
    assert {"unit", "compare", "layers", "layer", "measures", "runs", "sql"} == set(PAGE_ADDRESSES)
    assert {"rate", "study", "search"} <= ALL_ADDRESSES
    assert "" not in ALL_ADDRESSES  # the root: the front end asks it alone already


@pytest.mark.parametrize(
    ("path", "method"),
    [
        ("/", "GET"),  # the root page
        ("/nothing", "GET"),  # not one of the app's pages
        ("/unit/more", "GET"),  # below a page
        ("/static/unit", "GET"),
        ("/unit", "HEAD"),
        ("/unit", "POST"),
    ],
)
def test_anything_else_passes_unchanged(path: str, method: str) -> None:
    status, headers, body = _request(_app(), path, method)
    assert status == 200
    assert ROOT_SCRIPT not in body
    if method != "HEAD":
        assert body == PAGE.encode()
        assert int(headers["content-length"]) == len(PAGE.encode())


def test_only_html_200s_are_edited() -> None:
    app = _app()
    assert _request(app, "/_stcore/health")[2] == b'{"status":"ok"}'
    missing = RootOfPages(_app().app, pages={"unit"}, base_path="/gone")
    status, _headers, body = _request(missing, "/gone/unit")
    assert (status, body) == (404, PAGE.encode())  # a 404 passes as it was


def test_the_page_is_asked_for_uncompressed() -> None:
    app = RootOfPages(_app().app, pages={"unit"}, base_path="enc")
    _status, _headers, body = _request(app, "/enc/unit", headers={"Accept-Encoding": "gzip"})
    assert body == b"<head>" + ROOT_SCRIPT + b"-</head>"
    other = RootOfPages(_app().app, pages={"rate"}, base_path="enc")
    _status, _headers, body = _request(other, "/enc/unit", headers={"Accept-Encoding": "gzip"})
    assert body == b"<head>gzip</head>"  # not a page: its request is left alone


@pytest.mark.parametrize("base_path", ["pre", "/pre", "/pre/"])
def test_below_a_base_url_path_only_its_pages(base_path: str) -> None:
    app = _app(base_path)
    assert ROOT_SCRIPT in _request(app, "/pre/unit")[2]
    assert ROOT_SCRIPT not in _request(app, "/unit")[2]
    assert ROOT_SCRIPT not in _request(app, "/other/unit")[2]
