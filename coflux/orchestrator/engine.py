"""The engine of one project: steps, executions, dispatch, outcomes, retries and waiters.

All methods run on the project's event loop; every change is written through the :class:`Writer` and
every message that depends on a change is sent after it commits, but for the three kinds that
:mod:`coflux.orchestrator.writer` lists (a dispatch, a cache hit answered ahead, ``uncache``).

The engine owns the project's live state: its methods (and its parts: the scheduler, for work not
yet dispatched, and the assignments, for dispatched work) are its only writers; others read it
through read-only views; :mod:`coflux.orchestrator.invariants` states what it keeps true.

A step resolves only through executions in its home workspace (its parent's, or the run's); a re-run
in a descendant workspace is an overlay, recorded and shown from that workspace, never seen by the
base. A retry replaces the execution it follows; callers waiting on the step see only the outcome of
the last one.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Protocol

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
from coflux.orchestrator.assignment import Assignments
from coflux.orchestrator.cache import CacheIndex
from coflux.orchestrator.clock import Clock
from coflux.orchestrator.history import History
from coflux.orchestrator.outbox import Outbox
from coflux.orchestrator.scheduling import Scheduler
from coflux.orchestrator.state import Execution, FixedCall, Outcome, Run, Session, Step, cancellation
from coflux.orchestrator.writer import Writer
from coflux.storage import dumps

RECENT_OUTCOMES = 10_000
TERMINATED = frozenset({ExecutionState.CANCELLED, ExecutionState.TIMED_OUT, ExecutionState.ABANDONED})
_RUN_STATUS = {"succeeded": "succeeded", "cancelled": "cancelled"}
"""A run's status by its root step's outcome: any other outcome is a failure."""
_ENDED = {
    ExecutionState.CANCELLED: "was cancelled",
    ExecutionState.TIMED_OUT: "timed out",
    ExecutionState.ABANDONED: "was abandoned",
}


class Topology(Protocol):
    """What the engine needs to know of workspaces (:class:`~coflux.orchestrator.workspaces.Workspaces`)."""

    def name_of(self, workspace_id: int) -> str: ...

    def ancestry(self, workspace_id: int) -> list[int]:
        """The workspace and its ancestors, nearest first."""
        ...

    def dispatchable(self, workspace_id: int) -> bool: ...


class Engine:
    def __init__(
        self,
        writer: Writer,
        history: History,
        topology: Topology,
        clock: Clock,
        publish: Callable[[dict[str, Any]], None],
    ) -> None:
        self.writer = writer
        self.history = history
        self.topology = topology
        self.clock = clock
        self.publish = publish
        self.rerun_parent: Callable[[Execution], None] = lambda execution: None
        """Called when a re-run made with ``parents`` succeeds (the service re-runs its parent)."""
        self._runs: dict[RunId, Run] = {}
        self._steps: dict[str, Step] = {}
        self._executions: dict[ExecutionId, Execution] = {}
        self._sessions: dict[str, Session] = {}
        self._recent: OrderedDict[str, Outcome] = OrderedDict()
        self._restored: list[Execution] = []
        self.runs: Mapping[RunId, Run] = MappingProxyType(self._runs)
        """Runs with live executions."""
        self.steps: Mapping[str, Step] = MappingProxyType(self._steps)
        """Steps not yet resolved in their home workspace (what callers can wait on)."""
        self.executions: Mapping[ExecutionId, Execution] = MappingProxyType(self._executions)
        """Executions not final yet."""
        self.sessions: Mapping[str, Session] = MappingProxyType(self._sessions)
        """Worker sessions: connected, or remembered until their reconnect timeout."""
        self.outbox = Outbox(self.sessions, writer)
        self.cache = CacheIndex(writer, history, topology.ancestry, clock, self.outbox.send_to)
        self.scheduler = Scheduler(self)
        self.assignments = Assignments(self)

    @property
    def queue(self) -> Mapping[int, Mapping[ExecutionId, Execution]]:
        return self.scheduler.queue

    @property
    def deferring(self) -> Mapping[tuple[int, str | None], Execution]:
        return self.scheduler.deferring

    # -- creating work -------------------------------------------------------------------------

    def new_run(self, run_id: RunId, workspace_id: int, parent: ExecutionId | None) -> Run:
        run = Run(run_id, workspace_id, next_number=1, memo={})  # a new run has nothing memoised
        self._runs[run_id] = run
        row = {"run_id": run_id, "workspace_id": workspace_id, "parent_execution_id": parent}
        self.writer.batch.runs.append({**row, "created_at": self.clock.now()})
        return run

    def new_step(
        self,
        run: Run,
        target: tuple[str, str, TargetType],
        arguments: list[JSON],
        options: StepOptions,
        parent: Execution | None,
        call_index: int | None,
        cache_and_memo: tuple[str | None, str | None] = (None, None),
        options_json: str | None = None,
    ) -> Step:
        """``options_json``: the options' stored text, when the caller has it already."""
        module, name, type_ = target
        number = run.next_number
        run.next_number += 1
        home = parent.workspace_id if parent is not None else run.workspace_id
        key = step_id(run.run_id, number)
        parent_id = parent.execution_id if parent else None
        step = Step(key, run, number, parent_id, module, name, type_, arguments, options, call_index, home)
        step.cache_key, step.memo_key = cache_and_memo
        if step.memo_key is not None and run.memo is not None:
            run.memo.setdefault(step.memo_key, key)
        self._steps[key] = step
        if parent is not None:
            parent.children.append(step)
            if call_index is not None:  # a re-sent submit finds it by its call index
                parent.calls[call_index] = step
        self.writer.batch.steps.append(
            {
                "step_id": key,
                "run_id": run.run_id,
                "number": number,
                "parent_execution_id": parent_id,
                "call_index": call_index,
                "module": module,
                "target": name,
                "type": type_.value,
                "arguments": dumps(arguments),
                "options": options_json if options_json is not None else dumps(options.to_json()),
                "created_at": self.clock.now(),
                "cache_key": step.cache_key,
                "memo_key": step.memo_key,
            }
        )
        return step

    def new_execution(
        self,
        step: Step,
        workspace_id: int,
        delay: float = 0.0,
        retry: int = 0,
        *,
        rerun_parents: bool = False,
        fixed: FixedCall | None = None,
    ) -> Execution:
        """``rerun_parents`` and ``fixed``: see :class:`Execution` (a re-run's chain)."""
        step.attempts += 1
        now = self.clock.now()
        after = now + delay if delay > 0 else None
        key = execution_id(step.step_id, step.attempts)
        execution = Execution(key, step, step.attempts, workspace_id, after, retry)
        execution.rerun_parents, execution.fixed = rerun_parents, fixed
        self._track(execution)
        self.writer.batch.executions.append(
            {
                "execution_id": key,
                "step_id": step.step_id,
                "attempt": execution.attempt,
                "workspace_id": workspace_id,
                "execute_after": after,
                "created_at": now,
                "retry": retry,
                "rerun_parents": rerun_parents or None,
                "fixed_step": fixed.step_id if fixed is not None else None,
            }
        )
        self.scheduler.enqueue(execution)
        return execution

    def _track(self, execution: Execution) -> None:
        """Count a live execution in its step and run (and keep the run known while it has any)."""
        self._executions[execution.execution_id] = execution
        execution.step.live[execution.execution_id] = execution
        run = execution.step.run
        run.live += 1
        self._runs[run.run_id] = run

    def reopen_step(self, step: Step) -> None:
        """A resolved step resolves again (a re-run in its home workspace): callers can wait on it."""
        self._steps[step.step_id] = step

    def skip_number(self, run_id: str, number: int) -> None:
        """Step ``number`` of the run exists elsewhere (a worker holds one of its executions): new
        steps of the run take later numbers."""
        run = self._runs.get(RunId(run_id))
        if run is not None and number >= run.next_number:
            run.next_number = number + 1

    def memo_of(self, run: Run) -> dict[str, str]:
        """The run's memo table (a run rebuilt from storage reads it, and its default, once)."""
        if run.memo is None:
            run.memo, run.memo_default = self.history.memo(run.run_id)
        return run.memo

    def latest_attempt(self, step_key: str) -> int:
        step = self._steps.get(step_key)
        return step.attempts if step is not None else self.history.latest_attempt(step_key)

    # -- restoring from storage ----------------------------------------------------------------

    def restore_execution(self, execution: Execution, session: Session | None) -> None:
        """A live execution read from storage after a (re)start: tracked now, held by ``session``
        (assigned before) or queued again, and its timers armed, by :meth:`start`."""
        self._track(execution)
        step = execution.step
        if execution.workspace_id == step.workspace_id:
            self._steps[step.step_id] = step
        if session is not None:
            self.assignments.attach(execution, session, execution.assigned_at, write=False)
        self._restored.append(execution)

    def restore_children(self, steps: list[Step]) -> None:
        """Link restored steps to their live parents (a re-sent submit then finds them)."""
        for step in steps:
            parent = self._executions.get(step.parent_execution_id) if step.parent_execution_id else None
            if parent is not None:
                parent.children.append(step)
                if step.call_index is not None:
                    parent.calls[step.call_index] = step

    def remember_session(self, session: Session) -> None:
        """A session, new (a worker said hello) or known only from storage (a worker may reclaim it)."""
        self._sessions[session.session_id] = session

    def start(self) -> None:
        """Queue what was restored unassigned, and arm the timeouts of what was restored assigned."""
        restored, self._restored = self._restored, []
        assigned = [e for e in restored if e.session is not None]
        for execution in restored:
            if execution.session is None:
                self.scheduler.enqueue(execution)
        for execution in assigned:
            self.assignments.arm_timeout(execution)

    def stop(self) -> None:
        """Cancel every timer (the service stops, or reloads from storage)."""
        for execution in self._executions.values():
            if execution.timer is not None:
                execution.timer.cancel()

    # -- dispatched work -----------------------------------------------------------------------

    def dispatch(self) -> None:
        """Assign queued executions to sessions with free slots (runs just before each commit)."""
        self.scheduler.dispatch()

    def adopt(self, execution: Execution, session: Session) -> None:
        """``session``'s worker holds ``execution`` (it runs it, or holds its result) although the
        server has it queued (its dispatch was lost with the last batch before a restart) or
        assigned to a session whose worker is gone. It becomes that worker's, with no new
        ``execute``: its result, re-sent next, is then taken, and nobody runs it a second time."""
        self.assignments.adopt(execution, session)

    def mark_running(self, execution: Execution) -> None:
        """Its worker said it started."""
        if execution.state is ExecutionState.ASSIGNED:
            execution.state = ExecutionState.RUNNING
            self._event_execution(execution)

    def block(self, execution: Execution) -> None:
        """The execution waits on another: its slot is free for other work meanwhile."""
        self.assignments.block(execution)

    def unblock(self, execution: Execution) -> None:
        self.assignments.unblock(execution)

    # -- outcomes ------------------------------------------------------------------------------

    def finish(self, execution: Execution, outcome: Outcome, *, reported: bool = False) -> None:
        """Record the final outcome of a live execution, then retry it or resolve its step.
        ``reported``: its worker sent the outcome (nothing to abort there, even if cancelled)."""
        if self._executions.get(execution.execution_id) is not execution:
            return  # already final (a late or repeated outcome), or from before a reload
        self.record(execution, outcome, reported=reported)
        step = execution.step
        state = ExecutionState(outcome["state"])
        if state is ExecutionState.CACHED:  # callers see the reused value as a success
            outcome = {"state": ExecutionState.SUCCEEDED.value, "value": outcome.get("value")}
        if state.retryable and self._should_retry(execution, outcome):
            delay = step.options.retries.delay(execution.retry + 1)
            self.new_execution(
                step,
                execution.workspace_id,
                delay,
                execution.retry + 1,
                rerun_parents=execution.rerun_parents,  # a retry carries on the re-run's chain
                fixed=execution.fixed,
            )
        elif execution.workspace_id == step.workspace_id and step.step_id in self._steps:
            self.resolve_step(step, outcome)
        if execution.rerun_parents and outcome["state"] == ExecutionState.SUCCEEDED.value:
            self.rerun_parent(execution)

    def record(self, execution: Execution, outcome: Outcome, *, reported: bool = False) -> None:
        """Write the outcome and free everything the execution held; decide nothing about its step."""
        state = ExecutionState(outcome["state"])
        del self._executions[execution.execution_id]
        execution.step.live.pop(execution.execution_id, None)
        self.scheduler.withdraw(execution)  # and its timer, whatever it was for
        self.assignments.detach(execution, abort=state in TERMINATED and not reported)
        execution.state = state
        self.writer.batch.results.append(
            {
                "execution_id": execution.execution_id,
                "state": state.value,
                "value": dumps(outcome["value"]) if "value" in outcome else None,
                "error": dumps(outcome["error"]) if "error" in outcome else None,
                "created_at": self.clock.now(),
                "cached_from": outcome.get("cached_from"),
            }
        )
        self._event_execution(execution)
        key = execution.step.cache_key
        if state is ExecutionState.SUCCEEDED and key is not None:
            self.cache.add(key, execution.workspace_id, execution.execution_id, outcome.get("value"))
        run = execution.step.run
        run.live -= 1
        if run.live <= 0:
            self._runs.pop(run.run_id, None)
        if state in TERMINATED:
            self.cancel_children(execution)

    @staticmethod
    def _should_retry(execution: Execution, outcome: Outcome) -> bool:
        policy = execution.step.options.retries
        if execution.retry >= policy.limit:
            return False
        if outcome["state"] != ExecutionState.FAILED.value:
            return True
        if "retryable" in outcome:
            return bool(outcome["retryable"])
        return not policy.when or str(outcome.get("error", {}).get("type")) in policy.when

    def resolve_step(self, step: Step, outcome: Outcome) -> None:
        del self._steps[step.step_id]
        self.cache.stop_computing(step)
        self._recent[step.step_id] = outcome
        if len(self._recent) > RECENT_OUTCOMES:
            self._recent.popitem(last=False)
        waiters, step.waiters = step.waiters, []
        for waiter in waiters:
            self.writer.after_commit(lambda w=waiter: w(outcome))  # type: ignore[misc]
        if not waiters and not step.awaited:  # an awaited step's caller is answered by ``resolved``
            self._push_to_parent(step, outcome)
        if step.parent_execution_id is None:
            run_id, status = step.run.run_id, _RUN_STATUS.get(outcome["state"], "failed")
            self.writer.after_commit(
                lambda: self.publish({"type": "run", "run_id": run_id, "status": status})
            )

    def outcome_of(self, step_key: str) -> Outcome | None:
        """The outcome of a resolved step: recent, or from history (None: no such step)."""
        return self._recent.get(step_key) or self.history.outcome(step_key)

    def _push_to_parent(self, step: Step, outcome: Outcome) -> None:
        """Tell the worker running the parent, so that its ``result()`` needs no round trip."""
        parent = self._executions.get(step.parent_execution_id) if step.parent_execution_id else None
        session = parent.session if parent is not None else None
        if parent is None or session is None:
            return
        message = {
            "type": "outcome",
            "parent_execution_id": parent.execution_id,
            "step_id": step.step_id,
            "outcome": outcome,
        }
        self.outbox.send_after_commit(session, message)

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
        """Nobody will wait for them any more: cancel the live executions of its children."""
        reason = cancellation(f"cancelled: its parent {execution.execution_id} {_ENDED[execution.state]}")
        for child in execution.children:
            for live in list(child.live.values()):
                self.finish(live, reason)

    def live_of(self, execution_key: str) -> list[Execution]:
        """What cancelling ``execution_key`` reaches: that execution if it is live, else the live
        attempts that replaced it (its step's retries in the same workspace)."""
        live = self._executions.get(ExecutionId(execution_key))
        if live is not None:
            return [live]
        step_key = execution_key.rsplit(":", 1)[0]
        step = self._steps.get(step_key)
        return [e for e in step.live.values() if e.workspace_id == step.workspace_id] if step else []

    def abort_on(self, session: Session, execution_id: ExecutionId) -> None:
        """Tell ``session``'s worker, once what happened is durable, to stop ``execution_id``."""
        self.outbox.send_after_commit(session, {"type": "abort", "execution_id": execution_id})

    def abandon_session(self, session: Session) -> None:
        """Its worker is gone: all it held is abandoned, children before their parents (so that a
        child on the same worker is recorded as abandoned, not as cancelled by its parent)."""
        self._sessions.pop(session.session_id, None)
        self.abandon(list(session.executions.values()))

    def abandon(self, executions: list[Execution]) -> None:
        for execution in sorted(executions, key=lambda e: -e.step.number):
            self.finish(execution, {"state": ExecutionState.ABANDONED.value})

    def state_of(self, execution_id: str) -> str | None:
        """An execution's state: live, in the pending batch, or in storage (None: unknown)."""
        live = self._executions.get(ExecutionId(execution_id))
        if live is not None:
            return live.state.value
        for row in reversed(self.writer.batch.results):
            if row["execution_id"] == execution_id:
                return str(row["state"])
        return self.history.state(execution_id)
