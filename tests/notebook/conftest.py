"""A real `coflux server` and `coflux worker` (module widget_flows) shared by a test module, a fake
kernel session over them, and a private live watcher per test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from coflux.client import Client
from coflux.notebook import live
from tests.support.harness import Server, Worker, wait_until


class FakeSession:
    """What widgets need of the kernel's session, over a real server; switching only records."""

    def __init__(self, server: Server, workspace: str = "main") -> None:
        self.url = server.url
        self.token: str | None = server.token
        self.project = "default"
        self.workspace = workspace
        self.switched: list[tuple[str, str | None]] = []

    def client(self) -> Client:
        return Client(self.url, self.token, self.project, self.workspace)

    def switch_workspace(self, name: str, base: str | None = None) -> None:
        self.switched.append((name, base))
        self.workspace = name


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
