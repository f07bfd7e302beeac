"""What a worker's session keeps until the server answers it or proves it durable (all on the
session's event loop):

- requests (``submit``, ``wait``, ``cancel``, ``declare``) until their final answer, re-sent after a
  reconnect (same ``request_id`` and ``call_index``: the server de-duplicates);
- awaited calls by (caller, call index), so that a child this worker runs can answer its caller
  here (see ``Session._send_complete``); such a call is kept until the child's result is
  acknowledged and re-sent with the outcome its caller used;
- calls answered ahead of the commit of their step (cache hits, and calls a lease answered here),
  until a later message proves that commit (see :meth:`Pending.confirm`) or ``recorded`` names
  them, re-sent pinned to the result they were answered with.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from coflux.models import JSON, ExecutionId
from coflux.protocol import Message
from coflux.worker.context import ExecutionContext
from coflux.worker.requests import PendingRequest

UNCOMMITTED: Final = frozenset({"welcome", "execute", "error", "uncache"})
"""What the server may send before the commit of the batch it belongs to; besides these, only a
``resolved`` with ``ahead``. Every other message leaves after a commit."""


class Pending:
    def __init__(self) -> None:
        self.requests: dict[int, PendingRequest] = {}
        self._awaited: dict[tuple[ExecutionId, int], PendingRequest] = {}
        """Awaited submits by (caller, call index): the child an ``execute`` names may answer one."""
        self.ahead: dict[int, _Ahead] = {}
        """Calls answered ahead of the commit of their step, by request id, until confirmed."""

    # -- requests ------------------------------------------------------------------------------

    def add(self, request: PendingRequest) -> None:
        self.requests[request.request_id] = request
        call_index = request.message.get("call_index")
        if (
            request.owner is not None
            and request.kind == "submit"
            and request.awaits
            and call_index is not None
        ):
            self._awaited[(request.owner, call_index)] = request

    def pop(self, request_id: Any) -> PendingRequest | None:
        request = self.requests.pop(request_id, None) if isinstance(request_id, int) else None
        if request is not None:
            call_index = request.message.get("call_index")
            if request.owner is not None and isinstance(call_index, int):
                key = (request.owner, call_index)
                if self._awaited.get(key) is request:
                    del self._awaited[key]
        return request

    def drop_owner(self, owner: ExecutionId) -> list[PendingRequest]:
        """Forget everything ``owner`` (aborted) asked; returns its unanswered requests."""
        for request_id, ahead in list(self.ahead.items()):
            if ahead.owner == owner:
                del self.ahead[request_id]
        dropped = [r for r in self.requests.values() if r.owner == owner]
        for request in dropped:
            self.pop(request.request_id)
        return dropped

    # -- calls answered on this worker ----------------------------------------------------------

    def link(self, caller: Any, call_index: Any) -> PendingRequest | None:
        """The awaited call that a child named by ``execute`` answers, if this worker made it."""
        if not isinstance(caller, str) or not isinstance(call_index, int):
            return None
        request = self._awaited.pop((ExecutionId(caller), call_index), None)
        return request if request is not None and self.requests.get(request.request_id) is request else None

    def caller_answered(self, ctx: ExecutionContext, outcome: dict[str, JSON]) -> PendingRequest | None:
        """The awaited call of this worker that a child's success answers here, with no round trip:
        the child ran here, so should the server lose its outcome, this worker sends it again
        (the ``complete`` until acknowledged, the call with ``outcome`` until then). Not for a
        child with a timeout (the server may time it out while its result travels), nor for one
        that made calls of its own (re-sent after a reconnect, they need it still running)."""
        request = ctx.answers
        if request is None or outcome.get("state") != "succeeded" or ctx.made_calls:
            return None
        if self.requests.get(request.request_id) is not request or request.finished:
            return None
        options = request.message.get("options")
        if isinstance(options, dict) and options.get("timeout") is not None:
            return None
        return request

    def answer_durable(self, answered: Any) -> None:
        """The result that answered a call here is acknowledged: that call is durable too."""
        request_id = answered.get("request_id") if isinstance(answered, dict) else None
        request = self.requests.get(request_id) if isinstance(request_id, int) else None
        if request is not None and request.local is not None:
            self.pop(request.request_id)

    # -- calls answered ahead of their commit ----------------------------------------------------

    def keep_ahead(self, request: PendingRequest, batch: int | None, cached_from: Any) -> None:
        self.ahead[request.request_id] = _Ahead(batch, request, cached_from)

    def answered_again(self, request_id: Any, batch: Any) -> None:
        """The answer to a call answered ahead and re-sent after a reconnect."""
        ahead = self.ahead.get(request_id) if isinstance(request_id, int) else None
        if ahead is not None:
            if isinstance(batch, int):
                ahead.batch = batch
            else:
                del self.ahead[request_id]

    def confirm(self, message: Message) -> None:
        """Forget the calls answered ahead whose commit ``message`` proves. The server numbers
        its batches: one answered ahead of batch N is durable once anything sent after batch N
        committed arrives, i.e. a message not in :data:`UNCOMMITTED`, or one answered ahead of a
        later batch (a failed commit closes the connection before anything else is sent). Those
        a lease answered here (no batch) wait for ``recorded``."""
        kind = message["type"]
        if kind in UNCOMMITTED or not self.ahead:
            return
        batch = message.get("ahead") if kind == "resolved" else None
        for request_id, ahead in list(self.ahead.items()):
            if ahead.batch is not None and (batch is None or ahead.batch < batch):
                del self.ahead[request_id]

    def recorded(self, request_ids: list[Any]) -> None:
        for request_id in request_ids:
            if isinstance(request_id, int):
                self.ahead.pop(request_id, None)

    def refused_ahead(self, request_id: Any) -> bool:
        """An ``error`` for a call answered ahead: nothing more to do (its caller has its answer)."""
        return isinstance(request_id, int) and self.ahead.pop(request_id, None) is not None

    # -- after a reconnect -----------------------------------------------------------------------

    def resend_first(self, alive: Callable[[ExecutionId | None], bool]) -> list[Message]:
        """What must reach the server before any result: the calls answered ahead (whose owner
        still runs or holds a result), then the calls answered here with the outcome their
        caller used (the server may have lost the child: it is made again from that outcome)."""
        first: list[Message] = []
        for request_id in sorted(self.ahead):
            ahead = self.ahead[request_id]
            if alive(ahead.owner):
                ahead.batch = None  # only its own answer confirms it now
                first.append({**ahead.request.message, "cached_from": ahead.cached_from})
            else:
                del self.ahead[request_id]  # its parent was aborted: nobody needs the step
        for request_id in sorted(self.requests):
            local = self.requests[request_id].local
            if local is not None:
                message = self.requests[request_id].message
                first.append({**message, "execution_id": local[0], "outcome": local[1]})
        return first

    def resend_rest(self) -> list[Message]:
        """The other requests still unanswered, in the order they were made."""
        return [r.message for _, r in sorted(self.requests.items()) if r.local is None]


class _Ahead:
    """A call answered ahead of the commit of its step: ``batch`` is the server's number of that
    commit (``None`` once re-sent on a new connection, or when a lease answered it here, until
    its answer or ``recorded``); re-sent pinned to the result it was answered with
    (``cached_from``)."""

    __slots__ = ("batch", "cached_from", "request")

    def __init__(self, batch: int | None, request: PendingRequest, cached_from: Any) -> None:
        self.batch = batch
        self.request = request
        self.cached_from = cached_from

    @property
    def owner(self) -> ExecutionId | None:
        return self.request.owner
