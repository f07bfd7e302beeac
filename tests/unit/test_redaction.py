"""Tokens and passwords never reach a log line through a URL."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

import coflux as cf
from coflux.tokens import redact_url
from tests.support.worker_server import WAIT, FakeServer, add


@pytest.mark.parametrize(
    ("url", "redacted"),
    [
        ("/coflux/api/projects?token=abc", "/coflux/api/projects?token=[secret]"),
        ("/ws/events?project=p&token=cfx_worker_1_2&x=1", "/ws/events?project=p&token=[secret]&x=1"),
        ("/x?_xsrf=a&api_key=b#top", "/x?_xsrf=a&api_key=[secret]#top"),
        ("https://ana:hunter2@proxy:8443/coflux", "https://ana:[secret]@proxy:8443/coflux"),
        ("http://127.0.0.1:7777/coflux?project=token", "http://127.0.0.1:7777/coflux?project=token"),
    ],
)
def test_redact_url(url: str, redacted: str) -> None:
    assert redact_url(url) == redacted


@pytest.fixture
def server() -> Iterator[FakeServer]:
    fake = FakeServer()
    fake.start()
    yield fake
    fake.stop()


def test_a_worker_logs_where_it_connected_without_the_password(
    server: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    url = server.url.replace("http://", "http://ana:hunter2@")
    worker = cf.Worker([add], url=url, token="T", project="proj")
    with caplog.at_level(logging.INFO, logger="coflux"):
        worker.start()
        try:
            worker.wait_connected(WAIT)
        finally:
            worker.stop(timeout=0.5)
    assert "connected to http://ana:[secret]@127.0.0.1" in caplog.text
    assert "hunter2" not in caplog.text
