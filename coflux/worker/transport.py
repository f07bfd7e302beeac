"""The worker's websocket: connect, handshake, read frames, heartbeat, and reconnect with
exponential backoff (0.1 s doubling up to 5 s: :class:`~coflux.background.Backoff`) until closed,
or until the server refuses the worker for good (a bad token, a URL that is not Coflux's: see
:mod:`coflux.worker.failures`). Runs on the worker's event loop; what the frames mean is the
:class:`ConnectionHandler`'s business."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Final, Literal, Protocol

from tornado.httpclient import HTTPRequest
from tornado.iostream import StreamClosedError
from tornado.websocket import WebSocketClientConnection, WebSocketClosedError, websocket_connect

from coflux import address, protocol
from coflux.background import Backoff
from coflux.errors import ProtocolError, request_error
from coflux.protocol import Message
from coflux.tokens import redact_url
from coflux.worker import failures
from coflux.worker.settings import WorkerSettings

_logger = logging.getLogger("coflux.worker")

BACKOFF_MIN: Final = 0.1
BACKOFF_MAX: Final = 5.0
HANDSHAKE_TIMEOUT: Final = 30.0
CONNECT_TIMEOUT: Final = 10.0
Verdict = Literal["retry", "relocated", "final"]
_TEXT: Final = 0x1
"""The opcode of a text frame (RFC 6455)."""


class ConnectionHandler(Protocol):
    """What a :class:`Connection` reports to and asks of the session (all on the loop)."""

    def hello(self) -> Message: ...

    def welcomed(self, welcome: Message) -> None: ...

    def received(self, message: Message) -> None: ...

    def heartbeat(self) -> Message: ...

    def refused(self, error: BaseException, final: bool) -> None:
        """The server refused the worker: for good (``final``: no more attempts), or this time."""

    def unreachable(self, reason: str) -> None:
        """An attempt failed without an answer from Coflux (``reason``); another follows."""

    def relocated(self, url: str) -> None:
        """The API was found at ``url``, under the URL configured: used from now on."""

    def disconnected(self, reason: str | None) -> None:
        """A welcomed connection ended (``reason``; ``None``: the worker is closing)."""


def _consume(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()  # a write to a connection that closed meanwhile: the reader notices


def _write_text(ws: WebSocketClientConnection, text: str) -> None:
    """Write one text frame. ``write_message`` wraps every write in a task of its own, which costs
    the loop two more turns per frame (the task's step, then its done callback); on the path of
    every call a worker makes that was about 50 µs of a 300 µs cache hit. So the frame goes through
    the protocol's frame writer when it has tornado 6's (no compression is ever negotiated), and
    the stream write's future is checked as the task's would be; else through the public API."""
    writer = ws.protocol
    write_frame = getattr(writer, "_write_frame", None)
    if write_frame is None or getattr(writer, "_compressor", None) is not None:
        ws.write_message(text).add_done_callback(_consume)
        return
    future = write_frame(True, _TEXT, text.encode("utf-8"))
    if future.done():
        _consume(future)
    else:
        future.add_done_callback(_consume)


class Connection:
    def __init__(self, settings: WorkerSettings, handler: ConnectionHandler) -> None:
        self._settings = settings
        self._handler = handler
        self.url = address.known(settings.url)
        """Where the API is: the URL configured, or where it was found under that."""
        self._ws: WebSocketClientConnection | None = None
        self._closing = False
        self._wake = asyncio.Event()
        self._attempt: asyncio.Future[None] | None = None
        """The connection being made or served; cancelled by :meth:`close` before its welcome."""
        self._abandoned = False
        self._outbox: list[str] = []
        self._later: asyncio.Handle | None = None
        """The flush scheduled for the next turn of the loop, if any."""

    @property
    def connected(self) -> bool:
        return self._ws is not None

    def send(self, message: Message, encoded: str | None = None) -> bool:
        """Queue a message (``encoded``: its JSON text, if the caller has it); ``False`` when there
        is no live connection. What is queued leaves as one frame at :meth:`flush`, which the
        session calls when it finishes a unit of work (a drain, a received frame); a flush at the
        next turn of the loop catches anything else."""
        if self._ws is None:
            return False
        if self._later is None:
            self._later = asyncio.get_running_loop().call_soon(self.flush)
        self._outbox.append(encoded if encoded is not None else protocol.encode(message))
        return True

    def flush(self) -> None:
        if self._later is not None:
            self._later.cancel()
            self._later = None
        outbox, self._outbox = self._outbox, []
        ws = self._ws
        if ws is None or not outbox:
            return  # lost with the connection: the session re-sends what matters after welcome
        try:
            for frame in protocol.frames(outbox):  # within the server's limits on a frame
                _write_text(ws, frame)
        except (WebSocketClosedError, StreamClosedError):
            _logger.debug("coflux: %d messages lost with the connection", len(outbox))

    async def run(self) -> None:
        """Connect and serve until :meth:`close`; reconnect after every loss, backing off."""
        backoff = Backoff(BACKOFF_MIN, BACKOFF_MAX)
        while not self._closing:
            try:
                self._attempt = asyncio.ensure_future(self._serve())
                await self._attempt
                backoff.reset()
            except asyncio.CancelledError:
                if self._abandoned:  # closed while connecting: nothing to wait for
                    break
                raise
            except Exception as err:  # every failure is reported, then retried or final
                if self._closing:
                    break
                verdict = await self._failed(err, backoff.delay)
                if verdict == "final":
                    break
                if verdict == "relocated":
                    continue
            if self._closing:
                break
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), backoff.next())

    async def _failed(self, err: Exception, delay: float) -> Verdict:
        """Tell the handler what a failed attempt means: ``retry``, ``relocated`` (try again at
        once, at the URL found) or ``final``."""
        failure = failures.classify(err, self.url, HANDSHAKE_TIMEOUT)
        if failure.kind == "foreign":
            location = await asyncio.to_thread(address.locate, self.url, self._settings.token)
            if self._closing:
                return "final"
            if location.found is not None:
                _logger.info("coflux: %s", address.relocation_note(self.url, location.found))
                self.url = location.found
                self._handler.relocated(location.found)
                return "relocated"
            refusal = address.not_coflux(self.url, location.answer or failure.answer)
            self._handler.refused(refusal, final=True)
            return "final"
        if failure.kind == "refused" and failure.error is not None:
            _logger.info("coflux: the server refused the worker: %s", failure.reason)
            self._handler.refused(failure.error, final=True)
            return "final"
        if failure.unexpected:
            _logger.error("coflux: the connection failed unexpectedly", exc_info=err)
        _logger.info("coflux: cannot connect (%s); retrying in %.1f s", failure.reason, delay)
        if failure.error is not None:
            self._handler.refused(failure.error, final=False)
        self._handler.unreachable(failure.reason)
        return "retry"

    async def close(self) -> None:
        self._closing = True
        self._wake.set()
        ws = self._ws
        if ws is not None:
            ws.close()
        elif self._attempt is not None and not self._attempt.done():
            self._abandoned = True  # not welcomed yet (a server that doesn't answer): stop waiting
            self._attempt.cancel()

    async def _serve(self) -> None:
        """One connection: handshake, then read until it closes.

        Frames are taken from tornado's message callback, as its frame loop reads them, rather
        than through ``read_message``'s queue: a frame is handled in the loop turn that read it."""
        frames = _Frames(asyncio.get_running_loop(), self._deliver_frame)
        ws = await websocket_connect(
            self._request(), max_message_size=protocol.MAX_FRAME_BYTES, on_message_callback=frames.on_frame
        )
        if ws.protocol is not None:
            # Small frames back to back (started, log, complete) must not wait on Nagle + delayed ACK.
            ws.protocol.set_nodelay(True)
        heartbeat: asyncio.Task[None] | None = None
        try:
            welcome, early = await self._handshake(ws, frames)
            self._ws = ws
            self._handler.welcomed(welcome)
            self._deliver(early)  # anything that shared the welcome's frame
            frames.open()  # then what arrived since, then every frame as it comes
            _logger.info("coflux: connected to %s", redact_url(self.url))
            interval = float(welcome.get("heartbeat_interval") or 2.0)
            heartbeat = asyncio.create_task(self._beat(interval))
            await frames.closed
        finally:
            frames.shut()
            if heartbeat is not None:
                heartbeat.cancel()
            ws.close()
            if self._ws is ws:
                self._ws = None
                closing = self._closing
                self._handler.disconnected(
                    None if closing else failures.close_reason(ws.close_code, ws.close_reason)
                )

    def _request(self) -> HTTPRequest:
        headers = {}
        if self._settings.token:
            headers["Authorization"] = f"token {self._settings.token}"
        return HTTPRequest(
            replace(self._settings, url=self.url).websocket_url,
            headers=headers,
            connect_timeout=CONNECT_TIMEOUT,
            request_timeout=HANDSHAKE_TIMEOUT,
        )

    async def _handshake(
        self, ws: WebSocketClientConnection, frames: _Frames
    ) -> tuple[Message, list[Message]]:
        """The welcome, and any messages that shared its frame. A refusal is raised (the
        ``RequestError`` for its code)."""
        ws.write_message(protocol.encode(self._handler.hello())).add_done_callback(_consume)
        frame = await asyncio.wait_for(frames.first(), HANDSHAKE_TIMEOUT)
        if frame is None:
            raise WebSocketClosedError("closed during the handshake")
        message, *rest = protocol.decode_batch_from_server(frame)
        if message["type"] == "error":
            raise request_error(message["code"], message["message"])
        if message["type"] != "welcome" or message["protocol"] != protocol.PROTOCOL_VERSION:
            raise ProtocolError("unexpected", f"expected welcome (protocol 1), got {message!r}")
        return message, rest

    def _deliver_frame(self, frame: str | bytes) -> None:
        try:
            messages = protocol.decode_batch_from_server(frame)
        except ProtocolError as err:
            _logger.warning("coflux: ignoring a bad frame from the server: %s", err)
            return
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


class _Frames:
    """The frames of one connection, from tornado's message callback (``None``: it closed). The
    first one (the handshake's answer) is awaited; later ones wait, in order, until :meth:`open`
    (the session has taken the welcome); from then on each is handled as it arrives."""

    def __init__(self, loop: asyncio.AbstractEventLoop, deliver: Callable[[str | bytes], None]) -> None:
        self._deliver = deliver
        self._first: asyncio.Future[str | bytes | None] = loop.create_future()
        self._waiting: list[str | bytes] | None = []
        self.closed: asyncio.Future[None] = loop.create_future()

    def first(self) -> asyncio.Future[str | bytes | None]:
        return self._first

    def on_frame(self, frame: str | bytes | None) -> None:
        if frame is None:
            self.shut()
        elif not self._first.done():
            self._first.set_result(frame)
        elif self._waiting is not None:
            self._waiting.append(frame)
        elif not self.closed.done():
            try:
                self._deliver(frame)
            except Exception:
                _logger.exception("coflux: failed to handle a frame")

    def open(self) -> None:
        waiting, self._waiting = self._waiting or [], None
        for frame in waiting:
            if self.closed.done():
                return
            self._deliver(frame)

    def shut(self) -> None:
        if not self._first.done():
            self._first.set_result(None)
        if not self.closed.done():
            self.closed.set_result(None)
