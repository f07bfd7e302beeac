"""A real HTTP server on 127.0.0.1 that is not Coflux: it answers every request the same way (an
HTML 404, a plain-text 200, a JSON 503...). For tests of URLs that are not Coflux's; a pytest
plugin (``pytest_plugins = ("tests.support.foreign",)``) giving the ``foreign`` fixture."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.support.http import FakeHTTPServer, Reply

Serve = Callable[[int, str, bytes], str]


@pytest.fixture
def foreign() -> Iterator[Serve]:
    """Start such a server answering ``(status, content_type, body)``; its root URL."""
    servers: list[FakeHTTPServer] = []

    def start(status: int, content_type: str, body: bytes) -> str:
        answer = Reply(status, body, content_type)
        servers.append(FakeHTTPServer(lambda _: answer))
        return servers[-1].url

    yield start
    for server in servers:
        server.close()
