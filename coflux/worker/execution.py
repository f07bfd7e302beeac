"""``Execution[T]``: a handle on a child step's execution, returned by ``Target.submit`` and rebuilt
from values that reference one."""

from __future__ import annotations

import threading
from typing import Any, Generic, TypeVar, cast

from coflux.errors import (
    TERMINATED_BY_STATE,
    CofluxError,
    execution_error_from_data,
)
from coflux.models import JSON, ExecutionId
from coflux.worker import context, values
from coflux.worker.context import Channel
from coflux.worker.requests import PendingRequest

T = TypeVar("T")
D = TypeVar("D")

_UNSET: Any = object()


class Execution(Generic[T]):
    """A child execution. Creating one doesn't wait for the server: ``submit`` returns at once and
    many submits travel pipelined; ``.id`` waits for the server's ``submitted`` answer.

    ``result()`` blocks until the execution is final and returns its value, or raises
    ``cf.ExecutionError`` (its code failed; also an instance of the original exception type) or an
    ``cf.ExecutionTerminated`` subclass (cancelled, timed out, abandoned).
    """

    def __init__(
        self,
        channel: Channel | None,
        *,
        execution_id: str | None = None,
        request: PendingRequest | None = None,
        owner: ExecutionId | None = None,
    ) -> None:
        if execution_id is None and request is None:
            raise ValueError("an Execution needs an execution id or a submit request")
        self._channel = channel
        self._execution_id = ExecutionId(execution_id) if execution_id else None
        self._submit = request
        self._resolution = request if request is not None and request.awaits else None
        self._owner = owner
        self._lock = threading.Lock()
        self._value: Any = _UNSET

    @property
    def id(self) -> ExecutionId:
        """The execution id (``R…:N:A``); blocks until the server confirmed the submit."""
        if self._execution_id is None:
            assert self._submit is not None
            self._execution_id = self._submit.wait_submitted()
        return self._execution_id

    def __coflux_reference__(self) -> tuple[str, str]:
        return ("execution", self.id)

    def result(self, timeout: float | None = None) -> T:
        """The execution's value, once final; ``TimeoutError`` if not final within ``timeout``."""
        request = self._resolve_request()
        if not request.wait_finished(timeout):
            self._give_up(request)
            raise TimeoutError(f"execution {self.id} not finished within {timeout} s")
        return self._finish(request)

    def poll(self, timeout: float = 0, default: D | None = None) -> T | D | None:
        """The value if the execution is final within ``timeout`` seconds, else ``default``."""
        request = self._resolve_request()
        if not request.wait_finished(timeout):
            self._give_up(request)
            return default
        return self._finish(request)

    def _give_up(self, request: PendingRequest) -> None:
        """Stop waiting (so the server counts this execution as busy again); a later call waits anew."""
        if request.kind != "wait":
            return  # an awaited submit is waited on without a timeout
        with self._lock:
            if self._resolution is request:
                self._resolution = None
        self._channel_or_current().withdraw(request)

    def cancel(self) -> None:
        """Ask the server to cancel the execution (and its descendants); waits for the reply."""
        channel = self._channel_or_current()
        asking = self._waiter_id()
        message = {
            "type": "cancel",
            "request_id": channel.next_request_id(),
            "execution_id": self.id,
            "from_execution_id": asking,
        }
        channel.request(message, asking).wait_finished()

    def _resolve_request(self) -> PendingRequest:
        with self._lock:
            if self._resolution is None:
                channel = self._channel_or_current()
                step_id = self.id.rsplit(":", 1)[0]
                known = channel.known_outcome(self._waiter_id(), step_id)
                if known is not None:
                    self._resolution = PendingRequest.answered(self.id, known)
                    return self._resolution
                message = {
                    "type": "wait",
                    "request_id": channel.next_request_id(),
                    "execution_id": self.id,
                    "from_execution_id": self._waiter_id(),
                }
                self._resolution = channel.request(message, self._waiter_id())
            return self._resolution

    def _finish(self, request: PendingRequest) -> T:
        outcome: dict[str, JSON] = request.outcome or {}
        state = outcome.get("state")
        if request.execution_id is not None and self._execution_id is None:
            self._execution_id = request.execution_id
        if state == "succeeded":
            if self._value is _UNSET:
                self._value = values.decode(outcome.get("value"), self._channel_or_current())
            result: T = self._value
            return result
        if state == "failed":
            raise execution_error_from_data(dict(outcome.get("error") or {}), self.id)
        terminated = TERMINATED_BY_STATE.get(str(state))
        if terminated is None:
            raise CofluxError(f"execution {self.id} ended in an unknown state {state!r}")
        raise terminated(self.id, terminated_message(self.id, outcome))

    def _channel_or_current(self) -> Channel:
        if self._channel is not None:
            return self._channel
        ctx = context.current()
        if ctx is None:
            raise CofluxError("an Execution can only be waited on or cancelled inside an execution")
        self._channel = ctx.channel
        return ctx.channel

    def _waiter_id(self) -> ExecutionId:
        ctx = context.current()
        if ctx is not None:
            return ctx.execution_id
        if self._owner is None:
            raise CofluxError("an Execution can only be waited on or cancelled inside an execution")
        return self._owner

    def __repr__(self) -> str:
        shown = self._execution_id or (f"request {self._submit.request_id}" if self._submit else "")
        return f"<Execution {shown}>"


def terminated_message(execution_id: str, outcome: dict[str, JSON]) -> str | None:
    """``R…:2:1 cancelled by the user``: the execution and the reason the server gave, if any."""
    error = outcome.get("error")
    reason = error.get("message") if isinstance(error, dict) else None
    return f"{execution_id} {reason}" if isinstance(reason, str) and reason else None


class LocalExecution(Execution[T]):
    """What ``submit`` returns outside any execution: the target already ran in this thread (as a
    plain call does), so unit tests and notebooks can exercise workflows without a server."""

    def __init__(self, value: Any = None, error: BaseException | None = None) -> None:
        self._local_value: Any = value
        self._local_error = error

    @property
    def id(self) -> ExecutionId:
        raise CofluxError("a target submitted outside an execution ran locally and has no id")

    def result(self, timeout: float | None = None) -> T:
        if self._local_error is not None:
            raise self._local_error
        return cast(T, self._local_value)

    def poll(self, timeout: float = 0, default: D | None = None) -> T | D | None:
        return self.result()

    def cancel(self) -> None:
        """Nothing to cancel: the call has already finished."""

    def __repr__(self) -> str:
        return "<Execution (ran locally)>"
