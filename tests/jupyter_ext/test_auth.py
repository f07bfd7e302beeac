"""Authorization through jupyter_server's machinery, in a real Jupyter server (pytest-jupyter): the
server's own authorizer is asked about Jupyter's users with our resource names, a handler that
declares no resource is closed, and tokens never reach the logs."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from jupyter_server.auth import AllowAllAuthorizer
from jupyter_server.utils import url_path_join
from tornado.httpclient import HTTPClientError
from tornado.websocket import websocket_connect

from coflux.orchestrator import Hub, ProjectService
from coflux.tokens import Scope
from jupyter_ext.handlers import CofluxHandler
from tests.support.jupyter import server_config

pytest_plugins = ("pytest_jupyter.jupyter_server",)


class NoNewProjects(AllowAllAuthorizer):
    """A server's own authorizer (as JupyterHub's would be): its users may not create projects."""

    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        return (resource, action) != ("coflux:projects", "write")


@pytest.fixture
def jp_server_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    return server_config(tmp_path, monkeypatch, server_app={"authorizer_class": f"{__name__}.NoNewProjects"})


def _error(info: pytest.ExceptionInfo[HTTPClientError]) -> dict[str, Any]:
    assert info.value.response is not None
    error: dict[str, Any] = json.loads(info.value.response.body)["error"]
    return error


async def test_the_servers_authorizer_decides_for_its_own_users(jp_fetch: Any) -> None:
    with pytest.raises(HTTPClientError) as info:
        await jp_fetch("coflux", "api", "projects", method="POST", body=json.dumps({"name": "p"}))
    assert info.value.code == 403
    assert "is not allowed to write coflux:projects" in _error(info)["message"]
    assert json.loads((await jp_fetch("coflux", "api", "projects")).body) == {"projects": []}
    created = await jp_fetch(
        "coflux", "api", "projects", "p", "workspaces", method="POST", body=json.dumps({"name": "w"})
    )
    assert created.code == 201  # everything else it allows


class Undeclared(CofluxHandler):
    """A handler someone added without saying what it acts on."""

    async def get(self) -> None:
        self.reply({"secret": "leaked"})


async def test_a_handler_that_declares_no_resource_is_closed_to_everyone(
    jp_fetch: Any, jp_serverapp: Any
) -> None:
    path = url_path_join(jp_serverapp.base_url, "coflux", "undeclared")
    jp_serverapp.web_app.add_handlers(".*$", [(path, Undeclared, {"name": "jupyter_ext"})])
    with pytest.raises(HTTPClientError) as info:
        await jp_fetch("coflux", "undeclared")  # with the server's own token
    assert info.value.code == 403
    assert _error(info) == {
        "code": "forbidden",
        "message": "this endpoint declares no permission, so it is closed",
    }


class _Lines(logging.Handler):
    """Each record once (it reaches several of the loggers listened to), formatted with its traceback."""

    def __init__(self) -> None:
        super().__init__()
        self.records: dict[int, logging.LogRecord] = {}
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if id(record) not in self.records:
            self.records[id(record)] = record
            self.lines.append(logging.Formatter().format(record))


@contextmanager
def everything_logged() -> Iterator[list[str]]:
    handler = _Lines()
    loggers = [logging.getLogger()]
    loggers += [log for log in logging.Logger.manager.loggerDict.values() if isinstance(log, logging.Logger)]
    for log in loggers:
        log.addHandler(handler)
    try:
        yield handler.lines
    finally:
        for log in loggers:
            log.removeHandler(handler)


async def test_a_failing_request_logs_no_token(
    jp_fetch: Any, jp_serverapp: Any, jp_http_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(Hub, "list_projects", broken)
    monkeypatch.setattr(ProjectService, "subscribe", broken)
    server_token = jp_serverapp.identity_provider.token
    worker_token = jp_serverapp.web_app.settings["coflux_hub"].token("default", Scope.WORKER)
    with everything_logged() as lines:
        with pytest.raises(HTTPClientError) as info:
            await jp_fetch(
                "coflux", "api", "projects", params={"token": server_token}, headers={"Authorization": ""}
            )
        assert info.value.code == 500
        assert _error(info) == {"code": "internal", "message": "Internal Server Error"}
        url = f"ws://127.0.0.1:{jp_http_port}{jp_serverapp.base_url}coflux/ws/events?project=default&token={worker_token}"
        connection = await websocket_connect(url)
        assert await connection.read_message() is None  # the failure closed it
    failures = [line for line in lines if "Uncaught exception" in line]
    assert len(failures) == 2, lines
    assert all("token=[secret]" in line and "RuntimeError: a bug" in line for line in failures)
    logged = "\n".join(lines)
    assert server_token not in logged and worker_token not in logged
