"""The worker's websocket: connect, handshake, read frames, heartbeat, and reconnect with
exponential backoff (0.1 s doubling up to 5 s) until closed. Runs on the worker's event loop;
what the frames mean is the :class:`ConnectionHandler`'s business."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Final, Protocol

from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import WebSocketClientConnection, WebSocketClosedError, websocket_connect

from coflux import protocol
from coflux.errors import ProtocolError, request_error
from coflux.protocol import Message
from coflux.worker.settings import WorkerSettings

_logger = logging.getLogger("coflux.worker")

BACKOFF_MIN: Final = 0.1
BACKOFF_MAX: Final = 5.0
HANDSHAKE_TIMEOUT: Final = 30.0
_HTTP_REFUSALS: Final = {401: "unauthorized", 403: "unauthorized", 404: "not_found"}


class ConnectionHandler(Protocol):
    """What a :class:`Connection` reports to and asks of the session (all on the loop)."""

    def hello(self) -> Message: ...

    def welcomed(self, welcome: Message) -> None: ...

    def received(self, message: Message) -> None: ...

    def heartbeat(self) -> Message: ...

    def refused(self, error: BaseException) -> None: ...

    def disconnected(self) -> None: ...


def _consume(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()  # a write to a connection that closed meanwhile: the reader notices


class Connection:
    def __init__(self, settings: WorkerSettings, handler: ConnectionHandler) -> None:
        self._settings = settings
        self._handler = handler
        self._ws: WebSocketClientConnection | None = None
        self._closing = False
        self._wake = asyncio.Event()
        self._outbox: list[str] = []
        self._early: list[Message] = []

    @property
    def connected(self) -> bool:
        return self._ws is not None

    def send(self, message: Message) -> bool:
        """Queue a message; ``False`` when there is no live connection. What is queued leaves as one
        frame at :meth:`flush`, which the session calls when it finishes a unit of work (a drain, a
        received frame); a flush at the next turn of the loop catches anything else."""
        if self._ws is None:
            return False
        if not self._outbox:
            asyncio.get_running_loop().call_soon(self.flush)
        self._outbox.append(protocol.encode(message))
        return True

    def flush(self) -> None:
        outbox, self._outbox = self._outbox, []
        ws = self._ws
        if ws is None or not outbox:
            return  # lost with the connection: the session re-sends what matters after welcome
        try:
            ws.write_message(protocol.encode_batch(outbox)).add_done_callback(_consume)
        except WebSocketClosedError:
            _logger.debug("coflux: %d messages lost with the connection", len(outbox))

    async def run(self) -> None:
        """Connect and serve until :meth:`close`; reconnect after every loss, backing off."""
        delay = BACKOFF_MIN
        while not self._closing:
            try:
                if await self._serve():
                    delay = BACKOFF_MIN
            except HTTPClientError as err:
                code = _HTTP_REFUSALS.get(err.code)
                if code is not None:
                    self._handler.refused(request_error(code, f"the server refused: {err}"))
                _logger.info("coflux: cannot connect (%s); retrying in %.1f s", err, delay)
            except (OSError, ProtocolError, asyncio.TimeoutError, WebSocketClosedError) as err:
                _logger.info("coflux: connection lost (%s); retrying in %.1f s", err, delay)
            except Exception:
                _logger.exception("coflux: the connection failed unexpectedly")
            if self._closing:
                break
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)
            delay = min(delay * 2, BACKOFF_MAX)

    async def close(self) -> None:
        self._closing = True
        self._wake.set()
        ws = self._ws
        if ws is not None:
            ws.close()

    async def _serve(self) -> bool:
        """One connection: handshake, then read until it closes. Whether it got welcomed."""
        ws = await websocket_connect(self._request(), max_message_size=protocol.MAX_FRAME_BYTES)
        if ws.protocol is not None:
            # Small frames back to back (started, log, complete) must not wait on Nagle + delayed ACK.
            ws.protocol.set_nodelay(True)
        heartbeat: asyncio.Task[None] | None = None
        try:
            welcome = await self._handshake(ws)
            if welcome is None:
                return False
            self._ws = ws
            self._handler.welcomed(welcome)
            early, self._early = self._early, []
            self._deliver(early)
            _logger.info("coflux: connected to %s", self._settings.url)
            interval = float(welcome.get("heartbeat_interval") or 2.0)
            heartbeat = asyncio.create_task(self._beat(interval))
            await self._read(ws)
            return True
        finally:
            if heartbeat is not None:
                heartbeat.cancel()
            ws.close()
            if self._ws is ws:
                self._ws = None
                self._handler.disconnected()

    def _request(self) -> HTTPRequest:
        headers = {}
        if self._settings.token:
            headers["Authorization"] = f"token {self._settings.token}"
        return HTTPRequest(
            self._settings.websocket_url,
            headers=headers,
            connect_timeout=HANDSHAKE_TIMEOUT,
            request_timeout=HANDSHAKE_TIMEOUT,
        )

    async def _handshake(self, ws: WebSocketClientConnection) -> Message | None:
        ws.write_message(protocol.encode(self._handler.hello())).add_done_callback(_consume)
        frame = await asyncio.wait_for(ws.read_message(), HANDSHAKE_TIMEOUT)
        if frame is None:
            raise WebSocketClosedError("closed during the handshake")
        message, *rest = protocol.decode_batch_from_server(frame)
        if message["type"] == "error":
            self._handler.refused(request_error(message["code"], message["message"]))
            _logger.warning("coflux: the server refused the worker: %s", message["message"])
            return None
        if message["type"] != "welcome" or message["protocol"] != protocol.PROTOCOL_VERSION:
            raise ProtocolError("unexpected", f"expected welcome (protocol 1), got {message!r}")
        self._early = rest  # anything that shared the welcome's frame, handled once welcomed
        return message

    async def _read(self, ws: WebSocketClientConnection) -> None:
        while True:
            frame = await ws.read_message()
            if frame is None:
                return
            try:
                messages = protocol.decode_batch_from_server(frame)
            except ProtocolError as err:
                _logger.warning("coflux: ignoring a bad frame from the server: %s", err)
                continue
            self._deliver(messages)

    def _deliver(self, messages: list[Message]) -> None:
        for message in messages:
            try:
                self._handler.received(message)
            except Exception:
                _logger.exception("coflux: failed to handle %s", message.get("type"))
        self.flush()

    async def _beat(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            self.send(self._handler.heartbeat())
