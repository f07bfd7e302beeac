"""Choosing a worker session for each queued execution (run just before every commit)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

from coflux.models import ExecutionId
from coflux.orchestrator.state import Execution, Session

Queue = dict[int, OrderedDict[ExecutionId, Execution]]


def eligible(session: Session, execution: Execution) -> bool:
    """The session declares the target and provides every tag the step requires."""
    if execution.step.key not in session.targets:
        return False
    requires = execution.step.options.requires
    return not requires or all(
        set(values) & set(session.provides.get(tag, ())) for tag, values in requires.items()
    )


def plan(
    queue: Queue, sessions: list[Session], active: Callable[[int], bool] | None = None
) -> list[tuple[Execution, Session]]:
    """Pairs of (queued execution, session with a free slot), oldest executions first; the least
    loaded eligible session wins. What finds no session stays queued, and so does everything
    queued in a workspace for which ``active`` (given a workspace id) is false: a paused or
    archived workspace dispatches nothing until it is resumed."""
    chosen: list[tuple[Execution, Session]] = []
    for workspace_id, waiting in queue.items():
        if not waiting or (active is not None and not active(workspace_id)):
            continue
        free = {s: s.free_slots for s in sessions if s.workspace_id == workspace_id and s.free_slots > 0}
        for execution in list(waiting.values()):
            if not free:
                break
            best = max((s for s in free if eligible(s, execution)), key=free.__getitem__, default=None)
            if best is None:
                continue
            chosen.append((execution, best))
            free[best] -= 1
            if free[best] <= 0:
                del free[best]
    return chosen
