"""A project's orchestrator: the single writer that every state change of the project goes through.

HTTP handlers and websockets call these methods; they never touch storage themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from coflux import serialization
from coflux.errors import BadRequest, Conflict, NotFound
from coflux.models import (
    ExecutionId,
    ExecutionState,
    RunId,
    SessionId,
    TargetType,
    WorkspaceState,
    new_run_id,
    split_execution_id,
)
from coflux.orchestrator import keys
from coflux.orchestrator.cache import FETCH
from coflux.orchestrator.engine import Engine
from coflux.orchestrator.reruns import Reruns, step_from_row
from coflux.orchestrator.sessions import LOG_BUDGET, Close, Send, WorkerSessions
from coflux.orchestrator.state import Execution, Outcome, Run, Session, Step, cancellation
from coflux.orchestrator.views import lineage, outcome_from_row, run_view
from coflux.orchestrator.workspaces import Workspace, Workspaces
from coflux.orchestrator.writer import Writer
from coflux.storage import SqlStore
from coflux.storage.faults import describe

log = logging.getLogger(__name__)

Listener = Callable[[dict[str, Any]], None]
MAX_RUNS_LISTED = 200
CLOSE_REASON_BYTES = 123
"""The longest reason a websocket close frame can carry (RFC 6455)."""


@dataclass(frozen=True)
class Timing:
    reconnect_timeout: float = 10.0
    heartbeat_interval: float = 2.0
    heartbeat_timeout: float = 15.0


@dataclass(frozen=True)
class Limits:
    log_budget: int = LOG_BUDGET
    """Characters of log kept per execution (a line costs 64 more); then one line says the log
    was truncated, and later lines are dropped."""


class ProjectService:
    def __init__(self, name: str, store: SqlStore, timing: Timing, limits: Limits = Limits()) -> None:
        self.name = name
        self.store = store
        self.timing = timing
        self.limits = limits
        self._listeners: list[Listener] = []
        self._checker: asyncio.Task[None] | None = None
        self._load()

    def _load(self) -> None:
        self._pending_enqueue: list[Execution] = []
        self._pending_timeouts: list[Execution] = []
        self.writer = Writer(self.store, self._before_commit, self._on_failure, self._after_effects)
        self.workspaces = Workspaces(self.writer, self.store.workspaces(), self.store.targets())
        self.engine = Engine(
            self.writer,
            self._publish,
            lambda i: self.workspaces.by_id[i].name,
            lambda i: lineage(self.workspaces, i),
            self._find_cached,
            self._value_of,
            self.workspaces.dispatchable,
            self._find_source,
            self._stored_state,
        )
        self.workspaces.changed = self.engine.cache.revoke_leases
        self.sessions = WorkerSessions(
            self.engine,
            self.workspaces,
            self._lookup,
            self._find_child,
            self.timing.heartbeat_interval,
            self._memo_of,
            self._latest_attempt,
            self.limits.log_budget,
        )
        self.reruns = Reruns(self.engine, self.store, self.workspaces)
        self._restore()

    def _restore(self) -> None:
        """Rebuild live runs, steps and executions from storage; sessions come back as ghosts that
        their workers can reclaim within the reconnect timeout."""
        step_rows, execution_rows, assigned = self.store.unfinished()
        history = self.store.attempts_of([r["step_id"] for r in step_rows])
        steps = self._restore_steps(step_rows, history)
        now = time.time()
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
                fixed=self.reruns.fixed_call(row.get("fixed_step")),
            )
            self.engine.track(execution)
            if workspace == step.workspace_id:
                self.engine.steps[step.step_id] = step
            if session_id is None:
                self._pending_enqueue.append(execution)
                continue
            session = self.engine.sessions.get(session_id) or self._ghost(session_id, workspace, now)
            execution.state = ExecutionState.ASSIGNED
            execution.session = session
            session.executions[execution.execution_id] = execution
            session.busy += 1
            self._pending_timeouts.append(execution)
        for step in steps.values():
            parent = (
                self.engine.executions.get(step.parent_execution_id) if step.parent_execution_id else None
            )
            if parent is not None:
                parent.children.append(step)
                if step.call_index is not None:
                    parent.calls[step.call_index] = step

    def _restore_steps(
        self, rows: list[dict[str, Any]], history: dict[str, list[tuple[int, int]]]
    ) -> dict[str, Step]:
        run_ids = sorted({s["run_id"] for s in rows})
        counts = self.store.step_counts(run_ids)
        runs = {
            r["run_id"]: Run(r["run_id"], r["workspace_id"], counts.get(r["run_id"], 0) + 1)
            for r in self.store.runs_of(run_ids)
        }
        steps: dict[str, Step] = {}
        for row in rows:
            attempts = history[row["step_id"]]
            step = step_from_row(row, runs[row["run_id"]], home=attempts[0][1])
            step.attempts = attempts[-1][0]
            step.waits_on = keys.waited_references(step.options, step.arguments, None)
            steps[step.step_id] = step
        return steps

    def _ghost(self, session_id: str, workspace_id: int, now: float) -> Session:
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
        self.engine.sessions[session_id] = session
        return session

    async def start(self) -> None:
        pending, self._pending_enqueue = self._pending_enqueue, []
        for execution in pending:
            self.engine.enqueue(execution)
        timeouts, self._pending_timeouts = self._pending_timeouts, []
        for execution in timeouts:
            self.engine.arm_timeout(execution)
        if self._checker is not None:
            self._checker.cancel()
        self._checker = asyncio.get_running_loop().create_task(self._check_loop())
        await self.writer.durable()

    async def _check_loop(self) -> None:
        interval = min(1.0, self.timing.heartbeat_interval / 2)
        while True:
            await asyncio.sleep(interval)
            try:
                self.sessions.check(self.timing.reconnect_timeout, self.timing.heartbeat_timeout)
            except Exception:
                log.exception("session check failed")

    async def close(self) -> None:
        if self._checker is not None:
            self._checker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checker
        self.writer.flush()
        for execution in self.engine.executions.values():
            if execution.timer is not None:
                execution.timer.cancel()
        for session in list(self.engine.sessions.values()):
            if session.close is not None:
                session.close(1001, "server shutting down")
        self.store.close()

    # -- commit hooks --------------------------------------------------------------------------

    def _before_commit(self) -> None:
        self.engine.dispatch()
        self.engine.flush_sessions()  # executions start while the batch commits

    def _after_effects(self) -> None:
        self.engine.flush_sessions()

    def _on_failure(self, error: Exception) -> None:
        """A commit failed: what was in memory may be ahead of storage. Drop it all and rebuild from
        storage; workers reconnect and re-send what was not acknowledged (the close reason says
        what failed, e.g. "project 'p': no space left on the device holding its database")."""
        for execution in self.engine.executions.values():
            if execution.timer is not None:
                execution.timer.cancel()
        reason = f"project {self.name!r}: {describe(error)}".encode()[:CLOSE_REASON_BYTES]
        for session in list(self.engine.sessions.values()):
            close = session.close
            session.send = session.close = session.flush = None  # stale from now on
            if close is not None:
                close(1011, reason.decode(errors="ignore"))
        self._load()
        asyncio.get_running_loop().create_task(self.start())

    def _lookup(self, step_key: str) -> Outcome | None:
        """The outcome of a resolved step: its latest execution in its home workspace."""
        rows = self.store.executions_of_step(step_key)
        if not rows:
            return None
        home = [r for r in rows if r["workspace_id"] == rows[0]["workspace_id"]]
        row = self.store.result(home[-1]["execution_id"])
        return outcome_from_row(row) if row is not None else None

    def _find_cached(self, key: str, workspace: int) -> tuple[str, float, Any] | None:
        row = self.store.cache_hit(key, workspace)
        return (row["execution_id"], row["created_at"], FETCH) if row is not None else None

    def _find_source(self, key: str, execution_id: str) -> tuple[str, float, Any] | None:
        row = self.store.cache_source(key, execution_id)
        return (execution_id, row["created_at"], FETCH) if row is not None else None

    def _stored_state(self, execution_id: str) -> str | None:
        row = self.store.result(execution_id)
        return str(row["state"]) if row is not None else None

    def _value_of(self, execution_id: str) -> Any:
        row = self.store.result(execution_id)
        return json.loads(row["value"]) if row is not None and row["value"] is not None else None

    def _memo_of(self, run: Run) -> dict[str, str]:
        if run.memo is None:  # a run rebuilt from storage: read its memo table and default
            run.memo = self.store.memo_steps(run.run_id)
            root = self.store.step(f"{run.run_id}:1")
            run.memo_default = json.loads(root["options"]).get("memo") if root is not None else None
        return run.memo

    def _latest_attempt(self, step_key: str) -> int:
        step = self.engine.steps.get(step_key)
        if step is not None:
            return step.attempts
        return max((r["attempt"] for r in self.store.executions_of_step(step_key)), default=1)

    def _find_child(self, parent: str, call_index: int) -> tuple[str, int] | None:
        row = self.store.child_step(parent, call_index)
        if row is None:
            return None
        attempts = self.store.executions_of_step(row["step_id"])
        return row["step_id"], max((r["attempt"] for r in attempts), default=1)

    @property
    def idle(self) -> bool:
        """Nothing to do and nobody attached: no sessions (not even ones that may come back), no
        live executions, no listeners, nothing waiting to be written."""
        return not (self.engine.sessions or self.engine.executions or self._listeners or self.writer.batch)

    # -- events --------------------------------------------------------------------------------

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def _publish(self, event: dict[str, Any]) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                log.exception("an event listener failed")

    # -- workers -------------------------------------------------------------------------------

    def connect(
        self, hello: dict[str, Any], send: Send, close: Close, flush: Callable[[], None] | None = None
    ) -> Session:
        """A worker said hello. ``send`` may queue; ``flush`` (if given) writes what is queued."""
        return self.sessions.connect(hello, send, close, flush)

    def receive(self, session: Session, message: dict[str, Any]) -> None:
        self.sessions.receive(session, message)

    def commit_now(self) -> None:
        """Commit what is pending now rather than at the end of the loop's turn (a worker's frame
        is a natural group; a commit scheduled for later finds nothing left to do)."""
        self.writer.flush_if_scheduled()

    def disconnected(self, session: Session, send: Send) -> None:
        self.sessions.disconnected(session, send)

    # -- the API -------------------------------------------------------------------------------

    async def list_workspaces(self) -> list[dict[str, Any]]:
        return [self.workspaces.describe(w) for w in self.workspaces.by_id.values()]

    async def create_workspace(self, name: str, base: str | None) -> dict[str, Any]:
        return await self._workspace_changed(self.workspaces.create(name, base))

    async def rename_workspace(self, name: str, new_name: str) -> dict[str, Any]:
        """Runs and results follow the workspace (they refer to it by id). Refused while workers are
        attached to it, or may still reclaim a session in it: they would come back under the old name."""
        workspace = self.workspaces.get(name)
        if new_name != name and any(s.workspace_id == workspace.id for s in self.engine.sessions.values()):
            raise Conflict(f"workspace {name!r} has workers attached; stop them first")
        return await self._workspace_changed(self.workspaces.rename(name, new_name), renamed_from=name)

    async def rebase_workspace(self, name: str, base: str | None) -> dict[str, Any]:
        return await self._workspace_changed(self.workspaces.rebase(name, base))

    async def pause_workspace(self, name: str) -> dict[str, Any]:
        """Nothing queued in the workspace is dispatched until it resumes; what runs goes on."""
        return await self._workspace_changed(self.workspaces.set_state(name, WorkspaceState.PAUSED))

    async def resume_workspace(self, name: str) -> dict[str, Any]:
        workspace = self.workspaces.set_state(name, WorkspaceState.ACTIVE)
        self.writer.schedule()  # the flush dispatches what waited
        return await self._workspace_changed(workspace)

    async def archive_workspace(self, name: str) -> dict[str, Any]:
        """Final: no new runs, re-runs or dispatch; its runs stay readable. Refused while anything
        of it is in flight (queued, assigned or running)."""
        workspace = self.workspaces.get(name)
        if any(e.workspace_id == workspace.id for e in self.engine.executions.values()):
            raise Conflict(f"workspace {name!r} has executions in flight; cancel them or let them finish")
        return await self._workspace_changed(self.workspaces.set_state(name, WorkspaceState.ARCHIVED))

    async def _workspace_changed(self, workspace: Workspace, **extra: Any) -> dict[str, Any]:
        await self.writer.durable()
        described = self.workspaces.describe(workspace)
        self._publish({"type": "workspace", **described, **extra})
        return described

    async def list_workflows(self, workspace: str) -> list[dict[str, Any]]:
        return self.workspaces.workflows(self.workspaces.get(workspace).id)

    async def start_run(self, workspace: str, module: str, target: str, arguments: Any) -> RunId:
        ws = self.workspaces.get_open(workspace)
        definition = self.workspaces.workflow(ws.id, module, target)
        if not isinstance(arguments, list):
            raise BadRequest("arguments must be a list")
        for argument in arguments:
            serialization.describe(argument)  # raises BadRequest on malformed tagged JSON
        if not definition.accepts(len(arguments)):
            names = ", ".join(p.name for p in definition.parameters) or "no arguments"
            raise BadRequest(f"{module}:{target} takes ({names}); got {len(arguments)} argument(s)")
        run = self.engine.new_run(new_run_id(), ws.id, None)
        run.memo_default = definition.options.memo
        parameters = [p.name for p in definition.parameters]
        cache = keys.cache_key(module, target, definition.options, arguments, parameters)
        step = self.engine.new_step(
            run,
            (module, target, TargetType.WORKFLOW),
            arguments,
            definition.options,
            None,
            None,
            (cache, None),
        )
        step.waits_on = keys.waited_references(definition.options, arguments, parameters)
        self.engine.new_execution(step, ws.id, definition.options.delay)
        await self.writer.durable()
        self._publish({"type": "run", "run_id": run.run_id, "status": "running"})
        return run.run_id

    async def list_runs(
        self, workspace: str, workflow: str | None = None, limit: int = 20
    ) -> list[dict[str, Any]]:
        """The newest top-level runs started in ``workspace`` (of ``module:target`` if given)."""
        ws = self.workspaces.get(workspace)
        module, target = None, None
        if workflow:
            module, sep, target = workflow.rpartition(":")
            if not sep or not module or not target:
                raise BadRequest(f"workflow must be MODULE:NAME, not {workflow!r}")
        if not 1 <= limit <= MAX_RUNS_LISTED:
            raise BadRequest(f"limit must be between 1 and {MAX_RUNS_LISTED}")
        listed = []
        for row in self.store.recent_runs(ws.id, module, target, limit):
            view = run_view(self.store, self.workspaces, self.engine, row["run_id"], None, with_steps=False)
            listed.append(
                {
                    "run_id": row["run_id"],
                    "workspace": ws.name,
                    "module": row["module"],
                    "target": row["target"],
                    "status": view["status"],
                    "created_at": row["created_at"],
                    "completed_at": view["completed_at"],
                }
            )
        return listed

    async def get_run(
        self, run_id: str, workspace: str | None = None, wait: float = 0.0, with_steps: bool = True
    ) -> dict[str, Any]:
        """The run as seen from ``workspace``; with ``wait``, first wait up to that many seconds
        for it to finish (a long poll: no polling loop in clients). Without ``with_steps``, the
        status and result only (``steps`` is null)."""
        if wait > 0:
            await self._until_resolved(f"{run_id}:1", wait)
        return run_view(self.store, self.workspaces, self.engine, run_id, workspace, with_steps)

    async def _until_resolved(self, root_step: str, timeout: float) -> None:
        step = self.engine.steps.get(root_step)
        if step is None:
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def resolved(outcome: Outcome) -> None:
            if not done.done():
                done.set_result(None)

        step.waiters.append(resolved)
        try:
            await asyncio.wait_for(asyncio.shield(done), timeout)
        except asyncio.TimeoutError:
            pass
        finally:
            if resolved in step.waiters:
                step.waiters.remove(resolved)

    async def rerun_step(self, step_key: str, workspace: str | None, parents: bool = False) -> ExecutionId:
        """A new execution of the step, with the same arguments, in ``workspace`` (the step's own or
        a descendant of it). A live execution of the step in that workspace is cancelled first.
        With ``parents``, once it succeeds its parent is re-run too, and so on up to the root
        (:mod:`coflux.orchestrator.reruns`)."""
        execution_id = self.reruns.rerun(step_key, workspace, parents)
        await self.writer.durable()
        return execution_id

    async def cancel_execution(self, execution_id: str) -> None:
        try:
            _, step_key, _ = split_execution_id(execution_id)
        except ValueError as err:
            raise BadRequest(str(err)) from err
        reached = self.engine.live_of(execution_id)
        for live in reached:
            self.engine.finish(live, cancellation("cancelled by the user"))
        if reached:
            await self.writer.durable()
            return
        if not any(r["execution_id"] == execution_id for r in self.store.executions_of_step(step_key)):
            raise NotFound(f"no execution {execution_id}")

    async def cancel_run(self, run_id: str) -> int:
        """Cancel every live execution of the run and of the runs it spawned, whether or not the
        run has ended: a run that failed keeps running what it had started (their results may
        serve a re-run through memo and cache) until they finish or this cancels them. Returns
        how many executions were cancelled (their descendants are cancelled with them)."""
        if self.store.run(run_id) is None:
            raise NotFound(f"no run {run_id}")
        family = {run_id}
        pending = [run_id]
        while pending:
            for row in self.store.spawned_by(pending.pop()):
                if row["run_id"] not in family:
                    family.add(row["run_id"])
                    pending.append(row["run_id"])
        live = [e for e in self.engine.executions.values() if e.step.run.run_id in family]
        cancelled = 0
        for execution in sorted(live, key=lambda e: e.step.number):  # callers first: they cascade
            if self.engine.executions.get(execution.execution_id) is execution:
                self.engine.finish(execution, cancellation(f"cancelled: its run {run_id} was cancelled"))
                cancelled += 1
        await self.writer.durable()
        return cancelled

    async def logs(self, execution_id: str) -> list[dict[str, Any]]:
        try:
            _, step_key, _ = split_execution_id(execution_id)
        except ValueError as err:
            raise BadRequest(str(err)) from err
        if not any(r["execution_id"] == execution_id for r in self.store.executions_of_step(step_key)):
            raise NotFound(f"no execution {execution_id}")
        return self.store.logs(execution_id)
