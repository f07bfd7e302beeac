"""The worker's session with the server: the state behind the wire protocol, owned by the event
loop's thread.

Two objects, one per side. :class:`~coflux.worker.channel.SessionChannel` (``session.channel``) is
what execution threads call: it posts typed items to an :class:`~coflux.worker.outbox.Outbox`
and wakes the loop at most once per batch, so a burst of submits (a fan-out) costs one wake-up and
no round trip each. :class:`Session` is the loop's: it takes those items, handles the connection
(:class:`~coflux.worker.transport.ConnectionHandler`) and the server's messages, and is the only
writer of what it keeps until the server confirms it:

- ``complete`` messages, numbered, until the server's ``ack`` lists them
  (:class:`~coflux.worker.results.Results`); re-sent after a reconnect;
- requests, calls answered ahead of their commit (cache hits, and those a lease answered here:
  :meth:`SessionChannel.record <coflux.worker.channel.SessionChannel.record>`), and calls a child
  running here answered as it completed (:meth:`Session._send_complete`), in
  :mod:`coflux.worker.pending` until answered or proven durable, re-sent in the right order after
  a reconnect;
- ``log`` and ``started`` written while disconnected, in a bounded backlog;
- the executions running here, and the outcomes the server pushed for their children (read by
  execution threads through the channel).

Its entry points assert (unless ``python -O``) that they run on the loop's thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, Final

from coflux.background import ThreadOwner
from coflux.errors import ExecutionCancelled, NotFound, request_error
from coflux.models import JSON, ExecutionId, RunId, StepId
from coflux.protocol import PROTOCOL_VERSION, Message
from coflux.worker import outbox, runtime
from coflux.worker.blobclient import BlobClient
from coflux.worker.channel import Outcomes, SessionChannel
from coflux.worker.context import ExecutionContext
from coflux.worker.leases import Leases
from coflux.worker.pending import Pending
from coflux.worker.requests import PendingRequest
from coflux.worker.results import Results
from coflux.worker.settings import WorkerSettings
from coflux.worker.status import StatusBoard, WorkerStatus
from coflux.worker.targets import Target
from coflux.worker.transport import Connection

if sys.version_info >= (3, 11):
    from typing import assert_never
else:  # pragma: no cover
    from typing_extensions import assert_never

_logger = logging.getLogger("coflux.worker")

BACKLOG_LIMIT: Final = 10_000

TargetKey = tuple[str, str]
STARTED_AFTER = 0.01
"""Seconds an execution runs before the worker reports it as running."""
_ON_LOOP: Final = "loop-side state touched off the session's loop thread"


class Session:
    """The loop's side of a worker's session; see the module's docstring. Built on any thread,
    then used only on the loop's (``loop``), from :meth:`run` on; :meth:`reject_all` runs after
    the loop stopped."""

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
        self._owner = ThreadOwner()
        self._targets: dict[TargetKey, Target[..., Any]] = {}
        self._upsert(targets)
        url = self.connection.url  # where the API was found under settings.url, if it was
        given = settings.url if url != settings.url else None
        self.board = StatusBoard(
            WorkerStatus("connecting", url, settings.project, settings.workspace, given_url=given), listener
        )
        self._results = Results()
        self._running: dict[ExecutionId, ExecutionContext] = {}
        self._pending = Pending()
        self.leases = Leases()
        self._runner = runtime.Runner()
        self._outcomes: Outcomes = {}
        self._backlog: deque[Message] = deque(maxlen=BACKLOG_LIMIT)
        self._all_acked: asyncio.Event | None = None
        self.outbox = outbox.Outbox(lambda: _call_soon(loop, self._drain))
        self.channel = SessionChannel(
            settings,
            self.outbox,
            self.leases,
            self._outcomes,
            BlobClient(url, settings.project, settings.token),
            asset_factory,
        )
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

    # -- lifecycle ---------------------------------------------------------------------------------

    async def run(self) -> None:
        self._owner.claim()
        await self.connection.run()

    async def close(self, drain_timeout: float) -> None:
        """Give unacknowledged results ``drain_timeout`` seconds to be acknowledged, then close."""
        assert self._owner.held(), _ON_LOOP
        if self._results and self.connection.connected:
            self._all_acked = asyncio.Event()
            try:
                await asyncio.wait_for(self._all_acked.wait(), drain_timeout)
            except asyncio.TimeoutError:
                _logger.warning("coflux: %d results were not acknowledged", len(self._results))
        await self.connection.close()

    def reject_all(self, error: BaseException) -> None:
        """After the loop stopped (on the thread that stopped it): fail everything still waiting,
        and refuse new work."""
        requests = [item.request for item in self.outbox.close() if isinstance(item, outbox.Send)]
        for request in [*self._pending.requests.values(), *requests]:
            request.on_error(error)
        self._pending.requests.clear()

    # -- the outbox ------------------------------------------------------------------------------

    def _drain(self) -> None:
        """Send what execution threads posted; consecutive log lines of one execution share a
        message."""
        assert self._owner.held(), _ON_LOOP
        batch: Message | None = None
        for item in self.outbox.take():
            if isinstance(item, outbox.Log):
                if batch is not None and batch["execution_id"] == item.execution_id:
                    batch["entries"].append(item.entry)
                    continue
                if batch is not None:
                    self._send_or_keep(batch)
                batch = {"type": "log", "execution_id": item.execution_id, "entries": [item.entry]}
                continue
            if batch is not None:
                self._send_or_keep(batch)
                batch = None
            self._take(item)
        if batch is not None:
            self._send_or_keep(batch)
        self.connection.flush()

    def _take(self, item: outbox.Action) -> None:
        match item:
            case outbox.Send(request, encoded):
                self._send_request(request, encoded)
            case outbox.Record(request):
                self._pending.keep_ahead(request, None, request.message["cached_from"])
                self.connection.send(request.message)  # if disconnected: re-sent on welcome
            case outbox.Complete(ctx, outcome):
                self._send_complete(ctx, outcome)
            case outbox.Withdraw(request):
                if self._pending.pop(request.request_id) is not None:
                    self._send_or_keep({"type": "unwait", "request_id": request.request_id})
            case outbox.Declare(targets, request):
                self._send_declare(targets, request)
            case _:
                assert_never(item)

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
        message = self._results.add(execution_id, outcome)
        caller = self._pending.caller_answered(ctx, outcome)
        if caller is not None:
            message["answered"] = {"caller": caller.owner, "request_id": caller.request_id}
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
        assert self._owner.held(), _ON_LOOP
        hello: Message = {
            "type": "hello",
            "protocol": PROTOCOL_VERSION,
            "workspace": self.settings.workspace,
            "session_id": self.session_id,
            "concurrency": self.settings.concurrency,
            "provides": self.settings.provides,
            "targets": [t.definition.to_json() for t in self._targets.values()],
            "register": self.settings.register,
            "running": [*self._running, *(e for e in self._results.held() if e not in self._running)],
        }
        if self.settings.kernel_id is not None:
            hello["kernel_id"] = self.settings.kernel_id
        return hello

    def welcomed(self, welcome: Message) -> None:
        assert self._owner.held(), _ON_LOOP
        self.session_id = welcome["session_id"]
        self.leases.revoke(None)  # the server granted them to a connection that is gone
        for ctx in self._running.values():
            ctx.answers = None  # a link made by an ``execute`` of the connection that is gone
        # Before any result: a parent's children must reach the server while it still runs,
        # and so must its log lines (the server keeps lines only of executions assigned to
        # this worker).
        for message in self._pending.resend_first(
            lambda owner: owner in self._running or (owner is not None and self._results.holds(owner))
        ):
            self.connection.send(message)
        while self._backlog:
            self.connection.send(self._backlog.popleft())
        for message in self._results.unacknowledged():
            self.connection.send(message)
        for message in self._pending.resend_rest():
            self.connection.send(message)
        self.board.update(state="connected", session_id=self.session_id, reason=None, refusal=None)

    def received(self, message: Message) -> None:
        assert self._owner.held(), _ON_LOOP
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
        self.channel.blobs = BlobClient(url, self.settings.project, self.settings.token)
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
        if execution_id in self._running or self._results.holds(execution_id):
            return  # a repeat after a reconnect: it is running, or its result is on its way
        ctx = ExecutionContext(
            execution_id,
            self.channel,
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
        for acked in self._results.acknowledge(message["seqs"]):
            if "answered" in acked:
                self._pending.answer_durable(acked["answered"])
        if not self._results and self._all_acked is not None:
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


def _call_soon(loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> None:
    """Wake the loop from another thread. Once the loop has closed (the worker is stopping) the
    item stays in the outbox, which ``Worker.stop`` then closes, failing what waits on it: the
    posting thread gets that error, not the loop's ``RuntimeError``."""
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(callback)
