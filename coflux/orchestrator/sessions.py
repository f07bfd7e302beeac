"""The server side of the worker protocol: sessions, and what each worker message does.

Everything a message carries is checked (:mod:`~coflux.orchestrator.checks`) before it changes any
state, so a refused message leaves nothing behind.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from coflux.errors import BadRequest, NotFound, ProtocolError
from coflux.models import (
    ExecutionId,
    ExecutionState,
    SessionId,
    TargetDefinition,
    TargetType,
    split_execution_id,
)
from coflux.orchestrator import calls, checks
from coflux.orchestrator.calls import Calls
from coflux.orchestrator.engine import Engine
from coflux.orchestrator.state import Execution, Outcome, Session, Step, Waiter, cancellation

if TYPE_CHECKING:
    from coflux.orchestrator.workspaces import Workspaces

log = logging.getLogger(__name__)

LOG_BUDGET = 8 * 1024 * 1024
"""Characters of log kept per execution, by default (``c.Coflux.log_budget``)."""
LOG_LINE_COST = 64
"""What a log line costs beyond its characters (its row: timestamp, level, execution)."""
_TRUNCATED = "[coflux] log truncated: this execution's log passed its budget of {:,} characters"

LogEntry = tuple[float | None, str, str]
Send = Callable[[dict[str, Any]], None]
Close = Callable[[int, str], None]
Flush = Callable[[], None]


class Waiting(NamedTuple):
    """A caller waiting on a step (``wait``, or an awaited submit): its slot is lent meanwhile."""

    step: Step
    waiter: Waiter
    caller: Execution


class KernelWorker(NamedTuple):
    """A kernel's latest worker session in a project (``GET kernels/{kernel_id}``)."""

    kernel_id: str
    workspace: str
    connected: bool
    session_id: str
    since: float
    """When the kernel said hello with this session: across projects, the latest is the kernel's."""


