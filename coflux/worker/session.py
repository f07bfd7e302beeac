"""The worker's session with the server: the state behind the wire protocol, on the event loop.

Execution threads talk to it through the thread-safe :class:`~coflux.worker.context.Channel`
methods, which append to an outbox and wake the loop at most once per batch, so a burst of submits
(a fan-out) costs one wake-up and no round trip each. Everything else runs on the loop's thread:

- ``complete`` messages get a sequence number and are kept until the server's ``ack`` lists it;
  unacknowledged ones are re-sent after a reconnect;
- requests, calls answered ahead of their commit (cache hits, and those a lease answered here:
  :meth:`Session.record`), and calls a child running here answered as it completed
  (:meth:`Session._send_complete`) are kept in :mod:`coflux.worker.pending` until answered or
  proven durable, and re-sent in the right order after a reconnect;
- ``log`` and ``started`` written while disconnected wait in a bounded backlog.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
from collections import deque
from collections.abc import Callable, Hashable, Iterable
from typing import Any, Final

from coflux.errors import CofluxError, ExecutionCancelled, NotFound, request_error
from coflux.models import JSON, ExecutionId, RunId, StepId
from coflux.protocol import PROTOCOL_VERSION, Message
from coflux.worker import context, runtime
from coflux.worker.blobclient import BlobClient
from coflux.worker.context import ExecutionContext, log_entry
from coflux.worker.execution import Execution
from coflux.worker.leases import Lease, Leases
from coflux.worker.pending import Pending
from coflux.worker.requests import PendingRequest
from coflux.worker.settings import WorkerSettings
from coflux.worker.status import StatusBoard, WorkerStatus
from coflux.worker.targets import Target
from coflux.worker.transport import Connection
from coflux.worker.values import AssetReference

_logger = logging.getLogger("coflux.worker")

BACKLOG_LIMIT: Final = 10_000

TargetKey = tuple[str, str]
STARTED_AFTER = 0.01
"""Seconds an execution runs before the worker reports it as running."""


class Session:
    def __init__(
        self,
        settings: WorkerSettings,
        targets: Iterable[Target[..., Any]],
        loop: asyncio.AbstractEventLoop,
        asset_factory: Callable[[str], Any] | None = None,
        listener: Callable[[WorkerStatus], None] | None = None,
    ) -> None:
        self.settings = settings
        self.session_id: str | None = None
        self.connection = Connection(settings, self)
        self._loop = loop
        self._targets: dict[TargetKey, Target[..., Any]] = {}
        self._upsert(targets)
        self._blobs = BlobClient(self.connection.url, settings.project, settings.token)
        self._asset_factory = asset_factory or AssetReference
        self._request_ids = itertools.count(1)
        # Shared with other threads, under _lock.
        self._lock = threading.Lock()
        self._outbox: list[tuple[str, Any]] = []
        self._drain_scheduled = False
        self._closed = False
        url = self.connection.url  # where the API was found under settings.url, if it was
        given = settings.url if url != settings.url else None
        self.board = StatusBoard(
            WorkerStatus("connecting", url, settings.project, settings.workspace, given_url=given), listener
        )
        # The loop's own.
        self._seq = 0
        self._unacked: dict[int, Message] = {}
        self._held: dict[ExecutionId, int] = {}
        self._running: dict[ExecutionId, ExecutionContext] = {}
        self._pending = Pending()
        self.leases = Leases()
        self._runner = runtime.Runner()
        # Outcomes of children the server pushed, by parent: read from execution threads.
        self._outcomes: dict[ExecutionId, dict[str, dict[str, JSON]]] = {}
        self._backlog: deque[Message] = deque(maxlen=BACKLOG_LIMIT)
        self._all_acked: asyncio.Event | None = None
        self._handlers: dict[str, Callable[[Message], None]] = {
            "execute": self._on_execute,
            "abort": self._on_abort,
            "ack": self._on_ack,
            "submitted": self._on_submitted,
            "resolved": self._on_resolved,
            "outcome": self._on_outcome,
            "reply": self._on_reply,
            "recorded": self._on_recorded,
            "uncache": self._on_uncache,
            "error": self._on_error,
        }

    # -- lifecycle (on the loop) -----------------------------------------------------------------

    async def run(self) -> None:
        await self.connection.run()

    async def close(self, drain_timeout: float) -> None:
        """Give unacknowledged results ``drain_timeout`` seconds to be acknowledged, then close."""
        if self._unacked and self.connection.connected:
            self._all_acked = asyncio.Event()
            try:
                await asyncio.wait_for(self._all_acked.wait(), drain_timeout)
            except asyncio.TimeoutError:
                _logger.warning("coflux: %d results were not acknowledged", len(self._unacked))
        await self.connection.close()

    def reject_all(self, error: BaseException) -> None:
        """After the loop stopped: fail everything still waiting, and refuse new work."""
        with self._lock:
            self._closed = True
            items, self._outbox = self._outbox, []
        requests = [payload[0] for kind, payload in items if kind == "request"]
        for request in [*self._pending.requests.values(), *requests]:
            request.on_error(error)
        self._pending.requests.clear()

    # -- Channel: called from execution threads --------------------------------------------------

    def next_request_id(self) -> int:
        return next(self._request_ids)

    def request(
        self,
        message: Message,
        owner: ExecutionId | None,
        encoded: str | None = None,
        lease_key: Hashable | None = None,
    ) -> PendingRequest:
        """``encoded``: ``message`` as JSON text already (the first sending uses it).
        ``lease_key``: what identifies the call, should its answer grant a lease."""
        request = PendingRequest(message, owner, lease_key)
        self._post("request", (request, encoded))
        return request

    def leased(self, call: Hashable) -> Lease | None:
        return self.leases.get(call)

    def record(self, message: Message, owner: ExecutionId, lease: Lease) -> None:
        """Send a submit that ``lease`` answered here (``message`` is its plain submit): the server
        makes its step from the lease's result; kept until ``recorded``, re-sent after a reconnect."""
        answered = {**message, "cached_from": lease.source, "answered": True}
        self._post("record", PendingRequest(answered, owner))

    def withdraw(self, request: PendingRequest) -> None:
        """The caller stopped waiting on ``request`` (a timeout): tell the server, forget it."""
        self._post("withdraw", request)

    def known_outcome(self, parent: ExecutionId, step_id: str) -> dict[str, JSON] | None:
        """A child's final outcome if the server has already pushed it (thread-safe read)."""
        return self._outcomes.get(parent, {}).get(step_id)

    def log(self, execution_id: ExecutionId, level: str, message: str) -> None:
        self._post("log", (execution_id, log_entry(level, message)))

    def complete(self, context: ExecutionContext, outcome: dict[str, JSON]) -> None:
        self._post("complete", (context, outcome))

    def declare(self, targets: Iterable[Target[..., Any]], confirm: bool = False) -> PendingRequest | None:
        """Add or replace targets (by module and name) and tell the server; with ``confirm``, the
        returned request finishes when the server has them (re-sent after a reconnect)."""
        targets = list(targets)
        request = None
        if confirm:
            message = {
                "type": "declare",
                "request_id": self.next_request_id(),
                "targets": [t.definition.to_json() for t in targets],
                "register": self.settings.register,
            }
            request = PendingRequest(message, None)
        self._post("declare", (targets, request))
        return request

    def put_blob(self, data: bytes) -> str:
        return self._blobs.put(data)

    def get_blob(self, key: str) -> bytes:
        return self._blobs.get(key)

    def execution(self, execution_id: str) -> Execution[Any]:
        ctx = context.current()
        return Execution(self, execution_id=execution_id, owner=ctx.execution_id if ctx else None)

    def asset(self, asset_id: str) -> Any:
        return self._asset_factory(asset_id)

    def _post(self, kind: str, payload: Any) -> None:
        with self._lock:
            if self._closed:
                if kind == "request":
                    payload[0].on_error(CofluxError("the worker has stopped"))
                return
            self._outbox.append((kind, payload))
            if self._drain_scheduled:
                return
            self._drain_scheduled = True
        self._loop.call_soon_threadsafe(self._drain)

    # -- the outbox, on the loop -----------------------------------------------------------------

    def _drain(self) -> None:
        with self._lock:
            items, self._outbox = self._outbox, []
            self._drain_scheduled = False
        batch: Message | None = None  # consecutive log lines of one execution share a message
        for kind, payload in items:
            if kind == "log":
                execution_id, entry = payload
                if batch is not None and batch["execution_id"] == execution_id:
                    batch["entries"].append(entry)
                    continue
                if batch is not None:
                    self._send_or_keep(batch)
                batch = {"type": "log", "execution_id": execution_id, "entries": [entry]}
                continue
            if batch is not None:
                self._send_or_keep(batch)
                batch = None
            if kind == "request":
                self._send_request(*payload)
            elif kind == "record":
                self._pending.keep_ahead(payload, None, payload.message["cached_from"])
                self.connection.send(payload.message)  # if disconnected: re-sent on welcome
            elif kind == "complete":
                self._send_complete(*payload)
            elif kind == "withdraw":
                if self._pending.pop(payload.request_id) is not None:
                    self._send_or_keep({"type": "unwait", "request_id": payload.request_id})
            else:
                self._send_declare(*payload)
        if batch is not None:
            self._send_or_keep(batch)
        self.connection.flush()

    def _send_or_keep(self, message: Message) -> None:
        if not self.connection.send(message):
            self._backlog.append(message)

    def _send_request(self, request: PendingRequest, encoded: str | None) -> None:
        self._pending.add(request)
        self.connection.send(request.message, encoded)  # if disconnected: re-sent on welcome

    def _send_complete(self, ctx: ExecutionContext, outcome: dict[str, JSON]) -> None:
        execution_id = ctx.execution_id
        self._running.pop(execution_id, None)
        self._outcomes.pop(execution_id, None)
        if ctx.aborted:
            return
        self._seq += 1
        message = {
            "type": "complete",
            "seq": self._seq,
            "execution_id": execution_id,
            "outcome": outcome,
        }
        caller = self._pending.caller_answered(ctx, outcome)
        if caller is not None:
            message["answered"] = {"caller": caller.owner, "request_id": caller.request_id}
        self._unacked[self._seq] = message
        self._held[execution_id] = self._seq
        self.connection.send(message)  # if disconnected: re-sent on welcome
        if caller is not None:  # after the result, so that what the caller does next follows it
            caller.answer_locally(execution_id, outcome)

    def _send_declare(self, targets: list[Target[..., Any]], request: PendingRequest | None) -> None:
        self._upsert(targets)
        if request is not None:
            self._send_request(request, None)  # if disconnected: re-sent on welcome
            return
        self.connection.send(
            {
                "type": "declare",
                "targets": [t.definition.to_json() for t in targets],
                "register": self.settings.register,
            }
        )  # if disconnected: the next hello lists every target

    def _upsert(self, targets: Iterable[Target[..., Any]]) -> None:
        for target in targets:
            self._targets[(target.module, target.name)] = target

    # -- ConnectionHandler -------------------------------------------------------------------------

    def hello(self) -> Message:
        return {
            "type": "hello",
            "protocol": PROTOCOL_VERSION,
            "workspace": self.settings.workspace,
            "session_id": self.session_id,
            "concurrency": self.settings.concurrency,
            "provides": self.settings.provides,
            "targets": [t.definition.to_json() for t in self._targets.values()],
            "register": self.settings.register,
            "running": [*self._running, *(e for e in self._held if e not in self._running)],
        }

    def welcomed(self, welcome: Message) -> None:
        self.session_id = welcome["session_id"]
        self.leases.revoke(None)  # the server granted them to a connection that is gone
        for ctx in self._running.values():
            ctx.answers = None  # a link made by an ``execute`` of the connection that is gone
        # Before any result: a parent's children must reach the server while it still runs,
        # and so must its log lines (the server keeps lines only of executions assigned to
        # this worker).
        for message in self._pending.resend_first(
            lambda owner: owner in self._running or owner in self._held
        ):
            self.connection.send(message)
        while self._backlog:
            self.connection.send(self._backlog.popleft())
        for seq in sorted(self._unacked):
            self.connection.send(self._unacked[seq])
        for message in self._pending.resend_rest():
            self.connection.send(message)
        self.board.update(state="connected", session_id=self.session_id, reason=None, refusal=None)

    def received(self, message: Message) -> None:
        self._pending.confirm(message)
        handler = self._handlers.get(message["type"])
        if handler is not None:
            handler(message)

    def heartbeat(self) -> Message:
        return {"type": "heartbeat", "running": list(self._running)}

    def refused(self, error: BaseException, final: bool) -> None:
        self.leases.revoke(None)
        self.session_id = None  # e.g. a session of another workspace: start afresh next time
        if final:
            self.board.update(state="refused", session_id=None, reason=str(error), refusal=error)

    def unreachable(self, reason: str) -> None:
        self.board.update(state="waiting", reason=reason)

    def relocated(self, url: str) -> None:
        self._blobs = BlobClient(url, self.settings.project, self.settings.token)
        self.board.update(url=url, given_url=self.board.current.given_url or self.settings.url)

    def disconnected(self, reason: str | None) -> None:
        self.leases.revoke(None)  # their revocation could be lost: answer nothing here meanwhile
        self.board.update(state="waiting" if reason else "stopped", reason=reason)

    @property
    def connected(self) -> bool:
        return self.board.current.state == "connected"

    # -- server messages ---------------------------------------------------------------------------

    def _on_execute(self, message: Message) -> None:
        execution_id = ExecutionId(message["execution_id"])
        if execution_id in self._running or execution_id in self._held:
            return  # a repeat after a reconnect: it is running, or its result is on its way
        ctx = ExecutionContext(
            execution_id,
            self,
            run_id=RunId(message["run_id"]) if message.get("run_id") else None,
            step_id=StepId(message["step_id"]) if message.get("step_id") else None,
            workspace=message.get("workspace"),
            attempt=int(message.get("attempt") or 1),
        )
        self._running[execution_id] = ctx
        ctx.answers = self._pending.link(message.get("parent_execution_id"), message.get("call_index"))
        target = self._targets.get((message["module"], message["target"]))
        if target is None:
            name = f"{message['module']}:{message['target']}"
            error = NotFound(f"target {name} is not declared by this worker")
            self._send_complete(ctx, runtime.failed_outcome(error, None))
            return
        # Short executions go straight from assigned to their outcome: one frame less each.
        self._loop.call_later(STARTED_AFTER, self._report_started, execution_id)
        self._runner.start(ctx, target, message["arguments"])

    def _report_started(self, execution_id: ExecutionId) -> None:
        if execution_id in self._running:
            self._send_or_keep({"type": "started", "execution_id": execution_id})

    def _on_abort(self, message: Message) -> None:
        execution_id = ExecutionId(message["execution_id"])
        ctx = self._running.pop(execution_id, None)
        if ctx is None:
            return
        ctx.aborted = True
        self._outcomes.pop(execution_id, None)
        for request in self._pending.drop_owner(execution_id):
            request.on_error(ExecutionCancelled(execution_id, f"{execution_id} was aborted"))

    def _on_ack(self, message: Message) -> None:
        for seq in message["seqs"]:
            acked = self._unacked.pop(seq, None)
            if acked is not None and self._held.get(acked["execution_id"]) == seq:
                del self._held[acked["execution_id"]]
            if acked is not None and "answered" in acked:
                self._pending.answer_durable(acked["answered"])
        if not self._unacked and self._all_acked is not None:
            self._all_acked.set()

    def _on_submitted(self, message: Message) -> None:
        request = self._pending.requests.get(message["request_id"])
        if request is None:
            return
        step_id = message.get("step_id")
        execution_id = ExecutionId(message["execution_id"])
        if request.on_submitted(execution_id, StepId(step_id) if step_id else None):
            self._pending.pop(request.request_id)

    def _on_resolved(self, message: Message) -> None:
        request_id = message["request_id"]
        batch = message.get("ahead")
        request = self._pending.pop(request_id)
        if request is None:
            self._pending.answered_again(request_id, batch)
            return
        if isinstance(batch, int) and request.owner is not None and request.kind == "submit":
            self._pending.keep_ahead(request, batch, message.get("cached_from"))
            if request.lease_key is not None and self.connected:
                self.leases.grant(request.lease_key, message, message["outcome"])
        request.on_resolved(ExecutionId(message["execution_id"]), message["outcome"])

    def _on_outcome(self, message: Message) -> None:
        parent = ExecutionId(message["parent_execution_id"])
        if parent in self._running:
            self._outcomes.setdefault(parent, {})[message["step_id"]] = message["outcome"]

    def _on_recorded(self, message: Message) -> None:
        self._pending.recorded(message["request_ids"])

    def _on_uncache(self, message: Message) -> None:
        keys = message.get("keys")
        named = isinstance(keys, list) and all(isinstance(k, str) for k in keys)
        self.leases.revoke(keys if named and not message.get("all") else None)  # unclear: all

    def _on_reply(self, message: Message) -> None:
        request = self._pending.pop(message["request_id"])
        if request is not None:
            request.on_reply()

    def _on_error(self, message: Message) -> None:
        request_id = message.get("request_id")
        if self._pending.refused_ahead(request_id):
            # A re-sent submit the server can no longer take: its caller has its answer.
            _logger.warning("coflux: a call answered ahead was refused: %s", message["message"])
            return
        request = self._pending.pop(request_id)
        error = request_error(message["code"], message["message"])
        if request is not None:
            request.on_error(error)
        else:
            _logger.warning("coflux: the server reported %s: %s", message["code"], message["message"])
