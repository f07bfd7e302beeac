"""Storage faults with clear answers, on real disks: a full one (a tmpfs of the server's own) and a
project database that isn't one. Each says what is wrong, leaves nothing half made, and the server,
and every other project, goes on."""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tornado import httpclient, websocket

from tests.support.harness import Response, Server, environment, free_port
from tests.support.tinydisk import TinyDiskServer, fill, on_tiny_disk, require_namespaces

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

HELLO = {"type": "hello", "protocol": 1, "workspace": "main", "concurrency": 1, "targets": []}
FLOW = {"module": "m", "name": "flow", "type": "workflow", "parameters": [{"name": "x"}]}
BLOB = b"a value too large to travel inline " * 2000


@pytest.fixture
def tiny(tmp_path: Path) -> Iterator[TinyDiskServer]:
    require_namespaces()
    server = TinyDiskServer(tmp_path / "data").start()
    yield server
    server.stop()


def _error(response: Response, status: int, code: str) -> str:
    assert response.status == status, response.body
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code, error
    message: str = error["message"]
    return message


async def _connect(server: Server, project: str) -> websocket.WebSocketClientConnection:
    url = server.url.replace("http://", "ws://") + f"/ws/worker?project={project}"
    request = httpclient.HTTPRequest(url, headers={"Authorization": f"token {server.token}"})
    return await websocket.websocket_connect(request)


async def _welcomed(
    server: Server, project: str, hello: dict[str, Any] = HELLO
) -> websocket.WebSocketClientConnection:
    connection = await _connect(server, project)
    await connection.write_message(json.dumps(hello))
    frame = await asyncio.wait_for(connection.read_message(), 10)
    assert frame is not None and "welcome" in str(frame), frame
    return connection


def test_coflux_server_on_a_full_disk_exits_with_the_reason(tmp_path: Path) -> None:
    require_namespaces()
    data = tmp_path / "data"
    command = [
        sys.executable,
        "-m",
        "coflux.cli",
        "server",
        "--port",
        str(free_port()),
        "--data-dir",
        str(data),
    ]
    completed = subprocess.run(
        on_tiny_disk(data, command, full=True),
        env=environment(COFLUX_SERVER_TOKEN="admin"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (completed.returncode, completed.stdout) == (1, "")
    assert completed.stderr == f"error: cannot create the secret {data / 'secret'}: No space left on device\n"


def test_a_full_disk_refuses_new_projects_and_blobs_clearly_and_leaves_nothing(
    tiny: TinyDiskServer,
) -> None:
    assert tiny.request("POST", "api/projects", {"name": "kept"}).status == 201
    filler = fill(tiny.folder)

    for _attempt in range(2):  # and again: a failed creation must not leave a project that "exists"
        refused = tiny.request("POST", "api/projects", {"name": "late"})
        path = tiny.data_dir / "projects" / "late.db"
        message = _error(refused, 507, "insufficient_storage")
        assert message == f"project 'late': no space left on the device holding its database ({path})"
        assert tiny.request("GET", "api/projects").json() == {"projects": [{"name": "kept"}]}
    assert [p.name for p in (tiny.folder / "projects").iterdir() if not p.name.startswith("kept.db")] == []

    key = hashlib.sha256(BLOB).hexdigest()
    put = tiny.request("PUT", f"api/projects/kept/blobs/{key}", raw=BLOB)
    assert _error(put, 507, "insufficient_storage").startswith("no space left on the server's blob store")
    assert [p for p in (tiny.folder / "blobs").rglob("*") if p.is_file()] == []
    assert tiny.request("GET", f"api/projects/kept/blobs/{key}").status == 404

    assert tiny.request("GET", "api/projects/kept/workspaces").status == 200  # the server goes on
    filler.unlink()
    assert tiny.request("POST", "api/projects", {"name": "late"}).status == 201
    assert tiny.request("PUT", f"api/projects/kept/blobs/{key}", raw=BLOB).status == 201
    assert tiny.request("GET", f"api/projects/kept/blobs/{key}").body == BLOB


def test_a_commit_on_a_full_disk_closes_workers_with_the_project_and_the_cause(tiny: TinyDiskServer) -> None:
    hello = {**HELLO, "targets": [FLOW], "register": True}
    runs = "api/projects/p/workspaces/main/runs"

    async def scenario() -> None:
        worker = await _welcomed(tiny, "p", hello)
        # Durable, so what the hello wrote (workspace, workflow) is too: commits are in order.
        assert tiny.request("POST", "api/projects/p/workspaces", {"name": "dev", "base": None}).status == 201
        fill(tiny.folder)
        for number in range(50):  # the last pages held may take a write or two
            created = tiny.request("POST", "api/projects/p/workspaces", {"name": f"w{number}", "base": None})
            if created.status != 201:
                break
        _error(created, 507, "insufficient_storage")
        while await asyncio.wait_for(worker.read_message(), 10) is not None:
            pass  # whatever was sent before the close
        assert worker.close_code == 1011
        assert worker.close_reason == "project 'p': no space left on the device holding its database"

        (tiny.folder / "fill").unlink()  # space again: workers come back and the project works
        again = await _welcomed(tiny, "p", hello)
        started = tiny.request("POST", runs, {"module": "m", "target": "flow", "arguments": [1]})
        assert started.status == 201
        run = tiny.request("GET", f"api/projects/p/runs/{started.json()['run_id']}")
        assert run.status == 200 and run.json()["status"] == "running"
        names = [w["name"] for w in tiny.request("GET", "api/projects/p/workspaces").json()["workspaces"]]
        assert names[:2] == ["main", "dev"] and f"w{number}" not in names
        again.close()

    asyncio.run(scenario())


def test_a_corrupted_project_database_is_named_and_other_projects_keep_working(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "projects").mkdir(parents=True)
    bad = data / "projects" / "bad.db"
    bad.write_bytes(b"not a database: someone's data, to keep as it is\n" * 100)
    server = Server(data).start()
    try:
        expected = f"project 'bad': its database is not a SQLite database ({bad})"

        async def scenario() -> None:
            with pytest.raises(httpclient.HTTPClientError) as refused:
                await _connect(server, "bad")
            response = refused.value.response
            assert response is not None and refused.value.code == 503
            assert response.headers["Content-Type"] == "application/json"
            assert json.loads(response.body) == {"error": {"code": "unavailable", "message": expected}}
            good = await _welcomed(server, "good")
            good.close()

        asyncio.run(scenario())
        assert _error(server.request("GET", "api/projects/bad/workspaces"), 503, "unavailable") == expected
        assert server.request("GET", "api/projects/good/workspaces").status == 200
        assert bad.read_bytes().startswith(b"not a database: someone's data")
    finally:
        server.stop()