class WorkerSessions:
    def __init__(
        self,
        engine: Engine,
        workspaces: Workspaces,
        heartbeat_interval: float,
        log_budget: int = LOG_BUDGET,
    ) -> None:
        self.engine = engine
        self.clock = engine.clock
        self.outbox = engine.outbox
        self.log_budget = log_budget
        self.workspaces = workspaces
        self.heartbeat_interval = heartbeat_interval
        self._waits: dict[tuple[str, int], Waiting] = {}
        """(session, request id) -> an awaited call's wait, until answered or withdrawn."""
        self.calls = Calls(engine, workspaces, self._wait)
        self._kernels: dict[str, tuple[Session, float]] = {}
        """Kernel id -> the session of its latest ``hello`` here, and when it was said."""

    # -- connection ----------------------------------------------------------------------------

    def connect(self, hello: dict[str, Any], send: Send, close: Close, flush: Flush | None = None) -> Session:
        if hello.get("protocol") != 1:
            raise ProtocolError("unsupported_protocol", f"protocol {hello.get('protocol')!r} is not 1")
        workspace_name = checks.name(hello["workspace"], "workspace")
        targets = checks.declarations(hello["targets"])
        concurrency = checks.concurrency(hello["concurrency"])
        provides = checks.provides(hello.get("provides"))
        requested = checks.session_id(hello.get("session_id"))
        running = [str(r) for r in hello.get("running") or []]
        session = self.engine.sessions.get(requested) if requested else None
        workspace = self.workspaces.ensure(workspace_name)
        if session is not None and session.workspace_id != workspace:
            raise ProtocolError("conflict", "session belongs to another workspace")
        declared = (session.targets if session is not None else set()) | {t.key for t in targets}
        if len(declared) > checks.TARGETS_MAX:  # refused before the welcome: the handshake fails
            raise checks.too_many_targets(len(declared))
        # Checked: from here on the hello is accepted.
        now = self.clock.now()
        if session is None:
            session = Session(
                requested or SessionId(secrets.token_hex(8)), workspace, 0, {}, set(), None, None, None, now
            )
            self.engine.remember_session(session)
        if session.close is not None and session.send != send:
            session.close(4000, "replaced by a newer connection")
        session.send, session.close, session.flush = send, close, flush
        session.last_seen, session.disconnected_at = now, None
        session.concurrency, session.provides = concurrency, provides
        session.kernel_id = hello.get("kernel_id")  # checked by the protocol's decoder
        welcome = {"type": "welcome", "protocol": 1, "session_id": session.session_id}
        send({**welcome, "heartbeat_interval": self.heartbeat_interval})  # first: what follows may say more
        self._declare(session, targets, bool(hello.get("register")))
        self._reconcile(session, running)
        if session.kernel_id is not None:
            self._kernels[session.kernel_id] = (session, now)
            event = self._kernel_event(session)
            self.engine.writer.after_commit(lambda: self.engine.publish(event))  # its workspace is durable
        self.engine.writer.schedule()
        return session

    def kernel(self, kernel_id: str) -> KernelWorker | None:
        """The worker session of kernel ``kernel_id``'s latest ``hello`` here, while the server
        keeps it (until its reconnect timeout once disconnected)."""
        found = self._kernels.get(kernel_id)
        if found is None:
            return None
        session, since = found
        if self.engine.sessions.get(session.session_id) is not session:  # gone for good
            del self._kernels[kernel_id]
            return None
        workspace = self.workspaces.name_of(session.workspace_id)
        return KernelWorker(kernel_id, workspace, session.connected, session.session_id, since)

    def _kernel_event(self, session: Session) -> dict[str, Any]:
        return {
            "type": "worker",
            "kernel_id": session.kernel_id,
            "workspace": self.workspaces.name_of(session.workspace_id),
            "connected": session.connected,
        }

    def _declare(self, session: Session, targets: list[TargetDefinition], register: bool) -> None:
        declared = session.targets | {t.key for t in targets}
        if len(declared) > checks.TARGETS_MAX:
            raise checks.too_many_targets(len(declared))
        session.targets = declared
        if register:
            workflows = [t for t in targets if t.type is TargetType.WORKFLOW]
            self.workspaces.register(session.workspace_id, workflows)
        self.workspaces.remember(session.workspace_id, targets)

    def _reconcile(self, session: Session, running: list[str]) -> None:
        """After a reconnect (``running``: what the worker holds, running or with its result not
        yet acknowledged):

        - what the server assigned it and it no longer holds was lost with it: abandoned;
        - what it holds that the server has live but not dispatched (the dispatch was lost with
          the last batch before a restart), or assigned to a worker that is gone, is its own again
          (:meth:`Engine.adopt`): dispatching it anew would make the worker, which still holds
          it, take the ``execute`` for a repeat and ignore it;
        - what it holds that another connected worker was given meanwhile is aborted here, but a
          result it re-sends for it is still taken (the first result wins; see ``_on_complete``);
        - what it holds that the server no longer has live is aborted. An execution of a step the
          server lost keeps its number from a new step of the run, for the same reason as above.
        """
        held = {ExecutionId(r) for r in running}
        self.engine.abandon([e for e in session.executions.values() if e.execution_id not in held])
        session.claimed.clear()
        for stray in held - set(session.executions):
            execution = self.engine.executions.get(stray)
            if execution is not None and self._adoptable(session, execution):
                self.engine.adopt(execution, session)
                continue
            if execution is not None:
                session.claimed.add(stray)
            else:
                self._skip_number(stray)
            self.engine.abort_on(session, stray)

    @staticmethod
    def _adoptable(session: Session, execution: Execution) -> bool:
        holder = execution.session
        return (
            execution.workspace_id == session.workspace_id
            and execution.step.key in session.targets
            and (holder is None or not holder.connected)
        )

    def _skip_number(self, execution_id: str) -> None:
        try:
            run_id, step_key, _ = split_execution_id(execution_id)
        except ValueError:
            return
        self.engine.skip_number(run_id, int(step_key.rsplit(":", 1)[1]))

    def disconnected(self, session: Session, send: Send) -> None:
        if session.send != send:
            return  # an older connection of a session that has already reconnected
        session.send = session.close = session.flush = None
        session.disconnected_at = self.clock.now()
        kernel = self._kernels.get(session.kernel_id) if session.kernel_id is not None else None
        if kernel is not None and kernel[0] is session:  # not an older session of a switched kernel
            self.engine.publish(self._kernel_event(session))

    def check(self, reconnect_timeout: float, heartbeat_timeout: float) -> None:
        """Close silent connections; abandon the work of sessions that stayed away too long."""
        now = self.clock.now()
        for session in list(self.engine.sessions.values()):
            if session.connected and now - session.last_seen > heartbeat_timeout:
                log.warning("session %s missed its heartbeats", session.session_id)
                close, send = session.close, session.send
                if close is not None and send is not None:
                    self.disconnected(session, send)
                    close(4001, "heartbeat timeout")
            elif session.disconnected_at is not None and now - session.disconnected_at > reconnect_timeout:
                log.info("session %s did not come back: its executions are abandoned", session.session_id)
                self.engine.abandon_session(session)
                self._forget_declarations(session)

    def _forget_declarations(self, session: Session) -> None:
        """The targets that a gone session declared and no other session of its workspace holds are
        no longer remembered (registered workflows stay)."""
        held: set[tuple[str, str]] = set()
        for other in self.engine.sessions.values():
            if other.workspace_id == session.workspace_id:
                held |= other.targets
        self.workspaces.forget(session.workspace_id, session.targets - held)

    # -- messages ------------------------------------------------------------------------------

    def receive(self, session: Session, message: dict[str, Any]) -> None:
        if self.engine.sessions.get(session.session_id) is not session:
            raise ProtocolError("session_closed", "this connection's session is closed; reconnect")
        session.last_seen = self.clock.now()
        handler = getattr(self, "_on_" + message["type"], None)
        if handler is None:
            raise ProtocolError("unexpected_message", f"{message['type']!r} is not expected now")
        handler(session, message)

    def _on_heartbeat(self, session: Session, message: dict[str, Any]) -> None:
        """A live worker that no longer holds an execution lost it (its thread or process died and
        came back): that execution is abandoned. Recent assignments may still be on their way."""
        running = {str(r) for r in message["running"]}
        settled = self.clock.now() - 2 * self.heartbeat_interval
        lost = [
            e
            for e in session.executions.values()
            if e.execution_id not in running and e.assigned_at < settled
        ]
        self.engine.abandon(lost)

    def _on_declare(self, session: Session, message: dict[str, Any]) -> None:
        self._declare(session, checks.declarations(message["targets"]), bool(message.get("register")))
        request_id = message.get("request_id")
        if isinstance(request_id, int) and not isinstance(request_id, bool):
            reply = {"type": "reply", "request_id": request_id}
            self.outbox.send_after_commit(session, reply)
        self.engine.writer.schedule()

    def _on_started(self, session: Session, message: dict[str, Any]) -> None:
        execution = session.executions.get(ExecutionId(message["execution_id"]))
        if execution is not None:
            self.engine.mark_running(execution)

    def _on_complete(self, session: Session, message: dict[str, Any]) -> None:
        outcome = checks.outcome(message["outcome"])
        execution_id = ExecutionId(message["execution_id"])
        execution = session.executions.get(execution_id) or self._claimed(session, execution_id)
        answered = _answered(message.get("answered"))
        if execution is not None:
            if answered is not None and outcome.get("state") == ExecutionState.SUCCEEDED.value:
                self._answered_by_worker(session, execution, answered[1])
            holder = execution.session
            self.engine.finish(execution, outcome, reported=holder is session)
            if holder is not None and holder is not session:  # it ran twice: stop the other one
                self.engine.abort_on(holder, execution_id)
        elif answered is not None:
            self._rejected_answer(session, execution_id, answered[0])
        # A late or repeated result (abandoned, timed out, already recorded) is acknowledged and dropped.
        self.outbox.send_after_commit(session, {"type": "ack", "seqs": [message["seq"]]})

    def _claimed(self, session: Session, execution_id: ExecutionId) -> Execution | None:
        """A live execution that this worker held when it reconnected, given to another since."""
        if execution_id not in session.claimed:
            return None
        session.claimed.discard(execution_id)
        return self.engine.executions.get(execution_id)

    def _answered_by_worker(self, session: Session, execution: Execution, request_id: int) -> None:
        """The worker gave this result to the awaited call ``request_id`` itself: that call's
        waiter is settled here, without a ``resolved`` (the ``ack`` of the result tells the worker
        that it is durable)."""
        waiting = self._waits.get((session.session_id, request_id))
        if waiting is None or waiting.step is not execution.step:
            return
        del self._waits[(session.session_id, request_id)]
        self._withdraw(waiting)

    def _withdraw(self, waiting: Waiting) -> None:
        if waiting.waiter in waiting.step.waiters:
            waiting.step.waiters.remove(waiting.waiter)
        self.engine.unblock(waiting.caller)

    def _rejected_answer(self, session: Session, execution_id: str, parent_id: str) -> None:
        """A result the worker already handed to the caller (``answered``: its parent) arrived
        after the server ended that execution otherwise (cancelled, replaced by a re-run, timed
        out, abandoned): the caller went on with a value its history doesn't hold, so it is
        cancelled too. A repeat of a result the server recorded (a re-send after a reconnect), or
        one of an execution it doesn't know (a lost step, made again from the call's re-send),
        changes nothing."""
        state = self.engine.state_of(execution_id)
        if state is None or state not in _ENDED_OTHERWISE:
            return
        parent = session.executions.get(ExecutionId(parent_id))
        if parent is not None:
            log.info("%s used a result of %s, which was %s: cancelled", parent_id, execution_id, state)
            reason = f"cancelled: it used a result of {execution_id}, which was {state.replace('_', ' ')}"
            self.engine.finish(parent, cancellation(reason))

    def _on_log(self, session: Session, message: dict[str, Any]) -> None:
        """Lines of an execution assigned to this session are kept, up to the log budget; others
        are dropped without an answer: lines printed after an abort, a timeout or the result are
        late, not wrong (and a worker that logs elsewhere gains nothing by learning why)."""
        execution_id = checks.execution_id(message["execution_id"])
        execution = self._log_allowed(session, execution_id)
        if execution is None:
            log.debug("dropped log lines for %s, not assigned to %s", execution_id, session.session_id)
            return
        entries = self._within_budget(execution, [checks.log_entry(entry) for entry in message["entries"]])
        now = self.clock.now()
        self.engine.writer.batch.logs.extend(
            {"execution_id": execution_id, "timestamp": t or now, "level": level, "message": text}
            for t, level, text in entries
        )
        self.engine.writer.schedule()

    def _log_allowed(self, session: Session, execution_id: str) -> Execution | None:
        """The execution whose log ``session`` may write to: one assigned to it."""
        return session.executions.get(ExecutionId(execution_id))

    def _within_budget(self, execution: Execution, entries: list[LogEntry]) -> list[LogEntry]:
        """The entries that fit the execution's log budget (a line counts its characters plus
        ``LOG_LINE_COST``); at the first that doesn't, one line saying so, and nothing after it."""
        kept: list[LogEntry] = []
        for entry in entries:
            if execution.log_size > self.log_budget:
                break  # truncated already
            execution.log_size += len(entry[2]) + LOG_LINE_COST
            if execution.log_size > self.log_budget:
                kept.append((None, "warning", _TRUNCATED.format(self.log_budget)))
                break
            kept.append(entry)
        return kept

    def _parent(self, session: Session, execution_id: str) -> Execution:
        execution = session.executions.get(ExecutionId(execution_id))
        if execution is None:
            raise BadRequest(f"execution {execution_id} is not running on this worker")
        return execution

    def _on_submit(self, session: Session, message: dict[str, Any]) -> None:
        parent = self._parent(session, message["parent_execution_id"])
        self.calls.submit(session, parent, calls.parse(message))

    def _on_wait(self, session: Session, message: dict[str, Any]) -> None:
        parent = self._parent(session, message["from_execution_id"])
        target = checks.execution_id(message["execution_id"])
        _, step_key, _ = split_execution_id(target)
        self._wait(session, parent, step_key, message["request_id"], target)

    def _wait(self, session: Session, parent: Execution, step_key: str, request_id: int, target: str) -> None:
        def answer(outcome: Outcome) -> None:
            reply = {"type": "resolved", "request_id": request_id, "execution_id": target, "outcome": outcome}
            self.outbox.send(session, reply)

        step = self.engine.steps.get(step_key)
        if step is None:  # already final: answer once durable, without touching any slot
            outcome = self.engine.outcome_of(step_key)
            if outcome is None:
                raise NotFound(f"no execution {target}")
            self.engine.writer.after_commit(lambda: answer(outcome))
            return
        self.engine.block(parent)
        key = (session.session_id, request_id)

        def resolved(outcome: Outcome) -> None:
            self._waits.pop(key, None)
            self.engine.unblock(parent)
            answer(outcome)

        step.waiters.append(resolved)
        self._waits[key] = Waiting(step, resolved, parent)
        self.engine.writer.schedule()

    def _on_unwait(self, session: Session, message: dict[str, Any]) -> None:
        withdrawn = self._waits.pop((session.session_id, message["request_id"]), None)
        if withdrawn is None:
            return  # answered already
        self._withdraw(withdrawn)
        self.engine.writer.schedule()

    def _on_cancel(self, session: Session, message: dict[str, Any]) -> None:
        target = checks.execution_id(message["execution_id"])
        asking = message.get("from_execution_id")
        if asking is not None:
            asking = checks.execution_id(asking, "from_execution_id")
        reason = cancellation(f"cancelled by {asking}" if asking else "cancelled by a worker")
        for live in self.engine.live_of(target):
            self.engine.finish(live, reason)
        reply = {"type": "reply", "request_id": message["request_id"]}
        self.outbox.send_after_commit(session, reply)


_ENDED_OTHERWISE = frozenset(
    s.value for s in (ExecutionState.CANCELLED, ExecutionState.TIMED_OUT, ExecutionState.ABANDONED)
)


def _answered(value: Any) -> tuple[str, int] | None:
    """``complete``'s ``answered``: (caller execution, its request id), or None. A malformed one is
    ignored (logged): the result itself must still be recorded and acknowledged."""
    if value is None:
        return None
    request_id = value.get("request_id") if isinstance(value, dict) else None
    caller = value.get("caller") if isinstance(value, dict) else None
    if not isinstance(request_id, int) or isinstance(request_id, bool) or not isinstance(caller, str):
        log.warning("ignored a malformed 'answered' in a complete: %r", value)
        return None
    return caller, request_id
