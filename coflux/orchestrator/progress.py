"""Why queued work can't progress, from the orchestrator's live state: the workspace's state and the
connected worker sessions with their targets and tags. Read by the run view (``blocked``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from coflux.models import WorkspaceState
from coflux.orchestrator.dispatch import eligible
from coflux.orchestrator.state import Execution, Session
from coflux.orchestrator.workspaces import Workspaces

Blocked = dict[str, str]
"""``{"reason": "workspace_paused" | "workspace_archived" | "no_worker" | "no_worker_with_tags",
"message": "queued: no worker serves report:parse in workspace main"}``."""


class Progress:
    """Explains queued executions; one per view, as it remembers its answers per target."""

    def __init__(self, sessions: Iterable[Session], workspaces: Workspaces) -> None:
        self._sessions = [s for s in sessions if s.connected]
        self._workspaces = workspaces
        self._known: dict[tuple[int, str, str, str], Blocked | None] = {}

    def blocked(self, execution: Execution) -> Blocked | None:
        """Why the queued ``execution`` waits, or None if a connected worker could take it."""
        step = execution.step
        requires = step.options.requires or {}
        key = (execution.workspace_id, step.module, step.target, repr(sorted(requires.items())))
        if key not in self._known:
            self._known[key] = self._explain(execution, requires)
        return self._known[key]

    def _explain(self, execution: Execution, requires: dict[str, Any]) -> Blocked | None:
        workspace = self._workspaces.by_id.get(execution.workspace_id)
        if workspace is None:
            return None
        if workspace.state is not WorkspaceState.ACTIVE:
            state = workspace.state.value
            return {
                "reason": f"workspace_{state}",
                "message": f"queued: workspace {workspace.name} is {state}",
            }
        step = execution.step
        target = f"{step.module}:{step.target}"
        serving = [s for s in self._sessions if s.workspace_id == workspace.id and step.key in s.targets]
        if not serving:
            return {
                "reason": "no_worker",
                "message": f"queued: no worker serves {target} in workspace {workspace.name}",
            }
        if not any(eligible(s, execution) for s in serving):
            tags = ", ".join(f"{tag}={'|'.join(values)}" for tag, values in sorted(requires.items()))
            where = f"{target} in workspace {workspace.name}"
            return {
                "reason": "no_worker_with_tags",
                "message": f"queued: no worker serving {where} provides {tags}",
            }
        return None


def summarize(blocked: Iterable[tuple[str, Blocked]]) -> list[dict[str, Any]]:
    """The run's ``blocked``: one entry per distinct message, with how many steps it holds back,
    in the order first met. ``blocked`` is ``(step id, why)`` pairs."""
    summary: dict[str, dict[str, Any]] = {}
    steps: dict[str, set[str]] = {}
    for step_id, why in blocked:
        entry = summary.setdefault(why["message"], {**why, "steps": 0})
        if step_id not in steps.setdefault(why["message"], set()):
            steps[why["message"]].add(step_id)
            entry["steps"] += 1
    return list(summary.values())
