"""A real HTTP server on 127.0.0.1 that is not Coflux: it answers every GET the same way (an HTML
404, a plain-text 200, a JSON 503...). For tests of URLs that are not Coflux's."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

Serve = Callable[[int, str, bytes], str]


class _Handler(http.server.BaseHTTPRequestHandler):
    answer: tuple[int, str, bytes] = (404, "text/html", b"")

    def do_GET(self) -> None:
        status, content_type, body = self.answer
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def foreign() -> Iterator[Serve]:
    """Start such a server answering ``(status, content_type, body)``; its root URL."""
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(status: int, content_type: str, body: bytes) -> str:
        handler = type("Handler", (_Handler,), {"answer": (status, content_type, body)})
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        servers.append(httpd)
        return f"http://127.0.0.1:{httpd.server_address[1]}/"

    yield start
    for httpd in servers:
        httpd.shutdown()
        httpd.server_close()
