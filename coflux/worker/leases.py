"""Cache leases: hits a worker may answer itself, without a round trip to the server.

When the server answers an awaited call from a durable cache hit and nothing but the cache decides
that answer (no memo, delay or wait), it grants a *lease* on the hit's cache key with the answer.
Until the server revokes it (``uncache``: a new result or an identical call in flight for that
key, a changed lineage or declaration), until the hit's max age, or until the connection drops,
an identical call (same run, target, options and arguments) of this worker gets the same result
here; the call is still sent to the server, ``answered`` and pinned to that result, which makes
its step from exactly that result (see :meth:`coflux.worker.channel.SessionChannel.record`).

Lookups run on execution threads, changes on the event loop's thread; a dict read and a single
assignment or deletion are atomic, so no lock is needed.
"""

from __future__ import annotations

import time
from collections.abc import Hashable, Iterable
from typing import Final

from coflux.models import JSON

LIMIT: Final = 4096
"""Leases kept at most (the oldest go first)."""
MARGIN: Final = 0.05
"""Seconds before a hit's max age ends that its lease stops being used (the answer's transit)."""


class Lease:
    __slots__ = ("cache_key", "deadline", "outcome", "source")

    def __init__(self, cache_key: str, source: str, outcome: dict[str, JSON], deadline: float | None) -> None:
        self.cache_key = cache_key
        self.source = source
        """The execution whose result it is (what an ``answered`` submit is pinned to)."""
        self.outcome = outcome
        self.deadline = deadline
        """``time.monotonic()`` after which the hit is too old, or None."""


class Leases:
    def __init__(self) -> None:
        self._table: dict[Hashable, Lease] = {}

    def get(self, call: Hashable) -> Lease | None:
        """The lease that answers ``call``, if one is held and still within max age."""
        lease = self._table.get(call)
        if lease is None or (lease.deadline is not None and time.monotonic() >= lease.deadline):
            return None
        return lease

    def grant(self, call: Hashable, answer: dict[str, JSON], outcome: dict[str, JSON]) -> None:
        """Keep the lease that ``answer`` (a ``resolved`` message) grants for ``call``, if any."""
        granted, source = answer.get("lease"), answer.get("cached_from")
        if not isinstance(granted, dict) or not isinstance(source, str):
            return
        key, ttl = granted.get("key"), granted.get("ttl")
        if not isinstance(key, str) or outcome.get("state") != "succeeded":
            return
        deadline = None
        if isinstance(ttl, (int, float)) and not isinstance(ttl, bool):
            if ttl <= 2 * MARGIN:
                return
            deadline = time.monotonic() + ttl - MARGIN
        elif ttl is not None:
            return
        while len(self._table) >= LIMIT:
            del self._table[next(iter(self._table))]
        self._table[call] = Lease(key, source, outcome, deadline)

    def revoke(self, keys: Iterable[str] | None) -> None:
        """Forget the leases on these cache keys (None: all of them)."""
        if keys is None:
            self._table.clear()
            return
        revoked = set(keys)
        for call, lease in list(self._table.items()):
            if lease.cache_key in revoked:
                self._table.pop(call, None)

    def __len__(self) -> int:
        return len(self._table)
