"""A real `coflux server` and `coflux worker` (module widget_flows) shared by a test module, a fake
kernel session over them, and a private live watcher per test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from coflux.notebook import live
from tests.support.harness import Server, Worker, wait_until
from tests.support.notebook import FakeSession


def _from_frontend(widget: Any, content: dict[str, Any]) -> None:
    """Deliver a custom message as the view's ``model.send(content)`` arrives over the comm."""
    widget._handle_msg({"content": {"data": {"method": "custom", "content": content}}, "buffers": []})


@pytest.fixture
def frontend() -> Callable[[Any, dict[str, Any]], None]:
    return _from_frontend


def _registered(server: Server) -> bool:
    response = server.request("GET", "api/projects/default/workspaces/main/workflows")
    return response.status == 200 and bool(response.json()["workflows"])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder: Path = tmp_path_factory.mktemp("widgets")
    server = Server(folder / "data").start()
    worker = Worker(server, "widget_flows").start()
    wait_until(lambda: _registered(server), 30, "the worker to register its workflows")
    yield server
    worker.stop()
    server.stop()


@pytest.fixture
def session(server: Server) -> FakeSession:
    return FakeSession(server)


@pytest.fixture
def watcher() -> Iterator[live.Watcher]:
    watcher = live.Watcher()
    yield watcher
    watcher.close()
