"""The engine of one project: steps, executions, dispatch, outcomes, retries and waiters.

All methods run on the project's event loop; every change is written through the :class:`Writer` and
every message that depends on a change is sent after it commits.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from coflux import protocol
from coflux.models import (
    JSON,
    ExecutionId,
    ExecutionState,
    RunId,
    StepOptions,
    TargetType,
    execution_id,
    step_id,
)
from coflux.orchestrator.state import Execution, Outcome, Run, Session, Step, Waiter
from coflux.orchestrator.writer import Writer
from coflux.storage import dumps

log = logging.getLogger(__name__)

RECENT_OUTCOMES = 10_000


def outcome_state(outcome: Outcome) -> ExecutionState:
    return ExecutionState(outcome["state"])


class Engine:
    def __init__(
        self,
        writer: Writer,
        events: Callable[[dict[str, Any]], None],
        workspace_name: Callable[[int], str],
    ) -> None:
        self.workspace_name = workspace_name
        self.writer = writer
        self.publish = events
        self.runs: dict[RunId, Run] = {}
        self.steps: dict[str, Step] = {}
        self.executions: dict[ExecutionId, Execution] = {}
        self.sessions: dict[str, Session] = {}
        self.queue: dict[int, OrderedDict[ExecutionId, Execution]] = {}
        self.recent: OrderedDict[str, Outcome] = OrderedDict()
        self._dirty: set[Session] = set()

    # -- creating work -------------------------------------------------------------------------

    def new_run(self, run_id: RunId, workspace_id: int, parent: ExecutionId | None) -> Run:
        run = Run(run_id, workspace_id, next_number=1)
        self.runs[run_id] = run
        self.writer.batch.runs.append(
            {
                "run_id": run_id,
                "workspace_id": workspace_id,
                "parent_execution_id": parent,
                "created_at": time.time(),
            }
        )
        return run

    def new_step(
        self,
        run: Run,
        module: str,
        target: str,
        type_: TargetType,
        arguments: list[JSON],
        options: StepOptions,
        parent: Execution | None,
        call_index: int | None,
    ) -> Step:
        number = run.next_number
        run.next_number += 1
        step = Step(
            step_id(run.run_id, number),
            run,
            number,
            parent.execution_id if parent else None,
            module,
            target,
            type_,
            arguments,
            options,
            call_index,
        )
        self._track_step(step)
        if parent is not None:
            parent.children.append(step)
            if call_index is not None:
                parent.calls[call_index] = step
        self.writer.batch.steps.append(
            {
                "step_id": step.step_id,
                "run_id": run.run_id,
                "number": number,
                "parent_execution_id": step.parent_execution_id,
                "call_index": call_index,
                "module": module,
                "target": target,
                "type": type_.value,
                "arguments": dumps(arguments),
                "options": dumps(options.to_json()),
                "created_at": time.time(),
            }
        )
        return step

    def _track_step(self, step: Step) -> None:
        self.steps[step.step_id] = step
        step.run.live_steps += 1

    def new_execution(self, step: Step, workspace_id: int, delay: float = 0.0) -> Execution:
        step.attempts += 1
        now = time.time()
        after = now + delay if delay > 0 else None
        execution = Execution(
            execution_id(step.step_id, step.attempts), step, step.attempts, workspace_id, after
        )
        self.executions[execution.execution_id] = execution
        self.writer.batch.executions.append(
            {
                "execution_id": execution.execution_id,
                "step_id": step.step_id,
                "attempt": execution.attempt,
                "workspace_id": workspace_id,
                "execute_after": after,
                "created_at": now,
            }
        )
        self.enqueue(execution)
        return execution

    def enqueue(self, execution: Execution) -> None:
        delay = (execution.execute_after or 0.0) - time.time()
        if delay > 0:
            loop = asyncio.get_running_loop()
            execution.timer = loop.call_later(delay, self._release, execution)
            return
        self.queue.setdefault(execution.workspace_id, OrderedDict())[execution.execution_id] = execution
        self.writer.schedule()

    def _release(self, execution: Execution) -> None:
        execution.timer = None
        execution.execute_after = None
        if execution.state is ExecutionState.QUEUED:
            self.enqueue(execution)

    # -- dispatch ------------------------------------------------------------------------------

    def dispatch(self) -> None:
        """Assign queued executions to sessions with free slots (runs just before each commit)."""
        for workspace_id, queue in self.queue.items():
            if not queue:
                continue
            sessions = [
                s for s in self.sessions.values() if s.workspace_id == workspace_id and s.free_slots > 0
            ]
            if not sessions:
                continue
            for execution in list(queue.values()):
                session = self._pick(sessions, execution)
                if session is None:
                    continue
                del queue[execution.execution_id]
                self.assign(execution, session)
                if session.free_slots <= 0:
                    sessions.remove(session)
                    if not sessions:
                        break

    @staticmethod
    def _pick(sessions: list[Session], execution: Execution) -> Session | None:
        key = execution.step.key
        requires = execution.step.options.requires
        best: Session | None = None
        for session in sessions:
            if key not in session.targets:
                continue
            if requires and not all(
                set(values) & set(session.provides.get(tag, ())) for tag, values in requires.items()
            ):
                continue
            if best is None or session.free_slots > best.free_slots:
                best = session
        return best

    def assign(self, execution: Execution, session: Session) -> None:
        execution.assigned_at = time.time()
        execution.state = ExecutionState.ASSIGNED
        execution.session = session
        session.executions[execution.execution_id] = execution
        session.busy += 1
        self.writer.batch.assignments.append(
            {
                "execution_id": execution.execution_id,
                "session_id": session.session_id,
                "assigned_at": time.time(),
            }
        )
        step = execution.step
        message = {
            "type": "execute",
            "execution_id": execution.execution_id,
            "step_id": step.step_id,
            "run_id": step.run.run_id,
            "module": step.module,
            "target": step.target,
            "arguments": step.arguments,
            "workspace": self.workspace_name(execution.workspace_id),
            "attempt": execution.attempt,
        }
        self.writer.after_commit(lambda: self._send(session, message))
        if step.options.timeout:
            loop = asyncio.get_running_loop()
            execution.timer = loop.call_later(step.options.timeout, self._time_out, execution)

    def _send(self, session: Session, message: dict[str, Any]) -> None:
        if session.send is not None:
            session.send(message)
            self._dirty.add(session)

    def flush_sessions(self) -> None:
        """Write what each session was sent during this commit's effects: one frame each."""
        dirty, self._dirty = self._dirty, set()
        for session in dirty:
            if session.flush is not None:
                session.flush()

    def _time_out(self, execution: Execution) -> None:
        execution.timer = None
        if execution.execution_id in self.executions:
            self.finish(execution, {"state": ExecutionState.TIMED_OUT.value})

    # -- outcomes ------------------------------------------------------------------------------

    def finish(self, execution: Execution, outcome: Outcome) -> None:
        """Record the final outcome of a live execution, then retry or resolve its step."""
        state = outcome_state(outcome)
        self.executions.pop(execution.execution_id, None)
        if execution.timer is not None:
            execution.timer.cancel()
            execution.timer = None
        self._unqueue(execution)
        self._release_slot(
            execution,
            abort=state is not ExecutionState.SUCCEEDED and state is not ExecutionState.FAILED,
        )
        execution.state = state
        self.writer.batch.results.append(
            {
                "execution_id": execution.execution_id,
                "state": state.value,
                "value": dumps(outcome["value"]) if "value" in outcome else None,
                "error": dumps(outcome["error"]) if "error" in outcome else None,
                "created_at": time.time(),
            }
        )
        self._event_execution(execution)
        if state in (ExecutionState.CANCELLED, ExecutionState.TIMED_OUT):
            self.cancel_children(execution)
        step = execution.step
        if state.retryable and self._should_retry(step, outcome):
            delay = step.options.retries.delay(execution.attempt)
            self.new_execution(step, execution.workspace_id, delay)
            return
        self.resolve_step(step, outcome)

    def _unqueue(self, execution: Execution) -> None:
        queue = self.queue.get(execution.workspace_id)
        if queue is not None:
            queue.pop(execution.execution_id, None)

    def _release_slot(self, execution: Execution, abort: bool) -> None:
        session = execution.session
        if session is None:
            return
        session.executions.pop(execution.execution_id, None)
        if execution.blocked == 0:
            session.busy -= 1
        execution.session = None
        if abort:
            message = {"type": "abort", "execution_id": execution.execution_id}
            self.writer.after_commit(lambda: self._send(session, message))
        self.writer.schedule()

    @staticmethod
    def _should_retry(step: Step, outcome: Outcome) -> bool:
        policy = step.options.retries
        if step.attempts > policy.limit:
            return False
        if outcome["state"] != ExecutionState.FAILED.value:
            return True
        if "retryable" in outcome:
            return bool(outcome["retryable"])
        if not policy.when:
            return True
        return str(outcome.get("error", {}).get("type")) in policy.when

    def resolve_step(self, step: Step, outcome: Outcome) -> None:
        self.steps.pop(step.step_id, None)
        step.run.live_steps -= 1
        if step.run.live_steps <= 0:
            self.runs.pop(step.run.run_id, None)
        self.recent[step.step_id] = outcome
        if len(self.recent) > RECENT_OUTCOMES:
            self.recent.popitem(last=False)
        waiters, step.waiters = step.waiters, []
        for waiter in waiters:
            self.writer.after_commit(lambda w=waiter: w(outcome))  # type: ignore[misc]
        if not waiters:
            self._push_to_parent(step, outcome)
        if step.parent_execution_id is None:
            run_id = step.run.run_id
            status = _run_status(outcome)
            self.writer.after_commit(
                lambda: self.publish({"type": "run", "run_id": run_id, "status": status})
            )

    def _push_to_parent(self, step: Step, outcome: Outcome) -> None:
        """Tell the worker running the parent, so that its ``result()`` needs no round trip."""
        parent = self.executions.get(step.parent_execution_id) if step.parent_execution_id else None
        session = parent.session if parent is not None else None
        if parent is None or session is None:
            return
        message = {
            "type": "outcome",
            "parent_execution_id": parent.execution_id,
            "step_id": step.step_id,
            "outcome": outcome,
        }
        self.writer.after_commit(lambda: self._send(session, message))

    def _event_execution(self, execution: Execution) -> None:
        event = {
            "type": "execution",
            "run_id": execution.step.run.run_id,
            "step_id": execution.step.step_id,
            "execution_id": execution.execution_id,
            "state": execution.state.value,
        }
        self.writer.after_commit(lambda: self.publish(event))

    def cancel_children(self, execution: Execution) -> None:
        for child in execution.children:
            for live in [e for e in self.executions.values() if e.step is child]:
                self.finish(live, {"state": ExecutionState.CANCELLED.value})

    def add_waiter(self, step_key: str, waiter: Waiter, lookup: Callable[[str], Outcome | None]) -> bool:
        """Call ``waiter`` with the step's final outcome once it is durable. False if unknown."""
        step = self.steps.get(step_key)
        if step is not None:
            step.waiters.append(waiter)
            return True
        outcome = self.recent.get(step_key) or lookup(step_key)
        if outcome is None:
            return False
        self.writer.after_commit(lambda: waiter(outcome))
        return True

    # -- sessions ------------------------------------------------------------------------------

    def abandon_session(self, session: Session) -> None:
        self.sessions.pop(session.session_id, None)
        for execution in list(session.executions.values()):
            self.finish(execution, {"state": ExecutionState.ABANDONED.value})

    def send_to(self, session: Session, message: dict[str, Any]) -> None:
        self._send(session, message)

    def encode(self, message: dict[str, Any]) -> str:
        return protocol.encode(message)


def _run_status(outcome: Outcome) -> str:
    state = outcome["state"]
    if state == "succeeded":
        return "succeeded"
    if state == "cancelled":
        return "cancelled"
    return "failed"
