"""Dispatched work: which session holds which execution, the slots they take, their timeouts.

Part of the :class:`~coflux.orchestrator.engine.Engine`, which alone calls it. The only writer of
``Session.executions``, ``Session.busy``, ``Execution.session`` and ``Execution.blocked``: a
session's busy slots are its executions that are not blocked on another
(:mod:`~coflux.orchestrator.invariants`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from coflux.models import ExecutionState
from coflux.orchestrator.state import Execution, Session

if TYPE_CHECKING:
    from coflux.orchestrator.engine import Engine


class Assignments:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def assign(self, execution: Execution, session: Session) -> None:
        """Dispatch: ``execute`` leaves at once, ahead of the commit that records the assignment."""
        engine = self._engine
        self.attach(execution, session, engine.clock.now())
        step = execution.step
        message: dict[str, Any] = {
            "type": "execute",
            "execution_id": execution.execution_id,
            "step_id": step.step_id,
            "run_id": step.run.run_id,
            "module": step.module,
            "target": step.target,
            "arguments": step.arguments,
            "workspace": engine.topology.name_of(execution.workspace_id),
            "attempt": execution.attempt,
        }
        if step.parent_execution_id is not None and step.call_index is not None:
            # The call it answers: a worker that runs it for a caller of its own hands the caller
            # the value itself (see ``complete`` with ``answered`` in coflux.protocol).
            message["parent_execution_id"] = step.parent_execution_id
            message["call_index"] = step.call_index
        # Sent before this batch commits, so the worker runs while the server writes. Should the
        # server die in between, the worker's result finds no execution and is dropped, and the
        # parent's re-sent submit runs the step again: at least once, as for any lost worker.
        engine.outbox.send(session, message)
        self.arm_timeout(execution)

    def attach(
        self, execution: Execution, session: Session, assigned_at: float, *, write: bool = True
    ) -> None:
        """``execution`` is ``session``'s; ``write``: recorded with the pending batch (a restored
        assignment is in storage already)."""
        execution.assigned_at = assigned_at
        execution.state = ExecutionState.ASSIGNED
        execution.session = session
        session.executions[execution.execution_id] = execution
        if execution.blocked == 0:
            session.busy += 1
        if write:
            row = {"execution_id": execution.execution_id, "session_id": session.session_id}
            self._engine.writer.batch.assignments.append({**row, "assigned_at": assigned_at})

    def adopt(self, execution: Execution, session: Session) -> None:
        """See :meth:`Engine.adopt`."""
        engine = self._engine
        previous = execution.session
        if previous is not None:
            self._leave(execution, previous)
        else:  # not dispatched: whatever would have dispatched it must not any more
            engine.scheduler.withdraw(execution)
        self.attach(execution, session, engine.clock.now())
        if execution.timer is None:
            self.arm_timeout(execution)
        engine.writer.schedule()

    def detach(self, execution: Execution, abort: bool) -> None:
        """The execution is final: its session's slot is free; ``abort``: its worker is told to stop."""
        session = execution.session
        if session is None:
            return
        self._leave(execution, session)
        execution.session = None
        if abort:
            self._engine.abort_on(session, execution.execution_id)
        self._engine.writer.schedule()

    @staticmethod
    def _leave(execution: Execution, session: Session) -> None:
        session.executions.pop(execution.execution_id, None)
        if execution.blocked == 0:
            session.busy -= 1

    def block(self, execution: Execution) -> None:
        if execution.blocked == 0 and execution.session is not None:
            execution.session.busy -= 1
        execution.blocked += 1

    def unblock(self, execution: Execution) -> None:
        if execution.blocked == 0:
            return
        execution.blocked -= 1
        if execution.blocked == 0 and execution.session is not None:
            execution.session.busy += 1

    def arm_timeout(self, execution: Execution) -> None:
        timeout = execution.step.options.timeout
        if timeout:
            clock = self._engine.clock
            remaining = max(0.0, execution.assigned_at + timeout - clock.now())
            execution.timer = clock.call_later(remaining, lambda: self._time_out(execution))

    def _time_out(self, execution: Execution) -> None:
        execution.timer = None
        self._engine.finish(execution, {"state": ExecutionState.TIMED_OUT.value})
