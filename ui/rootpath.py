"""Deep links without 404s: a page address's HTML names the app's root as its server.

Streamlit's front end guesses the server's base path from the address: opened at
/unit?model=…, it first asks /unit/_stcore/health and /unit/_stcore/host-config
(two 404s in the browser's console) and only then the root's
(streamlit/streamlit#7074). Answering those paths would not do: the front end
would then take /unit for the app's root and open the default page instead of
the Unit page. `RootOfPages` instead puts `ROOT_SCRIPT` into the HTML that a page
address serves: it sets `window.__streamlit.BACKEND_BASE_URL`, which the front
end reads before it guesses, to the page's parent (the app's root), so the front
end asks the root alone. Only the app's own page addresses are touched.
"""

from __future__ import annotations

from collections.abc import Collection

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: runs before the front end's own scripts (modules, which run once the page is parsed)
ROOT_SCRIPT = (
    b"<script>window.__streamlit = Object.assign({}, window.__streamlit, "
    b'{BACKEND_BASE_URL: new URL("./", window.location.href).href});</script>'
)
HEAD = b"<head>"


def name_root(html: bytes) -> bytes:
    """The page with `ROOT_SCRIPT` first in its head (unchanged if it has no head)."""
    return html.replace(HEAD, HEAD + ROOT_SCRIPT, 1)


class RootOfPages:
    """ASGI middleware: a GET of one of `pages` (/unit, …, below `base_path`) gets its HTML
    with `ROOT_SCRIPT`. Every other request, and any answer but a 200 with HTML, passes
    unchanged."""

    def __init__(self, app: ASGIApp, pages: Collection[str], base_path: str = "") -> None:
        self.app = app
        self.pages = frozenset(pages)
        base = base_path.strip("/")
        self.root = f"/{base}" if base else ""

    def is_page(self, scope: Scope) -> bool:
        """A GET of a page address: its last path segment is a page and the rest is the root."""
        if scope["type"] != "http" or scope["method"] != "GET":
            return False
        root, _, page = scope["path"].rpartition("/")
        return page in self.pages and root == self.root

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.is_page(scope):
            await self.app(scope, receive, send)
            return
        # ask for the page uncompressed, so that it can be edited
        headers = [(k, v) for k, v in scope["headers"] if k.lower() != b"accept-encoding"]
        await self.app({**scope, "headers": headers}, receive, _PageEditor(send).send)


class _PageEditor:
    """Collects an HTML answer's body and sends it on with `ROOT_SCRIPT` in its head."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self._start: Message | None = None
        self._body: list[bytes] = []

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start" and _is_html(message):
            self._start = message  # sent with the edited body, whose length it must state
            return
        if message["type"] == "http.response.body" and self._start is not None:
            self._body.append(message.get("body", b""))
            if not message.get("more_body", False):
                await self._send_edited()
            return
        await self._send(message)

    async def _send_edited(self) -> None:
        assert self._start is not None
        body = name_root(b"".join(self._body))
        headers = MutableHeaders(raw=list(self._start["headers"]))
        headers["content-length"] = str(len(body))
        await self._send({**self._start, "headers": headers.raw})
        await self._send({"type": "http.response.body", "body": body})


def _is_html(start: Message) -> bool:
    """A 200 with an uncompressed HTML body."""
    headers = MutableHeaders(raw=list(start["headers"]))
    return (
        start["status"] == 200
        and headers.get("content-type", "").startswith("text/html")
        and "content-encoding" not in headers
    )
