"""One worker can't stall or bloat the server: frames are handled in slices and capped in size,
declarations are capped per session and forgotten when no session holds them, a session logs only
for its own executions, options and names are range-checked. Real ``coflux server`` processes,
spoken to over real websockets by a scripted worker."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from tornado import httpclient, websocket

from coflux import protocol
from coflux.orchestrator.checks import TARGETS_MAX
from tests.support.harness import Server, Worker, start_run, wait_for_run, wait_until

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


# -- declarations ----------------------------------------------------------------------------------------


def test_declarations_beyond_the_session_cap_are_refused_without_dropping_the_connection(
    server: Server,
) -> None:
    half = TARGETS_MAX // 2 + 1

    async def scenario() -> None:
        worker = await RawWorker.connect(server)
        await worker.next(lambda m: m["type"] == "welcome")
        batch = [workflow(f"a{i}") for i in range(half)]
        await worker.send({"type": "declare", "targets": batch, "request_id": 1})
        assert (await worker.reply(1))["type"] == "reply"
        more = [workflow(f"b{i}") for i in range(half)]  # together over the cap
        await worker.send({"type": "declare", "targets": more, "request_id": 2})
        error = await worker.reply(2)
        assert error["type"] == "error" and error["code"] == "too_large"
        assert f"at most {TARGETS_MAX}" in error["message"]
        listed = declared(server)
        assert len(listed) == half and "b0" not in listed  # the refused message declared nothing
        # too large a declaration, or bad options in one: refused, the connection goes on
        wide = workflow("wide", parameters=[{"name": f"p{i}"} for i in range(300)])
        await worker.send({"type": "declare", "targets": [wide], "request_id": 3})
        assert (await worker.reply(3)).get("code") == "malformed"
        slow = workflow("slow", options={"timeout": -1})
        await worker.send({"type": "declare", "targets": [slow], "request_id": 4})
        refused = await worker.reply(4)
        assert refused["code"] == "malformed" and "timeout" in refused["message"]
        await worker.send({"type": "declare", "targets": [workflow("a0")], "request_id": 5})
        assert (await worker.reply(5))["type"] == "reply"  # re-declaring stays within the cap

    play(scenario)


def test_a_hello_beyond_the_cap_is_refused(server: Server) -> None:
    async def scenario() -> None:
        targets = [workflow(f"t{i}") for i in range(TARGETS_MAX + 1)]
        worker = await RawWorker.connect(server, targets=targets)
        error = await worker.next(lambda m: m["type"] == "error")
        assert error["code"] == "too_large"
        assert await worker.conn.read_message() is None  # a refused handshake closes

    play(scenario)


def test_a_resumed_session_beyond_the_cap_is_refused_before_its_welcome(server: Server) -> None:
    """The cap counts what the session declared before: a hello that resumes it with too many new
    targets is refused whole (no welcome, the connection closed), and the session is unchanged."""

    async def scenario() -> None:
        half = TARGETS_MAX // 2 + 1
        first = await RawWorker.connect(server, targets=[workflow(f"a{i}") for i in range(half)])
        session_id = (await first.next(lambda m: m["type"] == "welcome"))["session_id"]
        first.conn.close()
        again = await RawWorker.connect(
            server, session_id=session_id, targets=[workflow(f"b{i}") for i in range(half)]
        )
        error = await again.next(lambda m: m["type"] == "error")
        assert error["code"] == "too_large"
        assert not [m for m in again.inbox if m["type"] == "welcome"]
        assert await again.conn.read_message() is None
        resumed = await RawWorker.connect(server, session_id=session_id, targets=[workflow("a0")])
        assert (await resumed.next(lambda m: m["type"] == "welcome"))["session_id"] == session_id

    play(scenario)


def test_declarations_no_session_holds_are_forgotten(server: Server) -> None:
    """Declared workflows are listed while a session holds them; once every session that declared
    one has gone (and its reconnect timeout, 1 s here, has passed), it is forgotten. Registered
    ones stay."""

    async def scenario() -> None:
        first = await RawWorker.connect(server, targets=[workflow("shared"), workflow("mine")])
        second = await RawWorker.connect(
            server, targets=[workflow("shared"), workflow("kept")], register=True
        )
        for worker in (first, second):
            await worker.next(lambda m: m["type"] == "welcome")
        assert declared(server) == {"shared": True, "mine": False, "kept": True}
        first.conn.close()
        await asyncio.to_thread(wait_until, lambda: "mine" not in declared(server), 15, "'mine' forgotten")
        assert declared(server) == {"shared": True, "kept": True}
        await second.send({"type": "declare", "targets": [workflow("later")], "request_id": 1})
        await second.reply(1)
        second.conn.close()
        await asyncio.to_thread(wait_until, lambda: "later" not in declared(server), 15, "'later' forgotten")
        assert declared(server) == {"shared": True, "kept": True}  # registered: kept

    play(scenario)


# -- logs ----------------------------------------------------------------------------------------------


def test_a_session_logs_only_for_executions_assigned_to_it(server: Server, tmp_path: Path) -> None:
    """Lines sent for another worker's execution (running or finished) or for a made-up id are
    dropped, silently; the connection goes on, and the real worker's own lines are kept."""
    worker = Worker(server).start()
    try:
        run_id = start_run(server, "e2e_flows:shout", "hi")
        data = wait_for_run(server, run_id)
        execution_id = data["steps"][0]["executions"][0]["execution_id"]
        own = server.request("GET", f"api/projects/default/executions/{execution_id}/logs").json()["logs"]
        assert [e["message"] for e in own] == ["shouting hi"]

        async def scenario() -> None:
            intruder = await RawWorker.connect(server)
            await intruder.next(lambda m: m["type"] == "welcome")
            line = [{"level": "info", "message": "not yours"}]
            await intruder.send(
                {"type": "log", "execution_id": execution_id, "entries": line},
                {"type": "log", "execution_id": "Rmadeup:1:1", "entries": line * 1000},
                {"type": "declare", "targets": [], "request_id": 1},
            )
            assert (await intruder.reply(1))["type"] == "reply"
            assert not [m for m in intruder.inbox if m["type"] == "error"]

        play(scenario)
        logs = server.request("GET", f"api/projects/default/executions/{execution_id}/logs").json()["logs"]
        assert logs == own
        assert server.request("GET", "api/projects/default/executions/Rmadeup:1:1/logs").status == 404
    finally:
        worker.stop()


