"""What the orchestrator reads of a project's history: the one way storage reaches the engine.

Everything final lives in storage; the engine keeps only live work in memory (see
:mod:`coflux.orchestrator.state`). When it needs something final (a cache entry, a resolved step's
outcome, a child made before a restart, a run's memo) it asks its :class:`History`:
:class:`StoredHistory` reads the project's store, :class:`MemoryHistory` is filled by a test.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple, Protocol

from coflux.models import JSON
from coflux.orchestrator.state import Outcome
from coflux.storage import SqlStore

FETCH: Any = object()
"""A cache entry's value that is read only when used (:meth:`History.value`)."""


class CacheEntry(NamedTuple):
    execution_id: str
    """The execution whose result it is."""
    created_at: float
    value: Any
    """Its value, or :data:`FETCH`."""


class ChildStep(NamedTuple):
    """The step a call made, and its latest attempt."""

    step_id: str
    attempt: int


class RunMemo(NamedTuple):
    steps: dict[str, str]
    """Memo key -> step id."""
    default: JSON
    """The root workflow's ``memo`` option: every step's default."""


class History(Protocol):
    def cache_hit(self, key: str, workspace_id: int) -> CacheEntry | None:
        """The newest entry for ``key`` written in that workspace (its value :data:`FETCH`)."""
        ...

    def cache_source(self, key: str, execution_id: str) -> CacheEntry | None:
        """The entry for ``key`` that ``execution_id`` wrote (its value :data:`FETCH`)."""
        ...

    def value(self, execution_id: str) -> JSON:
        """The value of an execution's result (None if it has none)."""
        ...

    def state(self, execution_id: str) -> str | None:
        """The final state of an execution (None: not final, or unknown)."""
        ...

    def outcome(self, step_id: str) -> Outcome | None:
        """What a caller of a resolved step is told: its latest execution's in its home workspace."""
        ...

    def child(self, parent_execution_id: str, call_index: int) -> ChildStep | None: ...

    def memo(self, run_id: str) -> RunMemo: ...

    def latest_attempt(self, step_id: str) -> int:
        """The step's highest attempt number (1 if it has none)."""
        ...


def outcome_from_row(row: dict[str, Any]) -> Outcome:
    """What a waiter is told: a cached execution is a success (with the value it reused)."""
    outcome: Outcome = {"state": "succeeded" if row["state"] == "cached" else row["state"]}
    if row.get("value") is not None:
        outcome["value"] = json.loads(row["value"])
    if row.get("error") is not None:
        outcome["error"] = json.loads(row["error"])
    return outcome


class StoredHistory:
    def __init__(self, store: SqlStore) -> None:
        self._store = store

    def cache_hit(self, key: str, workspace_id: int) -> CacheEntry | None:
        row = self._store.cache_hit(key, workspace_id)
        return CacheEntry(row["execution_id"], row["created_at"], FETCH) if row is not None else None

    def cache_source(self, key: str, execution_id: str) -> CacheEntry | None:
        row = self._store.cache_source(key, execution_id)
        return CacheEntry(execution_id, row["created_at"], FETCH) if row is not None else None

    def value(self, execution_id: str) -> JSON:
        row = self._store.result(execution_id)
        return json.loads(row["value"]) if row is not None and row["value"] is not None else None

    def state(self, execution_id: str) -> str | None:
        row = self._store.result(execution_id)
        return str(row["state"]) if row is not None else None

    def outcome(self, step_id: str) -> Outcome | None:
        rows = self._store.executions_of_step(step_id)
        if not rows:
            return None
        home = [r for r in rows if r["workspace_id"] == rows[0]["workspace_id"]]
        row = self._store.result(home[-1]["execution_id"])
        return outcome_from_row(row) if row is not None else None

    def child(self, parent_execution_id: str, call_index: int) -> ChildStep | None:
        row = self._store.child_step(parent_execution_id, call_index)
        if row is None:
            return None
        return ChildStep(row["step_id"], self.latest_attempt(row["step_id"]))

    def memo(self, run_id: str) -> RunMemo:
        root = self._store.step(f"{run_id}:1")
        default = json.loads(root["options"]).get("memo") if root is not None else None
        return RunMemo(self._store.memo_steps(run_id), default)

    def latest_attempt(self, step_id: str) -> int:
        return max((r["attempt"] for r in self._store.executions_of_step(step_id)), default=1)


class MemoryHistory:
    """A history held in dicts, for tests of the engine without storage: fill what a test needs."""

    def __init__(self) -> None:
        self.cache: dict[tuple[str, int], CacheEntry] = {}
        self.results: dict[str, tuple[str, JSON]] = {}
        """Execution id -> (final state, value)."""
        self.outcomes: dict[str, Outcome] = {}
        self.children: dict[tuple[str, int], ChildStep] = {}
        self.memos: dict[str, RunMemo] = {}
        self.attempts: dict[str, int] = {}

    def cache_hit(self, key: str, workspace_id: int) -> CacheEntry | None:
        entry = self.cache.get((key, workspace_id))
        return entry._replace(value=FETCH) if entry is not None else None

    def cache_source(self, key: str, execution_id: str) -> CacheEntry | None:
        return next(
            (
                e._replace(value=FETCH)
                for (k, _), e in self.cache.items()
                if k == key and e[0] == execution_id
            ),
            None,
        )

    def value(self, execution_id: str) -> JSON:
        return self.results[execution_id][1] if execution_id in self.results else None

    def state(self, execution_id: str) -> str | None:
        return self.results[execution_id][0] if execution_id in self.results else None

    def outcome(self, step_id: str) -> Outcome | None:
        return self.outcomes.get(step_id)

    def child(self, parent_execution_id: str, call_index: int) -> ChildStep | None:
        return self.children.get((parent_execution_id, call_index))

    def memo(self, run_id: str) -> RunMemo:
        return self.memos.get(run_id, RunMemo({}, None))

    def latest_attempt(self, step_id: str) -> int:
        return self.attempts.get(step_id, 1)
