"""The worker session's thread-side face: what execution threads (and the user's, through
:meth:`coflux.worker.Worker.declare`) may call. Every method is safe from any thread: it reads
what the loop publishes (leases, pushed outcomes, the blob client), calls the blob API over HTTP,
or posts a typed item to the :class:`~coflux.worker.outbox.Outbox`, which the session takes on its
loop. Nothing here touches the session's loop-side state."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Hashable, Iterable
from typing import Any

from coflux.assets import Asset
from coflux.errors import CofluxError
from coflux.models import JSON, ExecutionId
from coflux.protocol import Message
from coflux.worker import context, outbox
from coflux.worker.assets import WorkerAssets
from coflux.worker.blobclient import BlobClient
from coflux.worker.context import ExecutionContext, log_entry
from coflux.worker.execution import Execution
from coflux.worker.leases import Lease, Leases
from coflux.worker.requests import PendingRequest
from coflux.worker.settings import WorkerSettings
from coflux.worker.targets import Target

Outcomes = dict[ExecutionId, dict[str, dict[str, JSON]]]
"""Outcomes of children the server pushed, by parent, then step id."""


class SessionChannel:
    """Implements :class:`coflux.worker.context.Channel` for a :class:`~coflux.worker.session.Session`.

    ``leases``, ``outcomes`` and ``blobs`` are the loop's: written there (a single dict operation or
    attribute assignment, atomic), only read here."""

    def __init__(
        self,
        settings: WorkerSettings,
        box: outbox.Outbox,
        leases: Leases,
        outcomes: Outcomes,
        blobs: BlobClient,
        asset_factory: Callable[[str], Any] | None = None,
    ) -> None:
        self._settings = settings
        self._outbox = box
        self._leases = leases
        self._outcomes = outcomes
        self.blobs = blobs
        """Replaced by the loop when the API is found at another URL."""
        self._asset_factory = asset_factory
        self._assets = WorkerAssets(lambda: self.blobs)
        self._request_ids = itertools.count(1)

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
        if not self._outbox.post(outbox.Send(request, encoded)):
            request.on_error(CofluxError("the worker has stopped"))
        return request

    def leased(self, call: Hashable) -> Lease | None:
        return self._leases.get(call)

    def record(self, message: Message, owner: ExecutionId, lease: Lease) -> None:
        """Send a submit that ``lease`` answered here (``message`` is its plain submit): the server
        makes its step from the lease's result; kept until ``recorded``, re-sent after a reconnect."""
        answered = {**message, "cached_from": lease.source, "answered": True}
        self._outbox.post(outbox.Record(PendingRequest(answered, owner)))

    def withdraw(self, request: PendingRequest) -> None:
        """The caller stopped waiting on ``request`` (a timeout): tell the server, forget it."""
        self._outbox.post(outbox.Withdraw(request))

    def known_outcome(self, parent: ExecutionId, step_id: str) -> dict[str, JSON] | None:
        """A child's final outcome if the server has already pushed it."""
        return self._outcomes.get(parent, {}).get(step_id)

    def log(self, execution_id: ExecutionId, level: str, message: str) -> None:
        self._outbox.post(outbox.Log(execution_id, log_entry(level, message)))

    def complete(self, context: ExecutionContext, outcome: dict[str, JSON]) -> None:
        self._outbox.post(outbox.Complete(context, outcome))

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
                "register": self._settings.register,
            }
            request = PendingRequest(message, None)
        self._outbox.post(outbox.Declare(targets, request))
        return request

    def put_blob(self, data: bytes) -> str:
        return self.blobs.put(data)

    def get_blob(self, key: str) -> bytes:
        return self.blobs.get(key)

    def execution(self, execution_id: str) -> Execution[Any]:
        ctx = context.current()
        return Execution(self, execution_id=execution_id, owner=ctx.execution_id if ctx else None)

    def asset(self, asset_id: str) -> Any:
        """An asset read from a value: restorable here, its listing fetched when first needed."""
        if self._asset_factory is not None:
            return self._asset_factory(asset_id)
        return Asset(asset_id, source=self._assets)

    def asset_source(self) -> WorkerAssets:
        return self._assets
