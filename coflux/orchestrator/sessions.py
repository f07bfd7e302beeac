"""The server side of the worker protocol: sessions, and what each worker message does."""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from coflux.errors import BadRequest, NotFound, ProtocolError
from coflux.models import (
    ExecutionId,
    ExecutionState,
    SessionId,
    StepOptions,
    TargetDefinition,
    TargetType,
    split_execution_id,
)
from coflux.orchestrator.engine import Engine
from coflux.orchestrator.state import Execution, Outcome, Session

if TYPE_CHECKING:
    from coflux.orchestrator.workspaces import Workspaces

log = logging.getLogger(__name__)

Send = Callable[[dict[str, Any]], None]
Close = Callable[[int, str], None]


class WorkerSessions:
    def __init__(
        self,
        engine: Engine,
        workspaces: Workspaces,
        lookup: Callable[[str], Outcome | None],
        find_child: Callable[[str, int], tuple[str, int] | None],
        heartbeat_interval: float,
    ) -> None:
        self.find_child = find_child
        self.engine = engine
        self.workspaces = workspaces
        self.lookup = lookup
        self.heartbeat_interval = heartbeat_interval

    # -- connection ----------------------------------------------------------------------------

    def connect(
        self, hello: dict[str, Any], send: Send, close: Close, flush: Callable[[], None] | None = None
    ) -> Session:
        if hello.get("protocol") != 1:
            raise ProtocolError("unsupported_protocol", f"protocol {hello.get('protocol')!r} is not 1")
        workspace = self.workspaces.ensure(str(hello["workspace"]))
        targets = self._declarations(hello["targets"])
        requested = hello.get("session_id")
        session = self.engine.sessions.get(requested) if isinstance(requested, str) else None
        if session is not None and session.workspace_id != workspace:
            raise ProtocolError("conflict", "session belongs to another workspace")
        now = time.time()
        if session is None:
            session_id = SessionId(requested if isinstance(requested, str) else secrets.token_hex(8))
            session = Session(session_id, workspace, 0, {}, set(), None, None, None, now)
            self.engine.sessions[session_id] = session
        if session.close is not None and session.send != send:
            session.close(4000, "replaced by a newer connection")
        session.send, session.close, session.flush = send, close, flush
        session.last_seen, session.disconnected_at = now, None
        session.concurrency = max(1, int(hello["concurrency"]))
        session.provides = _provides(hello.get("provides"))
        self._declare(session, targets, bool(hello.get("register")))
        self._reconcile(session, hello.get("running") or [])
        send(
            {
                "type": "welcome",
                "protocol": 1,
                "session_id": session.session_id,
                "heartbeat_interval": self.heartbeat_interval,
            }
        )
        self.engine.writer.schedule()
        return session

    def _declarations(self, raw: list[Any]) -> list[TargetDefinition]:
        try:
            return [TargetDefinition.from_json(t) for t in raw]
        except (KeyError, ValueError, TypeError, AttributeError) as err:
            raise ProtocolError("malformed", f"bad target declaration: {err}") from err

    def _declare(self, session: Session, targets: list[TargetDefinition], register: bool) -> None:
        session.targets |= {t.key for t in targets}
        if register:
            self.workspaces.register(
                session.workspace_id, [t for t in targets if t.type is TargetType.WORKFLOW]
            )
        self.workspaces.remember(session.workspace_id, targets)

    def _reconcile(self, session: Session, running: list[Any]) -> None:
        """After a reconnect, executions the worker no longer holds were lost with it."""
        held = {str(r) for r in running}
        for execution in list(session.executions.values()):
            if execution.execution_id not in held:
                self.engine.finish(execution, {"state": ExecutionState.ABANDONED.value})

    def disconnected(self, session: Session, send: Send) -> None:
        if session.send != send:
            return  # an older connection of a session that has already reconnected
        session.send = session.close = session.flush = None
        session.disconnected_at = time.time()
        for execution in session.executions.values():
            execution.blocked = 0
        session.busy = len(session.executions)

    def check(self, reconnect_timeout: float, heartbeat_timeout: float) -> None:
        """Close silent connections; abandon the work of sessions that stayed away too long."""
        now = time.time()
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

    # -- messages ------------------------------------------------------------------------------

    def receive(self, session: Session, message: dict[str, Any]) -> None:
        session.last_seen = time.time()
        handler = getattr(self, "_on_" + message["type"], None)
        if handler is None:
            raise ProtocolError("unexpected_message", f"{message['type']!r} is not expected now")
        handler(session, message)

    def _on_heartbeat(self, session: Session, message: dict[str, Any]) -> None:
        """A live worker that no longer holds an execution lost it (its thread or process died and
        came back): that execution is abandoned. Recent assignments may still be on their way."""
        running = {str(r) for r in message["running"]}
        settled = time.time() - 2 * self.heartbeat_interval
        for execution in list(session.executions.values()):
            if execution.execution_id not in running and execution.assigned_at < settled:
                self.engine.finish(execution, {"state": ExecutionState.ABANDONED.value})

    def _on_declare(self, session: Session, message: dict[str, Any]) -> None:
        self._declare(session, self._declarations(message["targets"]), bool(message.get("register")))
        self.engine.writer.schedule()

    def _on_started(self, session: Session, message: dict[str, Any]) -> None:
        execution = session.executions.get(ExecutionId(message["execution_id"]))
        if execution is not None and execution.state is ExecutionState.ASSIGNED:
            execution.state = ExecutionState.RUNNING
            self.engine._event_execution(execution)

    def _on_complete(self, session: Session, message: dict[str, Any]) -> None:
        execution = session.executions.get(ExecutionId(message["execution_id"]))
        if execution is not None:
            self.engine.finish(execution, message["outcome"])
        # A late or repeated result (abandoned, timed out, already recorded) is acknowledged and dropped.
        seq = message["seq"]
        self.engine.writer.after_commit(lambda: self.engine.send_to(session, {"type": "ack", "seqs": [seq]}))

    def _on_log(self, session: Session, message: dict[str, Any]) -> None:
        execution_id = str(message["execution_id"])
        try:
            split_execution_id(execution_id)
        except ValueError as err:
            raise BadRequest(str(err)) from err
        rows = []
        for entry in message["entries"]:
            if not isinstance(entry, dict):
                raise ProtocolError("malformed", "log entries must be objects")
            rows.append(
                {
                    "execution_id": execution_id,
                    "timestamp": float(entry.get("timestamp") or time.time()),
                    "level": str(entry.get("level") or "info")[:16],
                    "message": str(entry.get("message") or ""),
                }
            )
        self.engine.writer.batch.logs.extend(rows)
        self.engine.writer.schedule()

    def _parent(self, session: Session, execution_id: str) -> Execution:
        execution = session.executions.get(ExecutionId(execution_id))
        if execution is None:
            raise BadRequest(f"execution {execution_id} is not running on this worker")
        return execution

    def _on_submit(self, session: Session, message: dict[str, Any]) -> None:
        request_id = message["request_id"]
        parent = self._parent(session, message["parent_execution_id"])
        call_index = message.get("call_index")
        if call_index is not None and not isinstance(call_index, int):
            raise BadRequest("call_index must be an integer")
        existing = self._existing_child(parent, call_index)
        if existing is not None:
            step_key, attempts = existing
        else:
            try:
                options = StepOptions.from_json(message.get("options"))
                type_ = TargetType(message["target_type"])
            except (ValueError, TypeError, AttributeError) as err:
                raise BadRequest(f"bad submit: {err}") from err
            step = self.engine.new_step(
                parent.step.run,
                message["module"],
                message["target"],
                type_,
                message["arguments"],
                options,
                parent,
                call_index,
            )
            self.engine.new_execution(step, parent.workspace_id, options.delay)
            step_key, attempts = step.step_id, step.attempts
        execution_id = f"{step_key}:{max(attempts, 1)}"
        if message.get("await"):
            # The caller only wants the value: ``resolved`` will carry the execution id.
            self._wait(session, parent, step_key, request_id, execution_id)
            return
        reply = {
            "type": "submitted",
            "request_id": request_id,
            "execution_id": execution_id,
            "step_id": step_key,
        }
        self.engine.writer.after_commit(lambda: self.engine.send_to(session, reply))

    def _existing_child(self, parent: Execution, call_index: int | None) -> tuple[str, int] | None:
        """A submit re-sent after a reconnect names a child that already exists: reuse it."""
        if call_index is None:
            return None
        step = parent.calls.get(call_index)
        if step is not None:
            return step.step_id, step.attempts
        if parent.restored:
            return self.find_child(parent.execution_id, call_index)
        return None

    def _on_wait(self, session: Session, message: dict[str, Any]) -> None:
        parent = self._parent(session, message["from_execution_id"])
        try:
            _, step_key, _ = split_execution_id(message["execution_id"])
        except ValueError as err:
            raise BadRequest(str(err)) from err
        self._wait(session, parent, step_key, message["request_id"], message["execution_id"])

    def _wait(
        self,
        session: Session,
        parent: Execution,
        step_key: str,
        request_id: int,
        target_id: str | None = None,
    ) -> None:
        if parent.blocked == 0 and parent.session is session:
            session.busy -= 1
        parent.blocked += 1
        shown_id = target_id or step_key

        def resolved(outcome: Outcome) -> None:
            if parent.blocked > 0:
                parent.blocked -= 1
                if parent.blocked == 0 and parent.session is session:
                    session.busy += 1
            self.engine.send_to(
                session,
                {
                    "type": "resolved",
                    "request_id": request_id,
                    "execution_id": shown_id,
                    "outcome": outcome,
                },
            )

        if not self.engine.add_waiter(step_key, resolved, self.lookup):
            resolved_error = NotFound(f"no execution {shown_id}")
            parent.blocked -= 1
            if parent.blocked == 0:
                session.busy += 1
            raise resolved_error
        self.engine.writer.schedule()

    def _on_cancel(self, session: Session, message: dict[str, Any]) -> None:
        try:
            split_execution_id(message["execution_id"])
        except ValueError as err:
            raise BadRequest(str(err)) from err
        execution = self.engine.executions.get(ExecutionId(message["execution_id"]))
        if execution is not None:
            self.engine.finish(execution, {"state": ExecutionState.CANCELLED.value})
        reply = {"type": "reply", "request_id": message["request_id"]}
        self.engine.writer.after_commit(lambda: self.engine.send_to(session, reply))


def _provides(raw: Any) -> dict[str, list[str]]:
    if not raw:
        return {}
    if not isinstance(raw, dict):
        raise ProtocolError("malformed", "provides must be an object of tag -> values")
    return {str(k): [str(x) for x in (v if isinstance(v, list) else [v])] for k, v in raw.items()}
