"""The engine of one project: steps, executions, dispatch, outcomes, retries and waiters.

All methods run on the project's event loop; every change is written through the :class:`Writer` and
every message that depends on a change is sent after it commits (but for the two that the writer's
docstring lists: a dispatch, and a cache hit on a durable result answered ahead).

A step resolves only through executions in its home workspace (its parent's, or the run's); a re-run
in a descendant workspace is an overlay, recorded and shown from that workspace, never seen by the
base. A retry replaces the execution it follows; callers waiting on the step see only the outcome of
the last one.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

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
from coflux.orchestrator import dispatch, keys
from coflux.orchestrator.cache import CacheIndex, FindCached, FindSource
from coflux.orchestrator.state import Execution, FixedCall, Outcome, Run, Session, Step, cancellation
from coflux.orchestrator.writer import Writer
from coflux.storage import dumps

RECENT_OUTCOMES = 10_000
TERMINATED = frozenset({ExecutionState.CANCELLED, ExecutionState.TIMED_OUT, ExecutionState.ABANDONED})
_ENDED = {
    ExecutionState.CANCELLED: "was cancelled",
    ExecutionState.TIMED_OUT: "timed out",
    ExecutionState.ABANDONED: "was abandoned",
}


class Engine:
    def __init__(
        self,
        writer: Writer,
        events: Callable[[dict[str, Any]], None],
        workspace_name: Callable[[int], str],
        lineage: Callable[[int], list[int]] = lambda w: [w],
        find_cached: FindCached = lambda key, workspace: None,
        value_of: Callable[[str], JSON] = lambda execution_id: None,
        dispatchable: Callable[[int], bool] = lambda _: True,
        find_source: FindSource = lambda key, execution_id: None,
        stored_state: Callable[[str], str | None] = lambda execution_id: None,
    ) -> None:
        self.stored_state = stored_state
        self.rerun_parent: Callable[[Execution], None] = lambda execution: None
        """Called when a re-run made with ``parents`` succeeds (the service re-runs its parent)."""
        self.dispatchable = dispatchable
        self.workspace_name = workspace_name
        self.lineage = lineage
        self.cache = CacheIndex(writer, lineage, find_cached, find_source, value_of, self._send_to_session)
        self.deferring: dict[tuple[int, str | None], Execution] = {}
        """(workspace, defer key) -> the newest queued execution with that key."""
        self.writer = writer
        self.publish = events
        self.runs: dict[RunId, Run] = {}
        self.steps: dict[str, Step] = {}
        """Steps not yet resolved in their home workspace (what callers can wait on)."""
        self.executions: dict[ExecutionId, Execution] = {}
        self.sessions: dict[str, Session] = {}
        self.queue: dispatch.Queue = {}
        self.recent: OrderedDict[str, Outcome] = OrderedDict()
        self._dirty: set[Session] = set()

    # -- creating work -------------------------------------------------------------------------

    def new_run(self, run_id: RunId, workspace_id: int, parent: ExecutionId | None) -> Run:
        run = Run(run_id, workspace_id, next_number=1, memo={})  # a new run has nothing memoised
        self.runs[run_id] = run
        row = {"run_id": run_id, "workspace_id": workspace_id, "parent_execution_id": parent}
        self.writer.batch.runs.append({**row, "created_at": time.time()})
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
        self.steps[key] = step
        if parent is not None:
            parent.children.append(step)
            if call_index is not None:
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
                "created_at": time.time(),
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
        now = time.time()
        after = now + delay if delay > 0 else None
        key = execution_id(step.step_id, step.attempts)
        execution = Execution(key, step, step.attempts, workspace_id, after, retry)
        execution.rerun_parents, execution.fixed = rerun_parents, fixed
        self.track(execution)
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
        self.enqueue(execution)
        return execution

    def track(self, execution: Execution) -> None:
        """Count a live execution in its step and run (and keep the run known while it has any)."""
        self.executions[execution.execution_id] = execution
        execution.step.live[execution.execution_id] = execution
        run = execution.step.run
        run.live += 1
        self.runs[run.run_id] = run

    def enqueue(self, execution: Execution) -> None:
        if execution.step.preset is not None and execution.attempt == 1:
            self.finish(execution, execution.step.preset)
            return
        delay = (execution.execute_after or 0.0) - time.time()
        if delay > 0:
            loop = asyncio.get_running_loop()
            execution.timer = loop.call_later(delay, self._release, execution)
            return
        if execution.step.waits_on and self._held(execution):
            return
        if execution.attempt == 1 and execution.step.cache_key is not None and self._from_cache(execution):
            return
        self._queue(execution)

    def _held(self, execution: Execution) -> bool:
        """``wait``: hold the execution until the executions its arguments reference are final."""
        pending = [
            self.steps[key]
            for key in {r.rsplit(":", 1)[0] for r in execution.step.waits_on}
            if key in self.steps
        ]
        for step in pending:
            step.waiters.append(lambda outcome: self._unhold(execution))
        execution.holds = len(pending)
        return bool(pending)

    def _unhold(self, execution: Execution) -> None:
        execution.holds -= 1
        if execution.holds == 0 and self.undispatched(execution):
            self.enqueue(execution)

    def _queue(self, execution: Execution) -> None:
        if execution.step.defer_key is not None:
            self._defer_older(execution)
        self.queue.setdefault(execution.workspace_id, OrderedDict())[execution.execution_id] = execution
        self.writer.schedule()

    def _release(self, execution: Execution) -> None:
        execution.timer = None
        execution.execute_after = None
        if execution.state is ExecutionState.QUEUED and execution.execution_id in self.executions:
            self.enqueue(execution)

    # -- defer ---------------------------------------------------------------------------------

    def _defer_older(self, execution: Execution) -> None:
        """``defer``: an identical call still queued in the workspace is deferred to this newer one,
        and its step takes this one's outcome."""
        key = (execution.workspace_id, execution.step.defer_key)
        older = self.deferring.get(key)
        self.deferring[key] = execution
        if older is None or self.executions.get(older.execution_id) is not older:
            return
        if older.state is not ExecutionState.QUEUED or older.step is execution.step:
            return
        self.record(older, {"state": ExecutionState.DEFERRED.value, "cached_from": execution.execution_id})
        followed = older.step
        execution.step.waiters.append(lambda outcome: self._follow(followed, outcome))

    def _leave_deferring(self, execution: Execution) -> None:
        """It is no longer queued: a later identical call no longer defers it."""
        if execution.step.defer_key is not None:
            key = (execution.workspace_id, execution.step.defer_key)
            if self.deferring.get(key) is execution:
                del self.deferring[key]

    def _follow(self, step: Step, outcome: Outcome) -> None:
        if step.step_id in self.steps:
            self.resolve_step(step, outcome)

    # -- cache ---------------------------------------------------------------------------------

    def _from_cache(self, execution: Execution) -> bool:
        """Checked when a first attempt becomes due: share an identical step in flight, or reuse a
        result within max age, searching the workspace and then its ancestors, nearest first
        (unless the step was made with its reuse decided: :meth:`CacheIndex.durable_reuse`)."""
        step = execution.step
        key = step.cache_key
        assert key is not None
        if step.reuse is not None:
            self._reuse(execution, *step.reuse)
            return True
        lineage = self.lineage(execution.workspace_id)
        computing = self.cache.computing_in(key, lineage, other_than=step)
        if computing is not None:
            computing.waiters.append(lambda outcome: self._shared(execution, computing, outcome))
            return True
        hit = self.cache.hit(key, lineage, keys.cache_max_age(step.options))
        if hit is not None:
            source, _, value, _ = hit
            self._reuse(execution, source, self.cache.value(source, value))
            return True
        self.cache.start_computing(key, step)
        return False

    def _reuse(self, execution: Execution, source: str, value: JSON) -> None:
        self.finish(execution, {"state": ExecutionState.CACHED.value, "value": value, "cached_from": source})

    def _shared(self, execution: Execution, other: Step, outcome: Outcome) -> None:
        if not self.undispatched(execution):
            return  # cancelled meanwhile, or a worker that ran it after all has it (``adopt``)
        if outcome["state"] == ExecutionState.SUCCEEDED.value:
            source = f"{other.step_id}:{other.attempts}"
            self.finish(execution, {"state": "cached", "value": outcome.get("value"), "cached_from": source})
        else:  # what it waited for failed: it runs on its own
            self._queue(execution)

    # -- dispatch ------------------------------------------------------------------------------

    def dispatch(self) -> None:
        """Assign queued executions to sessions with free slots (runs just before each commit)."""
        sessions = list(self.sessions.values())
        for execution, session in dispatch.plan(self.queue, sessions, active=self.dispatchable):
            del self.queue[execution.workspace_id][execution.execution_id]
            self.assign(execution, session)

    def assign(self, execution: Execution, session: Session) -> None:
        self._leave_deferring(execution)
        self._attach(execution, session)
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
        if step.parent_execution_id is not None and step.call_index is not None:
            # The call it answers: a worker that runs it for a caller of its own hands the caller
            # the value itself (see ``complete`` with ``answered`` in coflux.protocol).
            message["parent_execution_id"] = step.parent_execution_id
            message["call_index"] = step.call_index
        # Sent before this batch commits, so the worker runs while the server writes. Should the
        # server die in between, the worker's result finds no execution and is dropped, and the
        # parent's re-sent submit runs the step again: at least once, as for any lost worker.
        self._send(session, message)
        self.arm_timeout(execution)

    def _attach(self, execution: Execution, session: Session) -> None:
        execution.assigned_at = time.time()
        execution.state = ExecutionState.ASSIGNED
        execution.session = session
        session.executions[execution.execution_id] = execution
        if execution.blocked == 0:
            session.busy += 1
        self.writer.batch.assignments.append(
            {
                "execution_id": execution.execution_id,
                "session_id": session.session_id,
                "assigned_at": execution.assigned_at,
            }
        )

    def adopt(self, execution: Execution, session: Session) -> None:
        """``session``'s worker holds ``execution`` (it runs it, or holds its result) although the
        server has it queued (its dispatch was lost with the last batch before a restart) or
        assigned to a session whose worker is gone. It becomes that worker's, with no new
        ``execute``: its result, re-sent next, is then taken, and nobody runs it a second time."""
        previous = execution.session
        if previous is not None:
            previous.executions.pop(execution.execution_id, None)
            if execution.blocked == 0:
                previous.busy -= 1
        else:  # not dispatched: whatever would have dispatched it must not any more
            self._leave_deferring(execution)
            queue = self.queue.get(execution.workspace_id)
            if queue is not None:
                queue.pop(execution.execution_id, None)
            if execution.timer is not None:  # a delay
                execution.timer.cancel()
                execution.timer = None
            execution.holds = 0
        self._attach(execution, session)
        if execution.timer is None:
            self.arm_timeout(execution)
        self.writer.schedule()

    def undispatched(self, execution: Execution) -> bool:
        """Live and waiting for dispatch (queued, delayed, held by ``wait`` or sharing a cached
        step's outcome), not assigned to any session."""
        live = self.executions.get(execution.execution_id) is execution
        return live and execution.session is None and execution.state is ExecutionState.QUEUED

    def arm_timeout(self, execution: Execution) -> None:
        timeout = execution.step.options.timeout
        if timeout:
            remaining = max(0.0, execution.assigned_at + timeout - time.time())
            execution.timer = asyncio.get_running_loop().call_later(remaining, self._time_out, execution)

    def _time_out(self, execution: Execution) -> None:
        execution.timer = None
        self.finish(execution, {"state": ExecutionState.TIMED_OUT.value})

    # -- slots ---------------------------------------------------------------------------------

    def block(self, execution: Execution) -> None:
        """The execution waits on another: its slot is free for other work meanwhile."""
        if execution.blocked == 0 and execution.session is not None:
            execution.session.busy -= 1
        execution.blocked += 1

    def unblock(self, execution: Execution) -> None:
        if execution.blocked == 0:
            return
        execution.blocked -= 1
        if execution.blocked == 0 and execution.session is not None:
            execution.session.busy += 1

    # -- outcomes ------------------------------------------------------------------------------

    def finish(self, execution: Execution, outcome: Outcome, *, reported: bool = False) -> None:
        """Record the final outcome of a live execution, then retry it or resolve its step.
        ``reported``: its worker sent the outcome (nothing to abort there, even if cancelled)."""
        if self.executions.get(execution.execution_id) is not execution:
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
        elif execution.workspace_id == step.workspace_id and step.step_id in self.steps:
            self.resolve_step(step, outcome)
        if execution.rerun_parents and outcome["state"] == ExecutionState.SUCCEEDED.value:
            self.rerun_parent(execution)

    def record(self, execution: Execution, outcome: Outcome, *, reported: bool = False) -> None:
        """Write the outcome and free everything the execution held; decide nothing about its step."""
        state = ExecutionState(outcome["state"])
        del self.executions[execution.execution_id]
        self._leave_deferring(execution)
        execution.step.live.pop(execution.execution_id, None)
        if execution.timer is not None:
            execution.timer.cancel()
            execution.timer = None
        queue = self.queue.get(execution.workspace_id)
        if queue is not None:
            queue.pop(execution.execution_id, None)
        self._release_slot(execution, abort=state in TERMINATED and not reported)
        execution.state = state
        self.writer.batch.results.append(
            {
                "execution_id": execution.execution_id,
                "state": state.value,
                "value": dumps(outcome["value"]) if "value" in outcome else None,
                "error": dumps(outcome["error"]) if "error" in outcome else None,
                "created_at": time.time(),
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
            self.runs.pop(run.run_id, None)
        if state in TERMINATED:
            self.cancel_children(execution)

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
        del self.steps[step.step_id]
        self.cache.stop_computing(step)
        self.recent[step.step_id] = outcome
        if len(self.recent) > RECENT_OUTCOMES:
            self.recent.popitem(last=False)
        waiters, step.waiters = step.waiters, []
        for waiter in waiters:
            self.writer.after_commit(lambda w=waiter: w(outcome))  # type: ignore[misc]
        if not waiters and not step.awaited:  # an awaited step's caller is answered by ``resolved``
            self._push_to_parent(step, outcome)
        if step.parent_execution_id is None:
            run_id, status = step.run.run_id, _run_status(outcome)
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
        """Nobody will wait for them any more: cancel the live executions of its children."""
        reason = cancellation(f"cancelled: its parent {execution.execution_id} {_ENDED[execution.state]}")
        for child in execution.children:
            for live in list(child.live.values()):
                self.finish(live, reason)

    def live_of(self, execution_key: str) -> list[Execution]:
        """What cancelling ``execution_key`` reaches: that execution if it is live, else the live
        attempts that replaced it (its step's retries in the same workspace)."""
        live = self.executions.get(ExecutionId(execution_key))
        if live is not None:
            return [live]
        step_key = execution_key.rsplit(":", 1)[0]
        step = self.steps.get(step_key)
        return [e for e in step.live.values() if e.workspace_id == step.workspace_id] if step else []

    # -- sessions ------------------------------------------------------------------------------

    def abandon_session(self, session: Session) -> None:
        """Its worker is gone: all it held is abandoned, children before their parents (so that a
        child on the same worker is recorded as abandoned, not as cancelled by its parent)."""
        self.sessions.pop(session.session_id, None)
        self.abandon(list(session.executions.values()))

    def abandon(self, executions: list[Execution]) -> None:
        for execution in sorted(executions, key=lambda e: -e.step.number):
            self.finish(execution, {"state": ExecutionState.ABANDONED.value})

    def state_of(self, execution_id: str) -> str | None:
        """An execution's state: live, in the pending batch, or in storage (None: unknown)."""
        live = self.executions.get(ExecutionId(execution_id))
        if live is not None:
            return live.state.value
        for row in reversed(self.writer.batch.results):
            if row["execution_id"] == execution_id:
                return str(row["state"])
        return self.stored_state(execution_id)

    def abort_on(self, session: Session, execution_id: ExecutionId) -> None:
        """Tell ``session``'s worker, once what happened is durable, to stop ``execution_id``."""
        message = {"type": "abort", "execution_id": execution_id}
        self.writer.after_commit(lambda: self._send(session, message))

    def send_to(self, session: Session, message: dict[str, Any]) -> None:
        self._send(session, message)

    def _send_to_session(self, session_id: str, message: dict[str, Any]) -> None:
        session = self.sessions.get(session_id)
        if session is not None:
            self._send(session, message)

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


def _run_status(outcome: Outcome) -> str:
    state = outcome["state"]
    if state == "succeeded":
        return "succeeded"
    if state == "cancelled":
        return "cancelled"
    return "failed"
