"""What execution threads hand the event loop: one typed item per kind, in one thread-safe list.

A burst of items (a fan-out's submits) costs the loop one wake-up: :meth:`Outbox.post` wakes it
only when the list was empty, and the loop takes everything at once (:meth:`Outbox.take`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from coflux.models import JSON, ExecutionId
from coflux.worker.requests import PendingRequest

if TYPE_CHECKING:
    from coflux.worker.context import ExecutionContext
    from coflux.worker.targets import Target


class Send(NamedTuple):
    """A request (``submit``, ``wait``, ``cancel``): sent, kept until its final answer."""

    request: PendingRequest
    encoded: str | None
    """Its message as JSON text already, if the caller has it."""


class Record(NamedTuple):
    """A submit a lease answered here (``answered`` and ``cached_from`` set): kept until
    ``recorded``."""

    request: PendingRequest


class Withdraw(NamedTuple):
    """The caller stopped waiting on ``request`` (a timeout)."""

    request: PendingRequest


class Log(NamedTuple):
    """One log line of an execution (see :func:`coflux.worker.context.log_entry`)."""

    execution_id: ExecutionId
    entry: dict[str, JSON]


class Complete(NamedTuple):
    """An execution's outcome."""

    context: ExecutionContext
    outcome: dict[str, JSON]


class Declare(NamedTuple):
    """Targets added or replaced; ``request``: the ``declare`` to confirm, if confirmation is
    wanted."""

    targets: list[Target[..., Any]]
    request: PendingRequest | None


Action = Send | Record | Withdraw | Complete | Declare
"""Every item but a log line (log lines are batched)."""
Item = Log | Action


class Outbox:
    """Thread-safe. ``wake`` asks the loop to take the items (called at most once until it does)."""

    def __init__(self, wake: Callable[[], object]) -> None:
        self._wake = wake
        self._lock = threading.Lock()
        self._items: list[Item] = []
        self._woken = False
        self._closed = False

    def post(self, item: Item) -> bool:
        """Queue ``item``; ``False`` (nothing queued) once :meth:`close` was called."""
        with self._lock:
            if self._closed:
                return False
            self._items.append(item)
            if self._woken:
                return True
            self._woken = True
        self._wake()
        return True

    def take(self) -> list[Item]:
        """Everything posted since the last call (on the loop)."""
        with self._lock:
            items, self._items = self._items, []
            self._woken = False
        return items

    def close(self) -> list[Item]:
        """Refuse further items; returns those never taken."""
        with self._lock:
            self._closed = True
            items, self._items = self._items, []
        return items