# -- options and names ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"timeout": -1}, "timeout"),
        ({"timeout": 0}, "timeout"),
        ({"delay": 1e30}, "delay"),
        ({"delay": -0.5}, "delay"),
        ({"retries": {"limit": 1e30}}, "retries.limit"),
        ({"retries": {"limit": -1}}, "retries.limit"),
        ({"retries": {"limit": 2, "backoff_min": 10, "backoff_max": 1}}, "backoff_min"),
        ({"cache": {"max_age": -1}}, "cache.max_age"),
        ({"cache": True}, "cache"),
        ({"memo": "x"}, "memo"),
        ({"requires": {"gpu": "a100"}}, "gpu"),
        ({"speed": "fast"}, "speed"),
    ],
)
def test_options_out_of_range_are_refused_at_the_protocol_boundary(
    server: Server, options: dict[str, Any], named: str
) -> None:
    """A submit with options out of range gets ``bad_request``, creates nothing, and the connection
    goes on (the same submit with valid options is then taken)."""

    async def scenario() -> None:
        worker = await RawWorker.connect(server, targets=[workflow("parent")])
        await worker.next(lambda m: m["type"] == "welcome")
        run_id = await asyncio.to_thread(start_run, server, "limits:parent")
        execute = await worker.next(lambda m: m["type"] == "execute")
        child = {
            "type": "submit",
            "parent_execution_id": execute["execution_id"],
            "call_index": 0,
            "module": "limits",
            "target": "child",
            "target_type": "task",
            "arguments": [],
        }
        await worker.send({**child, "request_id": 1, "options": options})
        error = await worker.next(lambda m: m.get("request_id") == 1)
        assert error["type"] == "error" and error["code"] == "bad_request", error
        assert named in error["message"]
        await worker.send({**child, "request_id": 2, "options": {"timeout": 5}})
        assert (await worker.next(lambda m: m.get("request_id") == 2))["type"] == "submitted"
        steps = server.request("GET", f"api/projects/default/runs/{run_id}").json()["steps"]
        assert len(steps) == 2 and steps[1]["options"]["timeout"] == 5

    play(scenario)


def test_names_with_a_trailing_newline_are_refused(server: Server) -> None:
    assert server.request("POST", "api/projects", {"name": "nl\n"}).status == 400
    folder = server.data_dir / "projects"
    assert not folder.exists() or not any(p.name.startswith("nl") for p in folder.iterdir())
    created = server.request("POST", "api/projects/default/workspaces", {"name": "dev\n", "base": None})
    assert created.status == 400
    assert server.request("POST", "api/projects/default/workspaces", {"name": "main"}).status == 201
    renamed = server.request("POST", "api/projects/default/workspaces/main/rename", {"name": "x\n"})
    assert renamed.status == 400

    async def scenario() -> None:
        worker = await RawWorker.connect(server, workspace="main\n")
        error = await worker.next(lambda m: m["type"] == "error")
        assert "workspace" in error["message"]
        resumed = await RawWorker.connect(server, session_id="abc\n")
        assert (await resumed.next(lambda m: m["type"] == "error"))["code"] == "malformed"

    play(scenario)
    names = [w["name"] for w in server.request("GET", "api/projects/default/workspaces").json()["workspaces"]]
    assert not any("\n" in name for name in names)
