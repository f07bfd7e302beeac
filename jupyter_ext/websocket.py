"""Websockets: the worker protocol (``coflux/ws/worker``) and live events (``coflux/ws/events``)."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from jupyter_server.auth.decorator import allow_unauthenticated
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.base.websocket import WebSocketMixin
from tornado import web, websocket

from coflux import protocol
from coflux.errors import ProtocolError, RequestError, StorageError
from coflux.orchestrator import Hub, ProjectService, Session
from jupyter_ext.errors import code_of, error_body, status_of
from jupyter_ext.handlers import authorize

log = logging.getLogger(__name__)


class _Socket(WebSocketMixin, websocket.WebSocketHandler, JupyterHandler):
    project_service: ProjectService | None = None

    @property
    def hub(self) -> Hub:
        hub: Hub = self.settings["coflux_hub"]
        return hub

    @property
    def max_message_size(self) -> int:
        return protocol.MAX_FRAME_BYTES

    async def _open_project(self) -> None:
        """Authorize and open the project, before the upgrade. A refusal or a project that can't be
        opened is answered as JSON, ``{"error": {"code", "message"}}``, and the upgrade never happens
        (the message names the project and the cause; other projects are unaffected)."""
        project = self.get_query_argument("project", "default")
        try:
            authorize(self, self.hub, project)
            self.project_service = await self.hub.project(project, create=True)
        except (RequestError, StorageError) as err:
            if isinstance(err, StorageError):
                self.log.error("a websocket of project %r was refused: %s", project, err)
            self.set_status(status_of(err))
            self.set_header("Content-Type", "application/json")
            raise web.Finish(error_body(code_of(err), str(err))) from err

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
            self.write_message(protocol.encode_batch(outbox))
        except websocket.WebSocketClosedError:
            log.debug("dropped %d messages to a closed socket", len(outbox))


class WorkerSocket(_Socket):
    session: Session | None = None

    @allow_unauthenticated
    async def get(self, *args: Any, **kwargs: Any) -> None:
        await self._open_project()
        await super().get(*args, **kwargs)

    def _close(self, code: int, reason: str) -> None:
        self._flush()
        self.close(code, reason)

    def on_message(self, frame: str | bytes) -> None:
        service = self.project_service
        assert service is not None
        try:
            messages = protocol.decode_batch_from_worker(frame)
        except ProtocolError as err:
            self._refuse(err.code, err.message, None, fatal=self.session is None)
            return
        for message in messages:
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
        service.commit_now()  # the frame's events in one transaction, without waiting a loop turn
        self._flush()

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

    _unsubscribe: Any = None

    @allow_unauthenticated
    async def get(self, *args: Any, **kwargs: Any) -> None:
        await self._open_project()
        await super().get(*args, **kwargs)

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
