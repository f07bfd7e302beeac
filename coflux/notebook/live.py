"""Live updates for widgets: one process-wide :class:`Watcher`.

The watcher owns a :class:`~coflux.background.BackgroundLoop` (a daemon thread running its own
asyncio loop, never the kernel's), started on first use. For each server and project it keeps one
events websocket (``{url}/ws/events?project=P``), reconnecting with backoff (0.2 s doubling up to
5 s), and routes each event to the listeners interested in it: a run's events to those watching
that run id, ``workspace`` events to those watching workspaces. A listener is then asked to
:meth:`~Listener.live_update` itself, on one of the watcher's daemon helper threads (so a slow
request never stalls the socket), never twice at once, and at most every ``min_interval`` seconds:
a burst of events costs one or two updates. After every (re)connection each listener is updated
once, so nothing missed while disconnected is lost.

While the websocket can't be opened (refused, unreachable, closed), listeners that asked for it
(``poll=True``: their run is not finished) are updated every ``poll_interval`` seconds instead.

Listeners are held weakly: a listener that is garbage-collected stops being watched. The watcher
stops at interpreter exit (``atexit``) without waiting on the network.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
import json
import logging
import queue
import threading
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import WebSocketClientConnection, WebSocketError, websocket_connect

from coflux.background import BackgroundLoop, Backoff, websocket_url
from coflux.tokens import redact_url

_logger = logging.getLogger("coflux.notebook")

POLL_INTERVAL: Final = 1.0
MIN_INTERVAL: Final = 0.1
BACKOFF_MIN: Final = 0.2
BACKOFF_MAX: Final = 5.0
CONNECT_TIMEOUT: Final = 10.0
HELPER_THREADS: Final = 4
STOP_TIMEOUT: Final = 2.0


@dataclass(frozen=True)
class Endpoint:
    """Where events come from: a server (its ``.../coflux`` URL), a credential and a project."""

    url: str
    token: str | None
    project: str

    @classmethod
    def of(cls, source: Any) -> Endpoint:
        """The endpoint of anything with ``url``, ``token`` and ``project`` (a Client, a session)."""
        return cls(str(source.url).rstrip("/"), source.token, str(source.project))


def events_url(endpoint: Endpoint) -> str:
    """``{url}/ws/events?project=P``, ``http(s)`` turned into ``ws(s)``."""
    return websocket_url(endpoint.url, "ws/events", {"project": endpoint.project})


class Listener(Protocol):
    def live_update(self) -> None:
        """Something watched changed (or may have): fetch afresh. Called on a helper thread."""


@dataclass(eq=False)
class _Entry:
    ref: weakref.ReferenceType[Any]
    endpoint: Endpoint
    runs: frozenset[str] = frozenset()
    workspaces: bool = False
    poll: bool = True
    active: bool = True
    # The rest is touched on the loop only.
    running: bool = False
    dirty: bool = False
    last: float = float("-inf")
    timer: asyncio.TimerHandle | None = field(default=None, repr=False)

    def concerns(self, event: dict[str, Any]) -> bool:
        if event.get("type") == "workspace":
            return self.workspaces
        return event.get("run_id") in self.runs


class _Helpers:
    """A few daemon threads that run listeners' updates; the interpreter never waits for them."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._queue: queue.SimpleQueue[tuple[Callable[[], None], Callable[[], None]] | None]
        self._queue = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []

    def submit(self, work: Callable[[], None], done: Callable[[], None]) -> None:
        if len(self._threads) < self._size:
            thread = threading.Thread(target=self._serve, name="coflux-live-update", daemon=True)
            thread.start()
            self._threads.append(thread)
        self._queue.put((work, done))

    def _serve(self) -> None:
        while (item := self._queue.get()) is not None:
            _run(*item)
            del item  # waiting for the next one must not keep this listener alive

    def close(self) -> None:
        for _ in self._threads:
            self._queue.put(None)
        self._threads = []


def _run(work: Callable[[], None], done: Callable[[], None]) -> None:
    try:
        work()
    except Exception:  # a listener's bug must not kill the helper
        _logger.exception("coflux: a live widget failed to update")
    finally:
        done()


