"""Websockets: the worker protocol (``coflux/ws/worker``) and live events (``coflux/ws/events``)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Generator
from typing import Any, Final

from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.base.websocket import WebSocketMixin
from jupyter_server.extension.handler import ExtensionHandlerMixin
from tornado import websocket

from coflux import protocol
from coflux.errors import ProtocolError, RequestError, StorageError
from coflux.orchestrator import ProjectService, Session
from jupyter_ext.auth import Authorized
from jupyter_ext.errors import code_of

log = logging.getLogger(__name__)


class _Socket(Authorized, ExtensionHandlerMixin, WebSocketMixin, websocket.WebSocketHandler, JupyterHandler):
    """Authorized (see :mod:`jupyter_ext.auth`) before the upgrade: a refusal is a JSON 401 or 403."""

    project_service: ProjectService | None = None

    @property
    def max_message_size(self) -> int:
        return protocol.MAX_FRAME_BYTES

    def token_project(self) -> str | None:
        return self.get_query_argument("project", "default")

    async def get(self, *args: Any, **kwargs: Any) -> None:
        if await self._open_project():
            await super().get(*args, **kwargs)

    async def _open_project(self) -> bool:
        """The project (created on first use), or False once a JSON error has answered: before the
        upgrade, so a project that can't be opened gets ``{"error": {"code", "message"}}`` naming
        the project and the cause (other projects are unaffected)."""
        project = self.token_project() or "default"
        try:
            self.project_service = await self.hub.project(project, create=True)
        except (RequestError, StorageError) as err:
            if isinstance(err, StorageError):
                self.log.error("a websocket of project %r was refused: %s", project, err)
            self.fail(err)
            return False
        return True

    def open(self, *args: Any, **kwargs: Any) -> None:
        # Replies are small frames written back to back: without this, each waits on a delayed ACK.
        self.set_nodelay(True)
        super().open(*args, **kwargs)  # Jupyter's keepalive pings

    _outbox: list[str] | None = None

    def send(self, message: dict[str, Any]) -> None:
        """Queue a message; everything queued in one turn of the loop leaves as one frame."""
        if self._outbox is None:
            self._outbox = []
            asyncio.get_running_loop().call_soon(self._flush)
        self._outbox.append(protocol.encode(message))

    def _flush(self) -> None:
        outbox, self._outbox = self._outbox, None
        if not outbox:
            return
        try:
            for frame in protocol.frames(outbox):
                self.write_message(frame)
        except websocket.WebSocketClosedError:
            log.debug("dropped %d messages to a closed socket", len(outbox))


TURN_MESSAGES: Final = 1024
"""Messages of one frame handled (or, while parsing, 4 times as many read) per turn of the loop."""
TURN_SECONDS: Final = 0.01
"""Time after which a frame's slice ends early (after the message that passed it)."""


class _Turn:
    """One connection's share of a turn of the loop: spent after ``TURN_MESSAGES`` messages or
    ``TURN_SECONDS``, whichever comes first; then it starts again."""

    def __init__(self) -> None:
        self._messages = 0
        self._started = time.perf_counter()

    def spent(self, messages: int) -> bool:
        self._messages += messages
        now = time.perf_counter()
        if self._messages < TURN_MESSAGES and now - self._started < TURN_SECONDS:
            return False
        self._messages, self._started = 0, now
        return True


class WorkerSocket(_Socket):
    auth_resource = "coflux:worker"
    auth_actions = {"GET": "execute"}

    session: Session | None = None

    def _close(self, code: int, reason: str) -> None:
        self._flush()
        self.close(code, reason)

    def on_message(self, frame: str | bytes) -> Awaitable[None] | None:
        """Handle a frame: in this turn of the loop if it is small (the common case costs no task),
        else in slices, one per turn (see :meth:`_slices`). Tornado reads this connection's next
        frame only once the returned coroutine is done, so a worker can't queue up work faster
        than it is done."""
        slices = self._slices(frame)
        if next(slices, None) is None:
            return None
        return self._resume(slices)

    async def _resume(self, slices: Generator[bool, None, None]) -> None:
        while True:
            await asyncio.sleep(0)  # other connections and requests are served meanwhile
            if self.ws_connection is None or self.ws_connection.is_closing():
                slices.close()  # replaced, timed out, or the project reloaded: the rest is moot
                return
            if next(slices, None) is None:
                return

    def _slices(self, frame: str | bytes) -> Generator[bool, None, None]:
        """Parse, check and handle a frame, stopping (``yield``) whenever this turn's share is
        spent: ``TURN_MESSAGES`` messages or ``TURN_SECONDS``. A frame over the message limit is
        refused before any of it is handled. What a slice changed commits at its end, and the
        replies that depend on it leave then, as at the end of a frame."""
        turn = _Turn()
        messages: list[dict[str, Any]] = []
        try:
            reader = protocol.FrameReader(frame)
            while True:
                read = reader.read(4 * TURN_MESSAGES)
                messages += read
                if reader.done:
                    break
                if turn.spent(len(read) // 4):
                    yield True
        except ProtocolError as err:
            self._refuse(err.code, err.message, None, fatal=self.session is None)
            self._flush()
            return
        for index, message in enumerate(messages, 1):
            self._handle(message)
            if index < len(messages) and turn.spent(1):
                self._commit()
                yield True
        self._commit()

    def _commit(self) -> None:
        assert self.project_service is not None
        self.project_service.commit_now()  # the slice's events in one transaction, at once
        self._flush()

    def _handle(self, message: dict[str, Any]) -> None:
        service = self.project_service
        assert service is not None
        request_id = message.get("request_id")
        try:
            if self.session is None:
                if message["type"] != "hello":
                    raise ProtocolError("handshake", "the first message must be 'hello'")
                self.session = service.connect(message, self.send, self._close, self._flush)
                self._flush()  # the welcome travels alone: the handshake is one message
            else:
                service.receive(self.session, message)
        except ProtocolError as err:
            self._refuse(err.code, err.message, request_id, fatal=self.session is None)
        except (RequestError, StorageError) as err:
            self._refuse(code_of(err), str(err), request_id, fatal=self.session is None)
        except Exception:  # a bug of ours: refuse this message, keep serving the connection
            log.exception("failed to handle a %s message", message.get("type"))
            self._refuse("internal", "the server failed to handle this message", request_id, fatal=False)

    def _refuse(self, code: str, message: str, request_id: Any, fatal: bool) -> None:
        error: dict[str, Any] = {"type": "error", "code": code, "message": message}
        if isinstance(request_id, int):
            error["request_id"] = request_id
        self.send(error)
        if fatal:
            self._close(4002, message[:120])

    def on_close(self) -> None:
        if self.session is not None and self.project_service is not None:
            self.project_service.disconnected(self.session, self.send)


class EventsSocket(_Socket):
    """Pushes ``run`` and ``execution`` events of one project as they commit."""

    auth_resource = "coflux:events"

    _unsubscribe: Any = None

    def open(self, *args: Any, **kwargs: Any) -> None:
        super().open(*args, **kwargs)
        assert self.project_service is not None
        self._unsubscribe = self.project_service.subscribe(self._event)

    def _event(self, event: dict[str, Any]) -> None:
        try:
            self.write_message(json.dumps(event))
        except websocket.WebSocketClosedError:
            self.on_close()

    def on_message(self, frame: str | bytes) -> None:
        self.send({"type": "error", "code": "unexpected_message", "message": "this socket only sends"})

    def on_close(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
