"""``cf.Client`` given the URL a JupyterLab user sees (the server's root, a page of it): it finds the
Coflux API under it and says which URL it uses; given a server that is not Coflux, one clear error
naming the URL to use, never a page of HTML."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import pytest

import coflux as cf
from coflux.errors import ConfigurationError
from tests.support.harness import Server

pytest_plugins = ("tests.support.foreign",)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("address") / "data").start()
    yield server
    server.stop()


@pytest.mark.parametrize("path", ["", "lab", "lab/tree/work/report.ipynb?token=abc"])
def test_a_client_given_a_jupyter_url_uses_the_api_under_it_and_says_so(
    server: Server, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    root = server.url.removesuffix("coflux")
    client = cf.Client(url=root + path, token=server.token)
    with caplog.at_level(logging.WARNING, logger="coflux"):
        assert client.create_project(f"p{len(path)}") == {"name": f"p{len(path)}"}  # a POST
        assert {"name": f"p{len(path)}"} in client.projects()
    assert client.url == server.url
    shown = (root + path).rstrip("/").replace("token=abc", "token=[secret]")
    assert [r.getMessage() for r in caplog.records] == [
        f"coflux: {shown} is not Coflux's address; using {server.url}"
    ]
    # Another client given the same URL goes straight to the API, and says nothing more.
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="coflux"):
        again = cf.Client(url=root + path, token=server.token)
        assert again.url == server.url
        again.projects()
    assert caplog.records == []


@pytest.mark.parametrize(
    "answer, said",
    [
        (
            (404, "text/html", b"<!DOCTYPE html><html><body>Not Found</body></html>"),
            "HTTP 404 with an HTML page",
        ),
        ((200, "text/html", b"<!doctype html><html>JupyterLab</html>"), "HTTP 200 with an HTML page"),
        ((405, "text/plain", b"nope"), "HTTP 405 with text/plain"),
    ],
)
def test_a_client_given_a_server_that_is_not_coflux_names_the_url_to_use(
    foreign: Callable[[int, str, bytes], str], answer: tuple[int, str, bytes], said: str
) -> None:
    url = foreign(*answer) + "lab"
    origin = url.removesuffix("/lab")
    client = cf.Client(url=url, token="cfx_worker_0_0")
    with pytest.raises(ConfigurationError) as raised:
        client.projects()
    assert str(raised.value) == (
        f"{url} is not a Coflux server (it answers {said}); use the server's Coflux URL, e.g. {origin}/coflux"
    )


def test_a_proxys_error_page_is_not_shown(foreign: Callable[[int, str, bytes], str]) -> None:
    url = foreign(502, "text/html", b"<html><body><h1>502 Bad Gateway</h1></body></html>") + "coflux"
    with pytest.raises(cf.RequestError) as raised:
        cf.Client(url=url, token="cfx_worker_0_0").projects()
    assert str(raised.value) == (
        f"{url} did not answer as Coflux (it answers HTTP 502 with an HTML page): is Coflux running "
        "behind it?"
    )
