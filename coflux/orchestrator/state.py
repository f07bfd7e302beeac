"""In-memory state of a project's live work: what a restart rebuilds from storage. The engine is
the only writer of what it tracks (docs/architecture.md, "Ownership and invariants").

Only live things are kept: runs with unresolved steps, those steps, and their non-final executions.
Everything final lives in storage (and, for a short while, in the engine's recent outcomes).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from coflux.models import (
    JSON,
    ExecutionId,
    ExecutionState,
    RunId,
    SessionId,
    StepId,
    StepOptions,
    TargetType,
)
from coflux.orchestrator.clock import Timer

Outcome = dict[str, Any]
"""``{"state": "succeeded", "value": V}``, ``{"state": "failed", "error": {...}}``, or a terminated state."""

Waiter = Callable[[Outcome], None]

CANCELLED_TYPE = "coflux.ExecutionCancelled"


def cancellation(reason: str) -> Outcome:
    """A cancelled outcome that says why: ``reason`` reads like ``cancelled by the user`` or
    ``cancelled: its parent R…:1:1 timed out``. It is stored as the execution's error, shown in
    run views, and becomes the message of the ``ExecutionCancelled`` its callers raise."""
    error = {"type": CANCELLED_TYPE, "message": reason, "traceback": ""}
    return {"state": ExecutionState.CANCELLED.value, "error": error}


class Reuse(NamedTuple):
    """A durable cached result that a call reuses."""

    execution_id: str
    value: JSON
    until: float | None = None
    """Until when its max age allows reusing it (server time; None: no limit)."""


@dataclass(eq=False)
class Run:
    run_id: RunId
    workspace_id: int
    next_number: int
    live: int = 0
    """Executions of this run that are not final yet; the run is forgotten (kept in storage) at 0."""
    memo_default: JSON = None
    """The root workflow's ``memo``: the default of every step of the run."""
    memo: dict[str, str] | None = None
    """Memo key -> step id; None until known (a run rebuilt after a restart reads it from storage)."""


@dataclass(eq=False)
class Step:
    step_id: StepId
    run: Run
    number: int
    parent_execution_id: ExecutionId | None
    module: str
    target: str
    type: TargetType
    arguments: list[JSON]
    options: StepOptions
    call_index: int | None = None
    workspace_id: int = 0
    """The step's home: its parent's workspace (or the run's). Only executions there resolve it;
    a re-run in a descendant workspace is an overlay that its base never sees."""
    attempts: int = 0
    """The highest attempt number so far, over every workspace."""
    cache_key: str | None = None
    memo_key: str | None = None
    defer_key: str | None = None
    waits_on: list[str] = field(default_factory=list)
    """Execution ids (from ``wait``) that must be final before the step is dispatched."""
    awaited: bool = False
    """Submitted with ``await``: its caller is answered by ``resolved``, never by a pushed ``outcome``."""
    reuse: Reuse | None = None
    """The durable cached result this step reuses, decided when it was made
    (its caller may have been answered with it before the step committed)."""
    preset: Outcome | None = None
    """The outcome the worker that ran this step already gave its caller (a submit re-sent with
    ``outcome`` after the server lost the step): its first attempt takes it, undispatched."""
    waiters: list[Waiter] = field(default_factory=list)
    live: dict[ExecutionId, Execution] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        return (self.module, self.target)


@dataclass(frozen=True)
class FixedCall:
    """A step whose re-run (made with ``parents``) succeeded: the re-run of its parent answers a
    call of the same target with the same arguments with this step, rather than calling anew."""

    step_id: StepId
    module: str
    target: str
    arguments: list[JSON]


@dataclass(eq=False)
class Execution:
    execution_id: ExecutionId
    step: Step
    attempt: int
    workspace_id: int
    execute_after: float | None
    retry: int = 0
    """0 for a first attempt (or a re-run), n for its n-th retry."""
    state: ExecutionState = ExecutionState.QUEUED
    session: Session | None = None
    blocked: int = 0
    holds: int = 0
    """Referenced executions (``wait``) it still waits for before it may be dispatched."""
    children: list[Step] = field(default_factory=list)
    calls: dict[int, Step] = field(default_factory=dict)
    """Children by ``call_index``: a submit re-sent after a reconnect finds its step here."""
    timer: Timer | None = None
    """Its delay (queued) or its timeout (assigned), on the engine's clock."""
    assigned_at: float = 0.0
    restored: bool = False
    """Loaded from storage after a restart: its children may exist only in storage."""
    log_size: int = 0
    """What its log lines cost so far, against the log budget (counted from the server's start)."""
    rerun_parents: bool = False
    """A re-run made with ``parents`` (or a retry of one): once it succeeds, its parent step is
    re-run in the same workspace, with ``parents`` too."""
    fixed: FixedCall | None = None
    """Made by such a chain: the child whose re-run succeeded, which this execution's calls reuse."""

    @property
    def holds_slot(self) -> bool:
        return self.session is not None and self.blocked == 0


@dataclass(eq=False)
class Session:
    """A worker's presence: survives the worker's reconnects until the reconnect timeout."""

    session_id: SessionId
    workspace_id: int
    concurrency: int
    provides: dict[str, list[str]]
    targets: set[tuple[str, str]]
    send: Callable[[dict[str, Any]], None] | None
    close: Callable[[int, str], None] | None
    flush: Callable[[], None] | None
    last_seen: float
    disconnected_at: float | None = None
    executions: dict[ExecutionId, Execution] = field(default_factory=dict)
    """What it holds; with ``busy``, written only by the engine (its ``Assignments``)."""
    busy: int = 0
    """Slots taken: its executions not blocked on another (``coflux.orchestrator.invariants``)."""
    recorded: list[int] = field(default_factory=list)
    """``answered`` submits of the pending commit, acknowledged together by ``recorded``."""
    claimed: set[ExecutionId] = field(default_factory=set)
    """Executions its worker said it holds (``hello``) that another connected worker had been
    given meanwhile: a result it re-sends for one of them is taken all the same."""
    kernel_id: str | None = None
    """The Jupyter kernel its worker is (a notebook kernel's ``hello`` says), if any."""

    @property
    def connected(self) -> bool:
        return self.send is not None

    @property
    def free_slots(self) -> int:
        return self.concurrency - self.busy if self.connected else 0
