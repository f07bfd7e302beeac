"""The cache of one project: its entries by key and workspace, the steps computing a key, and the
leases that let workers answer hits themselves.

An entry is written with the result that made it (in the same batch) and indexed here at once; the
index is exact, since this service writes every entry, and storage is read once per key and
workspace after a restart. A lease (see :meth:`CacheIndex.grant_lease`) lets a worker answer
identical calls itself; anything that could change what a hit on its key returns revokes it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any, NamedTuple

from coflux.models import JSON, StepOptions
from coflux.orchestrator import keys
from coflux.orchestrator.clock import Clock
from coflux.orchestrator.history import FETCH, History
from coflux.orchestrator.state import Reuse, Step
from coflux.orchestrator.writer import Writer
from coflux.storage import dumps

INDEX_SIZE = 20_000
LEASED_KEYS = 20_000
"""Cache keys with leases at most; past that the oldest is revoked (revoking is always safe)."""
VALUE_INLINE = 4096
"""Values up to this many characters of JSON are kept in the index; larger ones are read back."""


class IndexEntry(NamedTuple):
    execution_id: str
    """The execution that computed it."""
    created_at: float
    value: Any
    """Its value, or ``FETCH`` (:data:`~coflux.orchestrator.history.FETCH`)."""
    batch: int
    """The number of the batch that wrote it (0: read from storage)."""


SendTo = Callable[[str, dict[str, Any]], None]
"""(session id, message): sent if that session is connected."""


class CacheIndex:
    def __init__(
        self,
        writer: Writer,
        history: History,
        lineage: Callable[[int], list[int]],
        clock: Clock,
        send_to: SendTo,
    ) -> None:
        self.writer = writer
        self.history = history
        self.lineage = lineage
        self.clock = clock
        self.send_to = send_to
        self.entries: OrderedDict[tuple[str, int], IndexEntry | None] = OrderedDict()
        """(cache key, workspace) -> its newest entry, or None when storage has none."""
        self.uncommitted: dict[str, JSON] = {}
        """Execution id -> a large cached value its pending batch writes (read back after commit)."""
        self.computing: dict[str, list[Step]] = {}
        """Cache key -> live steps computing it: an identical step shares their outcome."""
        self.leases: dict[str, set[str]] = {}
        """Cache key -> sessions told they may answer that hit themselves (``resolved`` with
        ``lease``) until told otherwise (``uncache``): see :meth:`revoke_leases`."""

    # -- entries -------------------------------------------------------------------------------

    def add(self, key: str, workspace_id: int, execution_id: str, value: JSON) -> None:
        """A result for ``key``: written with the pending batch, indexed now."""
        now = self.clock.now()
        row = {"cache_key": key, "workspace_id": workspace_id, "created_at": now}
        self.writer.batch.cache_entries.append({**row, "execution_id": execution_id})
        self.revoke_leases(key)
        small = len(dumps(value)) <= VALUE_INLINE
        entry = IndexEntry(execution_id, now, value if small else FETCH, self.writer.number)
        self._index((key, workspace_id), entry)
        if not small:  # storage can't give it back before the commit: a hit meanwhile reads it here
            self.uncommitted[execution_id] = value
            self.writer.after_commit(lambda: self.uncommitted.pop(execution_id, None))

    def value(self, source: str, value: JSON | object) -> JSON:
        """An entry's value: inline, not yet committed, or read from storage."""
        if value is not FETCH:
            return value
        if source in self.uncommitted:
            return self.uncommitted[source]
        return self.history.value(source)

    def hit(self, key: str, lineage: list[int], max_age: float | None) -> IndexEntry | None:
        """The newest entry in the nearest workspace that has one (within ``max_age``)."""
        now = self.clock.now()
        for workspace in lineage:
            slot = (key, workspace)
            if slot in self.entries:
                entry = self.entries[slot]
                self.entries.move_to_end(slot)
            else:
                found = self.history.cache_hit(key, workspace)
                entry = IndexEntry(*found, batch=0) if found is not None else None
                self._index(slot, entry)
            if entry is not None and (max_age is None or now - entry.created_at <= max_age):
                return entry
        return None

    def _index(self, slot: tuple[str, int], entry: IndexEntry | None) -> None:
        self.entries[slot] = entry
        self.entries.move_to_end(slot)
        if len(self.entries) > INDEX_SIZE:
            self.entries.popitem(last=False)

    # -- steps in flight -----------------------------------------------------------------------

    def computing_in(self, key: str, lineage: list[int], other_than: Step | None = None) -> Step | None:
        """A live step computing ``key`` in one of these workspaces (not ``other_than``)."""
        return next(
            (o for o in self.computing.get(key, ()) if o is not other_than and o.workspace_id in lineage),
            None,
        )

    def start_computing(self, key: str, step: Step) -> None:
        self.revoke_leases(key)  # an identical call now shares this step rather than a hit
        self.computing.setdefault(key, []).append(step)

    def stop_computing(self, step: Step) -> None:
        if step.cache_key is None:
            return
        computing = self.computing.get(step.cache_key, [])
        if step in computing:
            computing.remove(step)
        if not computing:
            self.computing.pop(step.cache_key, None)

    # -- answers ahead of the commit, and leases -----------------------------------------------

    def durable_reuse(
        self, key: str, workspace_id: int, options: StepOptions, pinned: str | None = None
    ) -> Reuse | None:
        """(execution, value, until): the result that a new first attempt with this cache key
        would reuse right now, if storage already holds it (a hit on a committed result, with no
        identical step in flight), and until when (server time) its max age allows that (None:
        no limit); else None. Such a step's outcome doesn't depend on its own commit.

        ``pinned``: a submit re-sent after it was answered ``cached_from`` that execution, or one
        its worker answered from a lease, reuses it again, whatever the cache holds now, if it
        holds a result for the key (``until`` is then None)."""
        lineage = self.lineage(workspace_id)
        if pinned is not None:
            for workspace in lineage:  # usually still the newest entry: no storage read
                entry = self.entries.get((key, workspace))
                if entry is not None and entry.execution_id == pinned and entry.batch < self.writer.number:
                    return Reuse(pinned, self.value(pinned, entry.value), None)
            if self.history.cache_source(key, pinned) is not None:
                return Reuse(pinned, self.history.value(pinned), None)
        if self.computing_in(key, lineage) is not None:
            return None
        max_age = keys.cache_max_age(options)
        hit = self.hit(key, lineage, max_age)
        if hit is None or hit.batch >= self.writer.number:  # none, or written by the pending batch
            return None
        until = None if max_age is None else hit.created_at + max_age
        return Reuse(hit.execution_id, self.value(hit.execution_id, hit.value), until)

    def grant_lease(self, key: str, session_id: str) -> None:
        if key not in self.leases and len(self.leases) >= LEASED_KEYS:
            self.revoke_leases(next(iter(self.leases)))
        self.leases.setdefault(key, set()).add(session_id)

    def revoke_leases(self, key: str | None = None) -> None:
        """What a hit on ``key`` (None: on any key) would return may have changed (a new entry or
        an identical step in flight; a workspace's lineage or a target's declaration): the
        sessions holding such leases are told to stop answering those hits themselves. Sent at
        once, ahead of the commit, like a dispatch; a worker uses a lease at most until then."""
        if key is None:
            holders = set().union(*self.leases.values()) if self.leases else set()
            self.leases.clear()
            message: dict[str, Any] = {"type": "uncache", "all": True}
        else:
            holders = self.leases.pop(key, set())
            message = {"type": "uncache", "keys": [key]}
        for session_id in holders:
            self.send_to(session_id, message)
