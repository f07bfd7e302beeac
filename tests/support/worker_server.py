"""The scripted fake server a worker is tested against: a real tornado websocket server on 127.0.0.1
that checks every frame the worker sends with ``protocol.decode_batch_from_worker`` and answers as
scripted; and the targets several of those tests serve."""

from __future__ import annotations

import asyncio
import hashlib
import json
import queue
import threading
import time
from typing import Any

import tornado.httpserver
import tornado.netutil
import tornado.web
import tornado.websocket

import coflux.worker as cf
from coflux import protocol
from coflux.errors import ProtocolError
from coflux.protocol import Message

WAIT = 10.0


# -- targets the worker serves ----------------------------------------------------------------------


@cf.task()
def add(a: int, b: int = 100) -> int:
    return a + b


@cf.workflow()
def twice(x: int) -> int:
    return add(x) + add(x + 1)  # two awaited submits


# -- the fake server ---------------------------------------------------------------------------------


class FakeServer:
    """Answers ``hello`` with ``welcome`` (session ``S1``); everything else is up to the test."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.inbox: queue.Queue[Message] = queue.Queue()
        self.hellos: list[Message] = []
        self.requests: list[tuple[dict[str, str], str]] = []
        self.blobs: dict[str, bytes] = {}
        self.socket: tornado.websocket.WebSocketHandler | None = None
        self.refuse_with: str | None = None
        self.with_welcome: list[Message] = []  # sent in the welcome's frame, as one JSON array
        self.hold_welcome = False  # True: a hello waits for :meth:`release` to be welcomed
        self._held: _Socket | None = None

    def start(self) -> None:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), self.loop).result(WAIT)

    async def _listen(self) -> None:
        app = tornado.web.Application(
            [
                (r"/coflux/ws/worker", _Socket, {"server": self}),
                (r"/coflux/api/projects/([^/]+)/blobs/([0-9a-f]{64})", _Blob, {"server": self}),
            ]
        )
        sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
        self.http = tornado.httpserver.HTTPServer(app)
        self.http.add_sockets(sockets)
        self.url = f"http://127.0.0.1:{sockets[0].getsockname()[1]}/coflux"

    def stop(self) -> None:
        async def close() -> None:
            self.http.stop()
            if self.socket is not None:
                self.socket.close()
            await self.http.close_all_connections()

        asyncio.run_coroutine_threadsafe(close(), self.loop).result(WAIT)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(WAIT)
        self.loop.close()

    def send(self, message: Message) -> None:
        def write() -> None:
            assert self.socket is not None, "no worker connected"
            self.socket.write_message(json.dumps(message))

        self.loop.call_soon_threadsafe(write)

    def release(self) -> None:
        """Welcome the hello that ``hold_welcome`` kept waiting."""

        def welcome() -> None:
            assert self._held is not None, "no hello is waiting"
            self._held.welcome()
            self._held = None

        self.loop.call_soon_threadsafe(welcome)

    def drop(self) -> None:
        def close() -> None:
            if self.socket is not None:
                self.socket.close()

        self.loop.call_soon_threadsafe(close)

    def expect(self, kind: str, skip: tuple[str, ...] = ("heartbeat", "log", "started")) -> Message:
        """The next frame of type ``kind``; frames of the ``skip`` types may come first."""
        deadline = time.monotonic() + WAIT
        while True:
            message = self.inbox.get(timeout=max(0.01, deadline - time.monotonic()))
            assert message["type"] != "invalid", message["error"]
            if message["type"] == kind:
                return message
            assert message["type"] in skip, f"expected {kind}, got {message}"

    def quiet(self, seconds: float, skip: tuple[str, ...] = ("heartbeat",)) -> None:
        """Assert that nothing but ``skip`` frames arrives for ``seconds``."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                message = self.inbox.get(timeout=left)
            except queue.Empty:
                return
            assert message["type"] in skip, f"unexpected {message}"

    def execute(self, execution_id: str, target: cf.Target[..., Any], *arguments: Any) -> None:
        self.send(
            {
                "type": "execute",
                "execution_id": execution_id,
                "step_id": execution_id.rsplit(":", 1)[0],
                "run_id": execution_id.split(":")[0],
                "module": target.module,
                "target": target.name,
                "arguments": list(arguments),
                "workspace": "dev",
                "attempt": 1,
            }
        )


class _Socket(tornado.websocket.WebSocketHandler):
    def initialize(self, server: FakeServer) -> None:
        self.server = server

    def open(self) -> None:
        headers = dict(self.request.headers)
        self.server.requests.append((headers, self.get_argument("project")))
        self.server.socket = self
        self.set_nodelay(True)

    def on_message(self, frame: str | bytes) -> None:
        try:
            messages = protocol.decode_batch_from_worker(frame)
        except ProtocolError as err:
            self.server.inbox.put({"type": "invalid", "error": f"{err}: {frame[:300]!r}"})
            return
        for message in messages:
            self._on_one(message)

    def _on_one(self, message: Message) -> None:
        if message["type"] == "hello":
            self.server.hellos.append(message)
            if self.server.refuse_with is not None:
                error = {"type": "error", "code": self.server.refuse_with, "message": "no"}
                self.write_message(json.dumps(error))
                self.close()
                return
            if self.server.hold_welcome:
                self.server._held = self
            else:
                self.welcome()
        self.server.inbox.put(message)

    def welcome(self) -> None:
        welcome = {
            "type": "welcome",
            "protocol": 1,
            "session_id": "S1",
            "heartbeat_interval": 0.2,
        }
        self.write_message(json.dumps([welcome, *self.server.with_welcome]))

    def on_close(self) -> None:
        if self.server.socket is self:
            self.server.socket = None


class _Blob(tornado.web.RequestHandler):
    def initialize(self, server: FakeServer) -> None:
        self.server = server

    def put(self, project: str, key: str) -> None:
        assert self.request.headers.get("Authorization") == "token T"
        assert hashlib.sha256(self.request.body).hexdigest() == key
        self.server.blobs[key] = self.request.body

    def get(self, project: str, key: str) -> None:
        self.write(self.server.blobs[key])

    def head(self, project: str, key: str) -> None:
        if key not in self.server.blobs:
            raise tornado.web.HTTPError(404)
        self.set_header("Content-Length", str(len(self.server.blobs[key])))
