"""What a connection kept in the background needs, shared by the worker and the live widgets: an
event loop on a daemon thread of its own (:class:`BackgroundLoop`), when to try again after a
failure (:class:`Backoff`), where the websocket is (:func:`websocket_url`), and a check that state a
thread owns is touched only by that thread (:class:`ThreadOwner`).

A background loop never uses the caller's loop, so it works inside a Jupyter kernel, whose own loop
must not be nested or blocked. It hosts an anyio :class:`~anyio.from_thread.BlockingPortal` on the
asyncio backend: coroutines started through it (:meth:`BackgroundLoop.submit`) are the portal's
tasks, cancelled when the loop stops. Callbacks on the hot path (:meth:`BackgroundLoop.call_soon`)
skip the portal and go straight to the loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import random
import threading
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from anyio.from_thread import BlockingPortal

from coflux.errors import CofluxError

_logger = logging.getLogger("coflux")

T = TypeVar("T")


class BackgroundLoop:
    """An asyncio loop on a daemon thread named ``name``, from :meth:`start` to :meth:`stop`.

    Thread-safe. The interpreter never waits for the thread: a loop still running at exit (a
    kernel shut down without a word) dies with the process, as the server expects of a worker."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._thread: threading.Thread | None = None
        self._portal: BlockingPortal | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The running loop (for ``call_soon_threadsafe`` from code that wakes it very often)."""
        if self._loop is None:
            raise CofluxError(f"the {self.name} loop is not running")
        return self._loop

    @property
    def running(self) -> bool:
        return self._loop is not None

    def start(self) -> None:
        """Start the thread and return once its loop runs."""
        if self._thread is not None:
            raise CofluxError(f"the {self.name} loop is already started")
        ready: concurrent.futures.Future[tuple[BlockingPortal, asyncio.AbstractEventLoop]]
        ready = concurrent.futures.Future()
        thread = threading.Thread(target=_host, args=(ready,), name=self.name, daemon=True)
        thread.start()
        self._portal, self._loop = ready.result()
        self._thread = thread

    def call_soon(self, callback: Callable[..., object], *args: Any) -> bool:
        """Run ``callback(*args)`` on the loop, from any thread (a garbage collector's callback
        included); ``False`` when the loop is not running (stopped, or stopping)."""
        loop = self._loop
        if loop is None:
            return False
        try:
            loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:  # closed meanwhile
            return False
        return True

    def submit(self, function: Callable[..., Awaitable[T]], *args: Any) -> concurrent.futures.Future[T]:
        """Start ``function(*args)`` as a task of the loop; its future, which cancels it if
        cancelled."""
        portal = self._portal
        if portal is None:
            raise CofluxError(f"the {self.name} loop is not running")
        return portal.start_task_soon(function, *args)

    def run(self, function: Callable[..., Awaitable[T]], *args: Any, timeout: float | None = None) -> T:
        """Run ``function(*args)`` on the loop and wait for its result (``TimeoutError`` after
        ``timeout`` seconds, the task cancelled)."""
        future = self.submit(function, *args)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"the {self.name} loop did not answer within {timeout} s") from None

    def stop(self, timeout: float) -> None:
        """Cancel the loop's tasks and stop it, waiting at most ``timeout`` seconds for the thread."""
        portal, thread = self._portal, self._thread
        self._portal = self._loop = self._thread = None
        if portal is None or thread is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop ended already
            portal.start_task_soon(portal.stop, True)
        thread.join(timeout)
        if thread.is_alive():
            _logger.debug("coflux: the %s thread did not stop within %.1f s", self.name, timeout)


def _host(ready: concurrent.futures.Future[tuple[BlockingPortal, asyncio.AbstractEventLoop]]) -> None:
    """The thread's body: the portal's loop, until the portal stops."""
    import anyio

    async def serve() -> None:
        async with BlockingPortal() as portal:
            ready.set_result((portal, asyncio.get_running_loop()))
            await portal.sleep_until_stopped()

    try:
        anyio.run(serve, backend="asyncio")
    except BaseException as err:  # the loop could not start, or died: say so to start()
        if not ready.done():
            ready.set_exception(err)
        else:
            _logger.exception("coflux: a background loop failed")


class Backoff:
    """When to try again: ``first`` seconds after the first failure, ``factor`` times longer after
    each further one, never more than ``cap``; back to ``first`` after a healthy connection
    (:meth:`reset`). ``jitter`` (0 to 1) spreads each wait at random over ``[1 - jitter, 1]`` of
    it, so that many clients cut off at once don't all come back at once."""

    def __init__(
        self,
        first: float,
        cap: float,
        *,
        factor: float = 2.0,
        jitter: float = 0.0,
        rng: Callable[[], float] = random.random,
    ) -> None:
        if not 0 < first <= cap or factor < 1 or not 0 <= jitter <= 1:
            raise ValueError(
                f"a backoff needs 0 < first <= cap, factor >= 1, 0 <= jitter <= 1: {first}, {cap}"
            )
        self.first, self.cap, self.factor, self.jitter = first, cap, factor, jitter
        self._rng = rng
        self._delay = first

    @property
    def delay(self) -> float:
        """The next wait, before jitter."""
        return self._delay

    def next(self) -> float:
        """The wait before the next attempt (then the one after grows)."""
        delay = self._delay
        self._delay = min(self._delay * self.factor, self.cap)
        if self.jitter:
            delay *= 1 - self.jitter * self._rng()
        return delay

    def reset(self) -> None:
        self._delay = self.first


def websocket_url(base: str, path: str, query: Mapping[str, str]) -> str:
    """``{base}/{path}?{query}`` with ``http(s)`` turned into ``ws(s)``. A query the base already
    has (a ``?token=`` pasted with a Jupyter URL) is kept; ``query`` adds to it and wins."""
    parts = urllib.parse.urlsplit(base)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    merged = dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
    merged.update(query)
    full_path = parts.path.rstrip("/") + "/" + path.lstrip("/")
    return urllib.parse.urlunsplit((scheme, parts.netloc, full_path, urllib.parse.urlencode(merged), ""))


class ThreadOwner:
    """The thread that owns some state: set by :meth:`claim` (on that thread), checked by
    :meth:`held`. Meant for ``assert owner.held()`` at the entry points of loop-side code (free
    with ``python -O``): until claimed, any thread may act for the owner (set-up)."""

    __slots__ = ("_ident",)

    def __init__(self) -> None:
        self._ident: int | None = None

    def claim(self) -> None:
        self._ident = threading.get_ident()

    def held(self) -> bool:
        return self._ident is None or self._ident == threading.get_ident()
