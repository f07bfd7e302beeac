"""Rebuilding a project's live work from storage when its service starts (or reloads after a failed
commit): runs with unfinished steps, those steps, their live executions, and the sessions that
held them, as ghosts that their workers can reclaim within the reconnect timeout.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from coflux.models import SessionId
from coflux.orchestrator import keys
from coflux.orchestrator.engine import Engine
from coflux.orchestrator.reruns import step_from_row
from coflux.orchestrator.state import Execution, FixedCall, Run, Session, Step
from coflux.storage import SqlStore


def restore(engine: Engine, store: SqlStore, fixed_call: Callable[[str | None], FixedCall | None]) -> None:
    """Hand the engine what storage holds live; :meth:`Engine.start` then queues and arms it."""
    step_rows, execution_rows, assigned = store.unfinished()
    history = store.attempts_of([r["step_id"] for r in step_rows])
    steps = _steps(store, step_rows, history)
    now = engine.clock.now()
    for row in execution_rows:
        step = steps[row["step_id"]]
        workspace, attempt = row["workspace_id"], row["attempt"]
        earlier = sum(1 for a, w in history[step.step_id] if a < attempt and w == workspace)
        session_id, assigned_at = assigned.get(row["execution_id"], (None, now))
        execution = Execution(
            row["execution_id"],
            step,
            attempt,
            workspace,
            row["execute_after"],
            retry=row["retry"] if row.get("retry") is not None else earlier,
            assigned_at=assigned_at,
            restored=True,
            rerun_parents=bool(row.get("rerun_parents")),
            fixed=fixed_call(row.get("fixed_step")),
        )
        session = None
        if session_id is not None:
            session = engine.sessions.get(session_id) or _ghost(engine, session_id, workspace, now)
        engine.restore_execution(execution, session)
    engine.restore_children(list(steps.values()))


def _steps(
    store: SqlStore, rows: list[dict[str, Any]], history: dict[str, list[tuple[int, int]]]
) -> dict[str, Step]:
    run_ids = sorted({s["run_id"] for s in rows})
    counts = store.step_counts(run_ids)
    runs = {
        r["run_id"]: Run(r["run_id"], r["workspace_id"], counts.get(r["run_id"], 0) + 1)
        for r in store.runs_of(run_ids)
    }
    steps: dict[str, Step] = {}
    for row in rows:
        attempts = history[row["step_id"]]
        step = step_from_row(row, runs[row["run_id"]], home=attempts[0][1])
        step.attempts = attempts[-1][0]
        step.waits_on = keys.waited_references(step.options, step.arguments, None)
        steps[step.step_id] = step
    return steps


def _ghost(engine: Engine, session_id: str, workspace_id: int, now: float) -> Session:
    """A session known only from storage: its worker may come back and reclaim it."""
    session = Session(
        SessionId(session_id),
        workspace_id,
        concurrency=0,
        provides={},
        targets=set(),
        send=None,
        close=None,
        flush=None,
        last_seen=now,
        disconnected_at=now,
    )
    engine.remember_session(session)
    return session
