"""What the engine's state keeps true between turns of the loop, stated as code.

Checked around every commit when a service is made with ``checked=True`` (tests), and by tests of
the engine directly. Each rule is about who holds what:

- a live execution is in its step's ``live`` and counts in its run's ``live``; a run is known while
  it has live executions, and exactly those;
- an execution that a session holds is live, assigned or running, and in that session's
  ``executions``; that session is connected or remembered (a ghost its worker may reclaim);
- an execution no session holds is queued (waiting for dispatch, a delay, a ``wait`` or a step it
  shares a cached outcome with); what is in the dispatch queue is such an execution, in its
  workspace's queue;
- a session's busy slots are its executions that are not blocked on another (a caller waiting on
  its child gives its slot to other work meanwhile).
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from coflux.models import ExecutionState

if TYPE_CHECKING:
    from coflux.orchestrator.engine import Engine

_HELD = frozenset({ExecutionState.ASSIGNED, ExecutionState.RUNNING})


class InvariantBroken(AssertionError):
    """The engine's state contradicts itself: a bug, named by the message."""


def check(engine: Engine) -> None:
    """Raise :class:`InvariantBroken` naming every rule the engine's state breaks."""
    broken = violations(engine)
    if broken:
        raise InvariantBroken("; ".join(broken))


def violations(engine: Engine) -> list[str]:
    return _executions(engine) + _sessions(engine) + _queue(engine)


def _executions(engine: Engine) -> list[str]:
    broken = []
    per_run: Counter[str] = Counter()
    for key, execution in engine.executions.items():
        per_run[execution.step.run.run_id] += 1
        if execution.step.live.get(key) is not execution:
            broken.append(f"{key} is live but not in its step's live executions")
        session = execution.session
        if session is None:
            if execution.state is not ExecutionState.QUEUED:
                broken.append(f"{key} is held by no session but {execution.state.value}")
            continue
        if execution.state not in _HELD:
            broken.append(f"{key} is held by {session.session_id} but {execution.state.value}")
        if engine.sessions.get(session.session_id) is not session:
            broken.append(f"{key} is held by {session.session_id}, which is neither connected nor remembered")
        if session.executions.get(key) is not execution:
            broken.append(f"{key} is held by {session.session_id} but not among its executions")
    for run_id, run in engine.runs.items():
        if run.live != per_run[run_id]:
            broken.append(f"run {run_id} counts {run.live} live executions, not {per_run[run_id]}")
    for unknown in per_run.keys() - engine.runs.keys():
        broken.append(f"run {unknown} has live executions but is not known")
    return broken


def _sessions(engine: Engine) -> list[str]:
    broken = []
    for session_id, session in engine.sessions.items():
        busy = 0
        for key, execution in session.executions.items():
            if engine.executions.get(key) is not execution:
                broken.append(f"session {session_id} holds {key}, which is not live")
            if execution.session is not session:
                broken.append(f"session {session_id} holds {key}, which names another holder")
            busy += execution.blocked == 0
        if session.busy != busy:
            broken.append(
                f"session {session_id} counts {session.busy} busy slots, not {busy} "
                "(its executions not blocked on another)"
            )
    return broken


def _queue(engine: Engine) -> list[str]:
    broken = []
    for workspace_id, queued in engine.queue.items():
        for key, execution in queued.items():
            if engine.executions.get(key) is not execution:
                broken.append(f"{key} is queued but not live")
            elif execution.session is not None or execution.workspace_id != workspace_id:
                broken.append(f"{key} is queued in workspace {workspace_id} but held or elsewhere")
    return broken
