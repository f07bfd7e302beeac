"""Bad input gets a clear error and leaves the server, the project and other connections serving."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tornado import httpclient, websocket

from tests.support.harness import Server, Worker, start_run, wait_for_run

pytestmark = pytest.mark.e2e

HELLO = {"type": "hello", "protocol": 1, "workspace": "main", "concurrency": 1, "targets": []}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    server = Server(tmp_path / "data").start()
    yield server
    server.stop()


@pytest.fixture
def worker(server: Server) -> Iterator[Worker]:
    worker = Worker(server).start()
    yield worker
    worker.stop()


def _error(response: Any) -> dict[str, Any]:
    error: dict[str, Any] = response.json()["error"]
    assert set(error) >= {"code", "message"} and error["message"]
    return error


def test_http_errors_are_clear_and_the_server_keeps_serving(server: Server, worker: Worker) -> None:
    runs = "api/projects/default/workspaces/main/runs"
    start_run(server, "e2e_flows:add", 1, 2)  # waits until the worker has registered

    malformed = server.request("POST", runs, raw=b"{not json")
    assert malformed.status == 400 and _error(malformed)["code"] == "bad_request"

    unknown = server.request("POST", runs, {"module": "e2e_flows", "target": "nope", "arguments": []})
    assert unknown.status == 404 and _error(unknown)["code"] == "not_found"

    wrong_count = server.request("POST", runs, {"module": "e2e_flows", "target": "add", "arguments": [1]})
    assert wrong_count.status == 400 and "add" in _error(wrong_count)["message"]

    not_a_list = server.request("POST", runs, {"module": "e2e_flows", "target": "add", "arguments": "1,2"})
    assert not_a_list.status == 400

    bad_tag = server.request(
        "POST", runs, {"module": "e2e_flows", "target": "add", "arguments": [{"$c": "bogus"}, 1]}
    )
    assert bad_tag.status == 400

    missing = server.request("GET", "api/projects", token=None)
    assert missing.status in (401, 403) and _error(missing)["code"] == "unauthorized"
    wrong = server.request("GET", "api/projects/default/workspaces", token="not-the-token")
    assert wrong.status in (401, 403) and _error(wrong)["code"] == "unauthorized"

    oversized = server.request("POST", runs, raw=b'{"pad": "' + b"x" * (17 * 1024 * 1024) + b'"}')
    assert oversized.status == 413

    unknown_run = server.request("GET", "api/projects/default/runs/Rdoesnotexist")
    assert unknown_run.status == 404

    bad_blob = server.request("GET", "api/projects/default/blobs/..%2F..%2Fsecret")
    assert bad_blob.status in (400, 404)

    bad_project = server.request("POST", "api/projects", {"name": "../escape"})
    assert bad_project.status == 400

    data = wait_for_run(server, start_run(server, "e2e_flows:add", 2, 3))
    assert data["status"] == "succeeded" and data["result"] == 5


async def _connect(
    server: Server, token: str | None, project: str = "default"
) -> websocket.WebSocketClientConnection:
    url = server.url.replace("http://", "ws://") + f"/ws/worker?project={project}"
    headers = {"Authorization": f"token {token}"} if token else {}
    return await websocket.websocket_connect(httpclient.HTTPRequest(url, headers=headers))


async def _read(conn: websocket.WebSocketClientConnection) -> dict[str, Any] | None:
    frame = await asyncio.wait_for(conn.read_message(), 10)
    return json.loads(frame) if frame is not None else None


def test_websocket_garbage_is_refused_on_that_connection_only(server: Server, worker: Worker) -> None:
    async def scenario() -> None:
        good = await _connect(server, server.token)
        await good.write_message(json.dumps(HELLO))
        welcome = await _read(good)
        assert welcome is not None and welcome["type"] == "welcome"

        garbage = await _connect(server, server.token)
        await garbage.write_message("this is not json")
        error = await _read(garbage)
        assert error is not None and error["type"] == "error" and error["code"] == "malformed"

        unknown = await _connect(server, server.token)
        await unknown.write_message(json.dumps(HELLO))
        await _read(unknown)
        await unknown.write_message(json.dumps({"type": "launch_missiles"}))
        error = await _read(unknown)
        assert error is not None and error["code"] == "unknown_message"
        await unknown.write_message(json.dumps({"type": "heartbeat", "running": []}))  # still usable

        huge = await _connect(server, server.token)
        with contextlib.suppress(websocket.WebSocketClosedError):
            await huge.write_message("x" * (17 * 1024 * 1024))
        closed = await asyncio.wait_for(huge.read_message(), 10)
        assert closed is None  # the server closed that connection (1009: message too big)
        assert huge.close_code in (1009, None)

        await good.write_message(json.dumps({"type": "heartbeat", "running": []}))
        for conn in (good, garbage, unknown, huge):
            conn.close()

    asyncio.run(scenario())
    data = wait_for_run(server, start_run(server, "e2e_flows:fanout", 5))
    assert data["status"] == "succeeded" and data["result"] == 30


def test_websocket_needs_a_valid_token(server: Server) -> None:
    async def scenario() -> None:
        for token in (None, "wrong"):
            with pytest.raises(httpclient.HTTPClientError) as info:
                await _connect(server, token)
            assert info.value.code in (401, 403)

    asyncio.run(scenario())


def test_project_isolation(server: Server) -> None:
    assert server.request("POST", "api/projects", {"name": "alpha"}).status == 201
    assert server.request("POST", "api/projects", {"name": "beta"}).status == 201
    assert server.request("POST", "api/projects", {"name": "alpha"}).status == 409
    alpha_token = server.worker_token("alpha")
    worker = Worker(server, project="alpha", token=alpha_token).start()
    try:
        run_id = start_run(server, "e2e_flows:add", 4, 5, project="alpha")
        assert wait_for_run(server, run_id, project="alpha")["result"] == 9
        assert server.request("GET", f"api/projects/beta/runs/{run_id}").status == 404
        # alpha's token works for alpha's API, not beta's
        assert server.request("GET", f"api/projects/alpha/runs/{run_id}", token=alpha_token).status == 200
        assert server.request("GET", "api/projects/beta/workspaces", token=alpha_token).status in (
            401,
            403,
        )
    finally:
        worker.stop()

    async def scenario() -> None:
        with pytest.raises(httpclient.HTTPClientError) as info:
            await _connect(server, alpha_token, project="beta")
        assert info.value.code in (401, 403)
        conn = await _connect(server, alpha_token, project="alpha")
        conn.close()

    asyncio.run(scenario())
