"""A request a worker thread made to the server (``submit``, ``wait``, ``cancel``) and the
threading primitives its caller blocks on until the event loop records the answer."""

from __future__ import annotations

import threading
from collections.abc import Hashable

from coflux.models import JSON, ExecutionId, StepId
from coflux.protocol import Message


class Latch:
    """A one-shot event built on a bare lock: cheaper to set and wait on than ``threading.Event``
    (no condition variable), which matters on the path of every chained call."""

    __slots__ = ("_lock", "_set")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()
        self._set = False

    def set(self) -> None:
        if not self._set:
            self._set = True
            self._lock.release()

    def is_set(self) -> bool:
        return self._set

    def wait(self, timeout: float | None = None) -> bool:
        if self._set:
            return True
        if not self._lock.acquire(timeout=-1 if timeout is None else max(0.0, timeout)):
            return self._set
        self._lock.release()  # let any other waiter through too
        return True


class PendingRequest:
    """One outstanding request. Answers are recorded on the event loop's thread; callers block in
    their own threads on :meth:`wait_submitted` / :meth:`wait_finished`.

    A request stays pending (and is re-sent after a reconnect) until it is *finished*: a ``submit``
    without ``await`` when ``submitted`` arrives, an awaited ``submit`` or a ``wait`` when
    ``resolved`` arrives, a ``cancel`` on its ``reply``, anything on an ``error``.
    """

    __slots__ = (
        "_finished",
        "_submitted",
        "error",
        "execution_id",
        "lease_key",
        "local",
        "message",
        "outcome",
        "owner",
        "request_id",
        "step_id",
    )

    def __init__(
        self, message: Message, owner: ExecutionId | None, lease_key: Hashable | None = None
    ) -> None:
        self.message = message
        self.lease_key = lease_key
        """What identifies an awaited call whose answer may grant a cache lease (None: never)."""
        self.local: tuple[ExecutionId, dict[str, JSON]] | None = None
        """(execution, outcome) when this worker ran the child and answered the call itself; the
        server's own ``resolved`` then only proves that outcome durable."""
        self.request_id: int = message["request_id"]
        self.owner = owner
        self.execution_id: ExecutionId | None = message.get("execution_id")
        self.step_id: StepId | None = None
        self.outcome: dict[str, JSON] | None = None
        self.error: BaseException | None = None
        self._submitted = Latch()
        self._finished = Latch()

    @classmethod
    def answered(cls, execution_id: ExecutionId, outcome: dict[str, JSON]) -> PendingRequest:
        """A ``wait`` that the server's pushed ``outcome`` already answered: never sent."""
        request = cls({"type": "wait", "request_id": 0, "execution_id": execution_id}, None)
        request.on_resolved(execution_id, outcome)
        return request

    @property
    def kind(self) -> str:
        return str(self.message["type"])

    @property
    def awaits(self) -> bool:
        """Whether a ``resolved`` answer is expected (awaited submits and waits)."""
        return self.kind == "wait" or bool(self.message.get("await"))

    # -- answers, recorded on the loop thread --------------------------------------------------

    def on_submitted(self, execution_id: ExecutionId, step_id: StepId | None) -> bool:
        """Record ``submitted``; returns whether the request is now finished."""
        self.execution_id = execution_id
        self.step_id = step_id
        self._submitted.set()
        if not self.awaits:
            self._finished.set()
            return True
        return False

    def on_resolved(self, execution_id: ExecutionId, outcome: dict[str, JSON]) -> None:
        if self.local is not None:
            return  # the caller has its answer already
        self.execution_id = self.execution_id or execution_id
        self.outcome = outcome
        self._submitted.set()
        self._finished.set()

    def on_reply(self) -> None:
        self._submitted.set()
        self._finished.set()

    def answer_locally(self, execution_id: ExecutionId, outcome: dict[str, JSON]) -> None:
        """Finish an awaited call with the outcome of the child this worker ran (before the
        server's ``resolved``, which then changes nothing)."""
        self.on_resolved(execution_id, outcome)
        self.local = (execution_id, outcome)

    def on_error(self, error: BaseException) -> None:
        if self.local is not None:
            return  # the caller has its answer already
        self.error = error
        self._submitted.set()
        self._finished.set()

    # -- waiting, in the caller's thread -------------------------------------------------------

    def wait_submitted(self, timeout: float | None = None) -> ExecutionId:
        """The execution id, once the server has made the child durable."""
        if not self._submitted.wait(timeout):
            raise TimeoutError(f"request {self.request_id} got no answer in {timeout} s")
        if self.error is not None:
            raise self.error
        if self.execution_id is None:
            raise RuntimeError("an answered request has no execution id")
        return self.execution_id

    def wait_finished(self, timeout: float | None = None) -> bool:
        """Whether the final answer arrived within ``timeout`` (raises the request's error)."""
        if not self._finished.wait(timeout):
            return False
        if self.error is not None:
            raise self.error
        return True

    @property
    def finished(self) -> bool:
        return self._finished.is_set()

    def __repr__(self) -> str:
        state = "finished" if self.finished else "pending"
        return f"<PendingRequest {self.request_id} {self.kind} {state}>"