class Watcher:
    """Routes server events to listeners; see the module's docstring. Thread-safe."""

    def __init__(
        self,
        *,
        url_of: Callable[[Endpoint], str] = events_url,
        poll_interval: float = POLL_INTERVAL,
        min_interval: float = MIN_INTERVAL,
    ) -> None:
        self._url_of = url_of
        self.poll_interval = poll_interval
        self.min_interval = min_interval
        self._lock = threading.RLock()  # re-entrant: weakref callbacks may run inside it (GC)
        self._entries: dict[int, _Entry] = {}
        self._feeds: dict[Endpoint, _Feed] = {}  # the loop's
        self._background: BackgroundLoop | None = None
        self._helpers = _Helpers(HELPER_THREADS)
        self._closed = False

    # -- the listeners' side (any thread) ----------------------------------------------------------

    def watch(
        self,
        endpoint: Endpoint,
        listener: Listener,
        *,
        runs: Iterable[str] = (),
        workspaces: bool = False,
        poll: bool = True,
    ) -> None:
        """Watch ``runs`` (and workspace changes if ``workspaces``) of ``endpoint`` for
        ``listener``; calling it again replaces the listener's interests. ``poll``: update it
        every ``poll_interval`` seconds while the websocket is down (say so while its run is
        unfinished)."""
        key = id(listener)
        with self._lock:
            if self._closed:
                return
            entry = self._entries.get(key)
            if entry is None or entry.ref() is not listener or entry.endpoint != endpoint:
                if entry is not None:
                    entry.active = False
                ref = weakref.ref(listener, functools.partial(self._forget, key))
                entry = self._entries[key] = _Entry(ref, endpoint)
            entry.runs, entry.workspaces, entry.poll = frozenset(runs), workspaces, poll
        self._call(self._sync)

    def unwatch(self, listener: Listener) -> None:
        with self._lock:
            entry = self._entries.get(id(listener))
            if entry is None or entry.ref() is not listener:
                return
            del self._entries[id(listener)]
            entry.active = False
        self._call(self._sync)

    def poke(self, listener: Listener) -> None:
        """Update ``listener`` soon (coalesced with any update already due)."""
        with self._lock:
            entry = self._entries.get(id(listener))
        if entry is not None and entry.ref() is listener:
            self._call(self._schedule, entry)

    def poke_all(self) -> None:
        """Update every listener soon: for changes no event reports (the kernel switched workspace)."""
        for entry in self._live_entries():
            self._call(self._schedule, entry)

    def watching(self, endpoint: Endpoint) -> list[Listener]:
        """The listeners of ``endpoint`` still alive."""
        found = (entry.ref() for entry in self._live_entries() if entry.endpoint == endpoint)
        return [listener for listener in found if listener is not None]

    def connected(self, endpoint: Endpoint) -> bool:
        """Whether the events websocket of ``endpoint`` is open right now."""
        feed = self._feeds.get(endpoint)
        return feed is not None and feed.ws is not None

    def close(self, timeout: float = STOP_TIMEOUT) -> None:
        """Close every websocket and stop the thread (waiting at most ``timeout`` seconds)."""
        with self._lock:
            self._closed = True
            background, self._background = self._background, None
            self._entries.clear()
        if background is None:
            return
        try:
            background.run(self._shutdown, timeout=timeout)
        except Exception:
            _logger.debug("coflux: the live watcher did not stop cleanly", exc_info=True)
        background.stop(timeout)
        self._helpers.close()

    def _forget(self, key: int, ref: weakref.ReferenceType[Any]) -> None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry.ref is not ref:
                return
            del self._entries[key]
            entry.active = False
        self._call(self._sync)

    def _live_entries(self) -> list[_Entry]:
        with self._lock:
            return [entry for entry in self._entries.values() if entry.ref() is not None]

    def _call(self, callback: Callable[..., None], *args: Any) -> None:
        """Run ``callback(*args)`` on the loop, starting the thread on first use."""
        with self._lock:
            if self._closed:
                return
            if self._background is None:
                self._background = BackgroundLoop("coflux-live")
                self._background.start()
            background = self._background
        background.call_soon(callback, *args)  # closed meanwhile: nothing left to do

    # -- the loop's side ---------------------------------------------------------------------------

    def _sync(self) -> None:
        """One feed per endpoint that has listeners, none for the others."""
        wanted = {entry.endpoint for entry in self._live_entries()}
        for endpoint in [e for e in self._feeds if e not in wanted]:
            self._feeds.pop(endpoint).close()
        for endpoint in wanted - self._feeds.keys():
            self._feeds[endpoint] = _Feed(self, endpoint)

    def _dispatch(self, endpoint: Endpoint, event: dict[str, Any]) -> None:
        for entry in self._live_entries():
            if entry.endpoint == endpoint and entry.concerns(event):
                self._schedule(entry)

    def _update_all(self, endpoint: Endpoint, *, polling: bool) -> None:
        for entry in self._live_entries():
            if entry.endpoint == endpoint and (entry.poll or not polling):
                self._schedule(entry)

    def _schedule(self, entry: _Entry) -> None:
        if not entry.active:
            return
        if entry.running:
            entry.dirty = True
            return
        if entry.timer is not None:
            return
        loop = asyncio.get_running_loop()
        delay = max(0.0, entry.last + self.min_interval - loop.time())
        entry.timer = loop.call_later(delay, self._start, entry)

    def _start(self, entry: _Entry) -> None:
        entry.timer = None
        listener = entry.ref()
        if listener is None or not entry.active:
            return
        loop = asyncio.get_running_loop()
        entry.running, entry.dirty, entry.last = True, False, loop.time()

        def done() -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed at exit
                loop.call_soon_threadsafe(self._finished, entry)

        self._helpers.submit(listener.live_update, done)

    def _finished(self, entry: _Entry) -> None:
        entry.running = False
        if entry.dirty:
            self._schedule(entry)

    async def _shutdown(self) -> None:
        feeds, self._feeds = list(self._feeds.values()), {}
        for feed in feeds:
            feed.close()
        await asyncio.gather(*(feed.task for feed in feeds), return_exceptions=True)


