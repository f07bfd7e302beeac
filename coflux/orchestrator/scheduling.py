"""Work not yet dispatched: the queue, delays, ``wait`` holds, ``defer``, and the cache checked when
a first attempt becomes due. Part of the :class:`~coflux.orchestrator.engine.Engine`, which alone
calls it; it writes only the state of executions that no session holds.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import TYPE_CHECKING

from coflux.models import ExecutionId, ExecutionState
from coflux.orchestrator import dispatch, keys
from coflux.orchestrator.state import Execution, Outcome, Step

if TYPE_CHECKING:
    from coflux.orchestrator.engine import Engine


class Scheduler:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._queue: dispatch.Queue = {}
        self._deferring: dict[tuple[int, str | None], Execution] = {}
        """(workspace, defer key) -> the newest queued execution with that key."""

    @property
    def queue(self) -> Mapping[int, Mapping[ExecutionId, Execution]]:
        return self._queue

    @property
    def deferring(self) -> Mapping[tuple[int, str | None], Execution]:
        return self._deferring

    def enqueue(self, execution: Execution) -> None:
        """A live execution that no session holds becomes due (now, or after its delay)."""
        engine = self._engine
        if execution.step.preset is not None and execution.attempt == 1:
            engine.finish(execution, execution.step.preset)
            return
        delay = (execution.execute_after or 0.0) - engine.clock.now()
        if delay > 0:
            execution.timer = engine.clock.call_later(delay, lambda: self._release(execution))
            return
        if execution.step.waits_on and self._held(execution):
            return
        if execution.attempt == 1 and execution.step.cache_key is not None and self._from_cache(execution):
            return
        self._enter_queue(execution)

    def dispatch(self) -> None:
        """Assign queued executions to sessions with free slots (runs just before each commit)."""
        engine = self._engine
        sessions = list(engine.sessions.values())
        for execution, session in dispatch.plan(self._queue, sessions, active=engine.topology.dispatchable):
            del self._queue[execution.workspace_id][execution.execution_id]
            self.leave_deferring(execution)
            engine.assignments.assign(execution, session)

    def withdraw(self, execution: Execution) -> None:
        """It will not be dispatched from here (final, or adopted): out of the queue and of
        ``defer``; its delay and holds are dropped."""
        self.leave_deferring(execution)
        queue = self._queue.get(execution.workspace_id)
        if queue is not None:
            queue.pop(execution.execution_id, None)
        if execution.timer is not None:
            execution.timer.cancel()
            execution.timer = None
        execution.holds = 0

    def undispatched(self, execution: Execution) -> bool:
        """Live and waiting for dispatch (queued, delayed, held by ``wait`` or sharing a cached
        step's outcome), not assigned to any session."""
        live = self._engine.executions.get(execution.execution_id) is execution
        return live and execution.session is None and execution.state is ExecutionState.QUEUED

    def _held(self, execution: Execution) -> bool:
        """``wait``: hold the execution until the executions its arguments reference are final."""
        steps = self._engine.steps
        pending = [
            steps[key] for key in {r.rsplit(":", 1)[0] for r in execution.step.waits_on} if key in steps
        ]
        for step in pending:
            step.waiters.append(lambda outcome: self._unhold(execution))
        execution.holds = len(pending)
        return bool(pending)

    def _unhold(self, execution: Execution) -> None:
        execution.holds -= 1
        if execution.holds == 0 and self.undispatched(execution):
            self.enqueue(execution)

    def _enter_queue(self, execution: Execution) -> None:
        if execution.step.defer_key is not None:
            self._defer_older(execution)
        self._queue.setdefault(execution.workspace_id, OrderedDict())[execution.execution_id] = execution
        self._engine.writer.schedule()

    def _release(self, execution: Execution) -> None:
        execution.timer = None
        execution.execute_after = None
        if execution.state is ExecutionState.QUEUED and execution.execution_id in self._engine.executions:
            self.enqueue(execution)

    # -- defer ---------------------------------------------------------------------------------

    def _defer_older(self, execution: Execution) -> None:
        """``defer``: an identical call still queued in the workspace is deferred to this newer one,
        and its step takes this one's outcome."""
        key = (execution.workspace_id, execution.step.defer_key)
        older = self._deferring.get(key)
        self._deferring[key] = execution
        if older is None or self._engine.executions.get(older.execution_id) is not older:
            return
        if older.state is not ExecutionState.QUEUED or older.step is execution.step:
            return
        self._engine.record(
            older, {"state": ExecutionState.DEFERRED.value, "cached_from": execution.execution_id}
        )
        followed = older.step
        execution.step.waiters.append(lambda outcome: self._follow(followed, outcome))

    def leave_deferring(self, execution: Execution) -> None:
        """It is no longer queued: a later identical call no longer defers it."""
        if execution.step.defer_key is not None:
            key = (execution.workspace_id, execution.step.defer_key)
            if self._deferring.get(key) is execution:
                del self._deferring[key]

    def _follow(self, step: Step, outcome: Outcome) -> None:
        if step.step_id in self._engine.steps:
            self._engine.resolve_step(step, outcome)

    # -- cache ---------------------------------------------------------------------------------

    def _from_cache(self, execution: Execution) -> bool:
        """Checked when a first attempt becomes due: share an identical step in flight, or reuse a
        result within max age, searching the workspace and then its ancestors, nearest first
        (unless the step was made with its reuse decided: :meth:`CacheIndex.durable_reuse`)."""
        engine = self._engine
        step = execution.step
        key = step.cache_key
        assert key is not None
        if step.reuse is not None:
            self._reuse(execution, step.reuse.execution_id, step.reuse.value)
            return True
        lineage = engine.topology.ancestry(execution.workspace_id)
        computing = engine.cache.computing_in(key, lineage, other_than=step)
        if computing is not None:
            computing.waiters.append(lambda outcome: self._shared(execution, computing, outcome))
            return True
        hit = engine.cache.hit(key, lineage, keys.cache_max_age(step.options))
        if hit is not None:
            self._reuse(execution, hit.execution_id, engine.cache.value(hit.execution_id, hit.value))
            return True
        engine.cache.start_computing(key, step)
        return False

    def _reuse(self, execution: Execution, source: str, value: object) -> None:
        outcome = {"state": ExecutionState.CACHED.value, "value": value, "cached_from": source}
        self._engine.finish(execution, outcome)

    def _shared(self, execution: Execution, other: Step, outcome: Outcome) -> None:
        if not self.undispatched(execution):
            return  # cancelled meanwhile, or a worker that ran it after all has it (``adopt``)
        if outcome["state"] == ExecutionState.SUCCEEDED.value:
            source = f"{other.step_id}:{other.attempts}"
            self._engine.finish(
                execution, {"state": "cached", "value": outcome.get("value"), "cached_from": source}
            )
        else:  # what it waited for failed: it runs on its own
            self._enter_queue(execution)
