"""Time, for the orchestrator: what time it is, and calling back later.

Every timer of a project (a delay, a timeout, the session check, the hub's idle check) and every
timestamp it writes come from one :class:`Clock`, given to it. :class:`LoopClock` is the real one;
:class:`FakeClock` moves only when told, so that a test of a timeout says how much time passes
rather than sleeping for it.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from typing import Protocol


class Timer(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch (what is stored, and compared with what was stored)."""
        ...

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        """Call ``callback`` on the running loop once ``delay`` seconds have passed."""
        ...


class LoopClock:
    """``time.time`` and the running asyncio loop's timers."""

    now = staticmethod(time.time)  # called on every message: no frame of its own

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        return asyncio.get_running_loop().call_later(delay, callback)


class FakeClock:
    """A clock that stands still until :meth:`advance` moves it; timers fire in order of when they
    are due (then of when they were set), each with the clock at its due time."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._timers: list[tuple[float, int, _FakeTimer]] = []
        self._order = itertools.count()

    def now(self) -> float:
        return self._now

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        timer = _FakeTimer(callback)
        heapq.heappush(self._timers, (self._now + max(0.0, delay), next(self._order), timer))
        return timer

    def advance(self, seconds: float) -> None:
        """Move on by ``seconds``, firing every timer due meanwhile (those its callbacks set too)."""
        until = self._now + seconds
        while self._timers and self._timers[0][0] <= until:
            due, _, timer = heapq.heappop(self._timers)
            self._now = max(self._now, due)
            if not timer.cancelled:
                timer.callback()
        self._now = until

    @property
    def pending(self) -> int:
        """Timers set and neither fired nor cancelled."""
        return sum(1 for _, _, timer in self._timers if not timer.cancelled)


class _FakeTimer:
    def __init__(self, callback: Callable[[], None]) -> None:
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True