class _Feed:
    """One endpoint's websocket (re-opened after any loss) and its polling while it is down."""

    def __init__(self, watcher: Watcher, endpoint: Endpoint) -> None:
        self.watcher = watcher
        self.endpoint = endpoint
        self.ws: WebSocketClientConnection | None = None
        self.task = asyncio.get_running_loop().create_task(self._run())

    def close(self) -> None:
        self.task.cancel()
        if self.ws is not None:
            self.ws.close()

    async def _run(self) -> None:
        poller = asyncio.create_task(self._poll())
        backoff = Backoff(BACKOFF_MIN, BACKOFF_MAX)
        try:
            while True:
                try:
                    ws = await websocket_connect(self._request())
                    backoff.reset()
                    await self._serve(ws)
                except (OSError, HTTPClientError, asyncio.TimeoutError, WebSocketError) as err:
                    _logger.debug(
                        "coflux: no events socket for %s (%s); polling", redact_url(self.endpoint.url), err
                    )
                except Exception:
                    _logger.exception("coflux: the events socket of %s failed", redact_url(self.endpoint.url))
                await asyncio.sleep(backoff.next())
        finally:
            poller.cancel()

    def _request(self) -> HTTPRequest:
        headers = {"Authorization": f"token {self.endpoint.token}"} if self.endpoint.token else {}
        url = self.watcher._url_of(self.endpoint)
        return HTTPRequest(
            url, headers=headers, connect_timeout=CONNECT_TIMEOUT, request_timeout=CONNECT_TIMEOUT
        )

    async def _serve(self, ws: WebSocketClientConnection) -> None:
        self.ws = ws
        try:
            self.watcher._update_all(self.endpoint, polling=False)  # catch up on what was missed
            while (frame := await ws.read_message()) is not None:
                for event in _events(frame):
                    self.watcher._dispatch(self.endpoint, event)
        finally:
            self.ws = None
            ws.close()

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.watcher.poll_interval)
            if self.ws is None:
                self.watcher._update_all(self.endpoint, polling=True)


def _events(frame: str | bytes) -> list[dict[str, Any]]:
    try:
        data = json.loads(frame)
    except ValueError:
        _logger.debug("coflux: ignoring an events frame that is not JSON")
        return []
    items = data if isinstance(data, list) else [data]
    return [item for item in items if isinstance(item, dict)]


_watcher: Watcher | None = None
_watcher_lock = threading.Lock()


def watcher() -> Watcher:
    """The process-wide watcher (started on first use, stopped at exit)."""
    global _watcher
    with _watcher_lock:
        if _watcher is None:
            _watcher = Watcher()
            atexit.register(_watcher.close)
        return _watcher
