"""One worker can't stall the server: frames are handled in slices and capped in size. Real
``coflux server`` processes, spoken to over real websockets by a scripted worker."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from tornado import httpclient, websocket

from coflux import protocol
from tests.e2e.harness import Server

pytestmark = pytest.mark.e2e

HEARTBEAT = '{"type":"heartbeat","running":[]}'


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    server = Server(tmp_path / "data", env={"COFLUX_RECONNECT_TIMEOUT": "1"}).start()
    yield server
    server.stop()


def workflow(name: str, **extra: Any) -> dict[str, Any]:
    return {"module": "limits", "name": name, "type": "workflow", "parameters": [], **extra}


class RawWorker:
    """A worker connection that sends what a test says and reads what the server answers."""

    live: ClassVar[list[RawWorker]] = []
    """Connections of the scenario being played (:func:`play` closes them)."""

    def __init__(self, conn: websocket.WebSocketClientConnection) -> None:
        self.conn = conn
        self.inbox: list[dict[str, Any]] = []
        RawWorker.live.append(self)

    @classmethod
    async def connect(cls, server: Server, project: str = "default", **hello: Any) -> RawWorker:
        url = server.url.replace("http://", "ws://") + f"/ws/worker?project={project}"
        request = httpclient.HTTPRequest(url, headers={"Authorization": f"token {server.token}"})
        worker = cls(await websocket.websocket_connect(request))
        message = {"type": "hello", "protocol": 1, "workspace": "main", "concurrency": 4, "targets": []}
        await worker.send({**message, **hello})
        return worker

    async def send(self, *messages: dict[str, Any]) -> None:
        await self.conn.write_message(protocol.encode_batch([json.dumps(m) for m in messages]))

    async def next(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 10) -> dict[str, Any]:
        """The first message (read so far or arriving within ``timeout``) that ``predicate`` accepts."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            for index, message in enumerate(self.inbox):
                if predicate(message):
                    return self.inbox.pop(index)
            left = deadline - asyncio.get_running_loop().time()
            frame = await asyncio.wait_for(self.conn.read_message(), max(left, 0.01))
            if frame is None:
                raise AssertionError(f"the server closed the connection; read: {self.inbox}")
            parsed = json.loads(frame)
            self.inbox.extend(parsed if isinstance(parsed, list) else [parsed])

    async def reply(self, request_id: int) -> dict[str, Any]:
        """The ``reply`` or ``error`` answering ``request_id``."""
        return await self.next(
            lambda m: m.get("request_id") == request_id and m["type"] in ("reply", "error")
        )


def play(scenario: Callable[[], Coroutine[Any, Any, Any]]) -> None:
    """Run an async scenario, then close the connections it opened."""

    async def closing() -> None:
        try:
            await scenario()
        finally:
            for worker in RawWorker.live:
                worker.conn.close()
            RawWorker.live.clear()

    asyncio.run(closing())


def declared(server: Server, project: str = "default") -> dict[str, bool]:
    """The workflows listed in ``main``: name -> registered."""
    response = server.request("GET", f"api/projects/{project}/workspaces/main/workflows")
    assert response.status == 200, response.body
    return {w["name"]: w["registered"] for w in response.json()["workflows"]}


# -- frames --------------------------------------------------------------------------------------------


def test_a_large_frame_is_handled_in_slices_with_requests_answered_between(server: Server) -> None:
    """A frame of 10,000 messages (9,998 heartbeats between two declarations) is handled over many
    turns of the server's loop: REST requests sent meanwhile are answered while it is half done
    (the first declaration is listed, the last not yet). Before, a frame was handled in one go."""
    server.request("POST", "api/projects", {"name": "flood"})
    middle = ",".join([HEARTBEAT] * (protocol.MAX_FRAME_MESSAGES - 2))

    async def scenario() -> int:
        worker = await RawWorker.connect(server, "flood")
        await worker.next(lambda m: m["type"] == "welcome")
        for round_ in range(20):
            first = json.dumps({"type": "declare", "targets": [workflow(f"first{round_}")]})
            last = json.dumps({"type": "declare", "targets": [workflow(f"last{round_}")]})
            await worker.conn.write_message(f"[{first},{middle},{last}]")
            while True:
                names = await asyncio.to_thread(declared, server, "flood")
                if f"last{round_}" in names:
                    break
                if f"first{round_}" in names:
                    return round_  # seen half done
        raise AssertionError("no request was answered while a frame was being handled")

    play(scenario)


def test_a_frame_over_the_message_limit_is_refused_whole_and_the_connection_goes_on(server: Server) -> None:
    async def scenario() -> None:
        worker = await RawWorker.connect(server)
        await worker.next(lambda m: m["type"] == "welcome")
        first = json.dumps({"type": "declare", "targets": [workflow("too_late")]})
        frame = "[" + ",".join([first] + [HEARTBEAT] * protocol.MAX_FRAME_MESSAGES) + "]"
        await worker.conn.write_message(frame)
        error = await worker.next(lambda m: m["type"] == "error")
        assert error["code"] == "too_large" and str(protocol.MAX_FRAME_MESSAGES) in error["message"]
        await worker.send({"type": "declare", "targets": [workflow("fine")], "request_id": 1})
        assert (await worker.reply(1))["type"] == "reply"
        assert set(declared(server)) == {"fine"}  # nothing of the refused frame was handled

    play(scenario)
