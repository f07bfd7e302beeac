"""A project's orchestrator: the single writer that every state change of the project goes through.

HTTP handlers and websockets call these methods; they never touch storage themselves.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from coflux import descriptors
from coflux.errors import BadRequest, Conflict, NotFound
from coflux.models import (
    ExecutionId,
    RunId,
    TargetType,
    WorkspaceState,
    new_run_id,
    split_execution_id,
)
from coflux.orchestrator import invariants, keys
from coflux.orchestrator.assets import Assets
from coflux.orchestrator.clock import Clock, LoopClock, Timer
from coflux.orchestrator.engine import Engine
from coflux.orchestrator.history import StoredHistory
from coflux.orchestrator.reruns import Reruns
from coflux.orchestrator.restore import restore
from coflux.orchestrator.sessions import LOG_BUDGET, Close, KernelWorker, Send, WorkerSessions
from coflux.orchestrator.state import Session, cancellation
from coflux.orchestrator.views import execution_result, redoing, run_view
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
    def __init__(
        self,
        name: str,
        store: SqlStore,
        timing: Timing,
        limits: Limits = Limits(),
        clock: Clock | None = None,
        *,
        checked: bool = False,
    ) -> None:
        """``clock``: the real one by default. ``checked``: the engine's invariants are checked
        around every commit (:mod:`coflux.orchestrator.invariants`; for tests: it costs time)."""
        self.name = name
        self.store = store
        self.timing = timing
        self.limits = limits
        self.clock: Clock = clock or LoopClock()
        self.checked = checked
        self.broken: list[str] = []
        """With ``checked``: every invariant found broken so far."""
        self._listeners: list[Listener] = []
        self._checker: Timer | None = None
        self._load()

    def _load(self) -> None:
        self.writer = Writer(self.store, self._before_commit, self._on_failure, self._after_effects)
        self.workspaces = Workspaces(self.writer, self.store.workspaces(), self.store.targets(), self.clock)
        history = StoredHistory(self.store)
        self.engine = Engine(self.writer, history, self.workspaces, self.clock, self._publish)
        self.workspaces.changed = self.engine.cache.revoke_leases
        self.sessions = WorkerSessions(
            self.engine, self.workspaces, self.timing.heartbeat_interval, self.limits.log_budget
        )
        self.reruns = Reruns(self.engine, self.store, self.workspaces)
        self.assets = Assets(self.writer, self.store, self.engine, self.clock, self._publish)
        restore(self.engine, self.store, self.reruns.fixed_call)

    async def start(self) -> None:
        self.engine.start()
        if self._checker is not None:
            self._checker.cancel()
        self._checker = self.clock.call_later(self._check_interval, self._check)
        await self.writer.durable()

    @property
    def _check_interval(self) -> float:
        return min(1.0, self.timing.heartbeat_interval / 2)

    def _check(self) -> None:
        """Every ``_check_interval``: close silent connections, abandon sessions gone too long."""
        self._checker = self.clock.call_later(self._check_interval, self._check)
        try:
            self.sessions.check(self.timing.reconnect_timeout, self.timing.heartbeat_timeout)
        except Exception:
            log.exception("session check failed")

    async def close(self) -> None:
        if self._checker is not None:
            self._checker.cancel()
            self._checker = None
        self.writer.flush()
        self.engine.stop()
        for session in list(self.engine.sessions.values()):
            if session.close is not None:
                session.close(1001, "server shutting down")
        self.store.close()

    # -- commit hooks --------------------------------------------------------------------------

    def _before_commit(self) -> None:
        self.engine.dispatch()
        self.engine.outbox.flush()  # executions start while the batch commits
        if self.checked:
            self._check_invariants()

    def _after_effects(self) -> None:
        self.engine.outbox.flush()
        if self.checked:
            self._check_invariants()

    def _check_invariants(self) -> None:
        """Raise :class:`~coflux.orchestrator.invariants.InvariantBroken` if the engine's state
        contradicts itself, and keep what broke in :attr:`broken` (a test asserts it is empty:
        a commit scheduled on the loop would only have its exception logged)."""
        broken = invariants.violations(self.engine)
        if broken:
            self.broken += broken
            raise invariants.InvariantBroken("; ".join(broken))

    def _on_failure(self, error: Exception) -> None:
        """A commit failed: what was in memory may be ahead of storage. Drop it all and rebuild from
        storage; workers reconnect and re-send what was not acknowledged (the close reason says
        what failed, e.g. "project 'p': no space left on the device holding its database")."""
        self.engine.stop()
        reason = f"project {self.name!r}: {describe(error)}".encode()[:CLOSE_REASON_BYTES]
        for session in list(self.engine.sessions.values()):
            close = session.close
            session.send = session.close = session.flush = None  # stale from now on
            if close is not None:
                close(1011, reason.decode(errors="ignore"))
        self._load()
        asyncio.get_running_loop().create_task(self.start())

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

    def kernel_worker(self, kernel_id: str) -> KernelWorker | None:
        """The worker session a notebook kernel said hello with last in this project, if kept."""
        return self.sessions.kernel(kernel_id)

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
            descriptors.describe(argument)  # raises BadRequest on malformed tagged JSON
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
            await self._until_final(run_id, workspace, wait)
        return run_view(self.store, self.workspaces, self.engine, run_id, workspace, with_steps)

    async def _until_final(self, run_id: str, workspace: str | None, timeout: float) -> None:
        """Until the run's root step is resolved and no re-run with ``parents`` is on its way up
        to it (:func:`~coflux.orchestrator.views.redoing`), or ``timeout`` seconds have passed.
        While the root is live only its resolution wakes this; during a chain, any execution of
        the run that changes does (then the root may be live again, or the chain over)."""
        expired = False
        woken: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake(*_: object) -> None:
            if not woken.done():
                woken.set_result(None)

        def expire() -> None:
            nonlocal expired
            expired = True
            wake()

        def on_event(event: dict[str, Any]) -> None:
            if event.get("type") == "execution" and event.get("run_id") == run_id:
                wake()

        timer = self.clock.call_later(timeout, expire)
        unsubscribe: Callable[[], None] | None = None
        try:
            while not expired:
                root = self.engine.steps.get(f"{run_id}:1")
                if root is not None:
                    root.waiters.append(wake)
                    try:
                        await woken
                    finally:
                        if wake in root.waiters:
                            root.waiters.remove(wake)
                elif self._redoing(run_id, workspace):
                    unsubscribe = unsubscribe or self.subscribe(on_event)
                    await woken
                else:
                    return
                woken = asyncio.get_running_loop().create_future()
        finally:
            timer.cancel()
            if unsubscribe is not None:
                unsubscribe()

    def _redoing(self, run_id: str, workspace: str | None) -> bool:
        row = self.store.run(run_id)
        if row is None:
            return False
        view_id = self.workspaces.get(workspace).id if workspace else row["workspace_id"]
        return redoing(self.engine, self.store, run_id, self.workspaces.ancestry(view_id))

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
        return self.store.logs(self._known_execution(execution_id))

    async def execution_result(self, execution_id: str) -> dict[str, Any]:
        """The execution's state and, once it has one, its value as tagged JSON."""
        return execution_result(self.store, self.engine, self._known_execution(execution_id))

    def _known_execution(self, execution_id: str) -> ExecutionId:
        try:
            _, step_key, _ = split_execution_id(execution_id)
        except ValueError as err:
            raise BadRequest(str(err)) from err
        if not any(r["execution_id"] == execution_id for r in self.store.executions_of_step(step_key)):
            raise NotFound(f"no execution {execution_id}")
        return ExecutionId(execution_id)
