"""The execution a thread is running, and what user code can do from inside it: log, group
children, print into its logs.

Each execution runs on its own thread, which sets :data:`_current` when it starts;
``Target.__call__`` uses it to tell "inside an execution" (submit a child step) from "plain Python"
(run locally).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import sys
import threading
import time
from collections.abc import Hashable, Iterator
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TextIO, cast

from coflux.models import JSON, ExecutionId, RunId, StepId
from coflux.protocol import Message

if TYPE_CHECKING:
    from coflux.worker.assets import WorkerAssets
    from coflux.worker.execution import Execution
    from coflux.worker.leases import Lease
    from coflux.worker.requests import PendingRequest

_logger = logging.getLogger("coflux")


class Channel(Protocol):
    """What an execution thread needs from its worker's connection (thread-safe)."""

    def next_request_id(self) -> int: ...

    def request(
        self,
        message: Message,
        owner: ExecutionId | None,
        encoded: str | None = None,
        lease_key: Hashable | None = None,
    ) -> PendingRequest: ...

    def leased(self, call: Hashable) -> Lease | None: ...

    def record(self, message: Message, owner: ExecutionId, lease: Lease) -> None: ...

    def log(self, execution_id: ExecutionId, level: str, message: str) -> None: ...

    def known_outcome(self, parent: ExecutionId, step_id: str) -> dict[str, JSON] | None: ...

    def withdraw(self, request: PendingRequest) -> None: ...

    def complete(self, context: ExecutionContext, outcome: dict[str, JSON]) -> None: ...

    def put_blob(self, data: bytes) -> str: ...

    def get_blob(self, key: str) -> bytes: ...

    def execution(self, execution_id: str) -> Execution[Any]: ...

    def asset(self, asset_id: str) -> Any: ...

    def asset_source(self) -> WorkerAssets: ...


@dataclass(eq=False)
class ExecutionContext:
    """One running execution, as its thread sees it."""

    execution_id: ExecutionId
    channel: Channel
    run_id: RunId | None = None
    step_id: StepId | None = None
    workspace: str | None = None
    attempt: int = 1
    aborted: bool = False
    made_calls: bool = False
    answers: PendingRequest | None = None
    """The awaited call of another execution of this worker that this execution is the child of:
    its value goes to that caller directly (see ``Pending.caller_answered``)."""
    _calls: Iterator[int] = field(default_factory=itertools.count)
    _partial: dict[str, str] = field(default_factory=dict)

    def next_call_index(self) -> int:
        """The n-th child submitted by this execution (from 0): lets the server recognise a submit
        re-sent after a reconnect."""
        self.made_calls = True
        return next(self._calls)

    def write(self, level: str, text: str) -> None:
        """Stream output: complete lines go to the log, a trailing partial line waits."""
        pending = self._partial.pop(level, "") + text
        *lines, rest = pending.split("\n")
        for line in lines:
            self.channel.log(self.execution_id, level, line)
        if rest:
            self._partial[level] = rest

    def flush_output(self) -> None:
        for level, rest in list(self._partial.items()):
            self.channel.log(self.execution_id, level, rest)
        self._partial.clear()


_current: ContextVar[ExecutionContext | None] = ContextVar("coflux_execution", default=None)
_group: ContextVar[str | None] = ContextVar("coflux_group", default=None)


def current() -> ExecutionContext | None:
    """The execution this thread runs, or ``None`` outside any execution."""
    return _current.get()


def enter(context: ExecutionContext) -> Token[ExecutionContext | None]:
    return _current.set(context)


def leave(token: Token[ExecutionContext | None]) -> None:
    _current.reset(token)


def current_group() -> str | None:
    return _group.get()


@contextlib.contextmanager
def group(name: str | None = None) -> Iterator[None]:
    """Children submitted inside the block carry the group's name (option ``group``), so views can
    fold them together. Nested groups: the innermost wins. Outside an execution it does nothing."""
    token = _group.set(name if name is not None else "group")
    try:
        yield
    finally:
        _group.reset(token)


# -- logging --------------------------------------------------------------------------------------


def format_message(template: str | None, values: dict[str, Any]) -> str:
    """``template.format(**values)``; with no template, the values as ``key=value`` pairs."""
    if template is None:
        return " ".join(f"{key}={value!r}" for key, value in values.items())
    if not values:
        return template
    try:
        return template.format(**values)
    except (KeyError, IndexError, ValueError, AttributeError):
        extras = " ".join(f"{key}={value!r}" for key, value in values.items())
        return f"{template} {extras}"


def _log(level: str, template: str | None, values: dict[str, Any]) -> None:
    message = format_message(template, values)
    context = current()
    if context is None:
        _logger.log(logging.getLevelName(level.upper()), message)
    elif not context.aborted:
        context.channel.log(context.execution_id, level, message)


def log_debug(template: str | None = None, **values: Any) -> None:
    """Add a debug entry to the current execution's log (outside an execution: ``logging``)."""
    _log("debug", template, values)


def log_info(template: str | None = None, **values: Any) -> None:
    """Add an info entry, e.g. ``cf.log_info("loaded {n} rows", n=len(rows))``."""
    _log("info", template, values)


def log_warning(template: str | None = None, **values: Any) -> None:
    _log("warning", template, values)


def log_error(template: str | None = None, **values: Any) -> None:
    _log("error", template, values)


def log_entry(level: str, message: str) -> dict[str, JSON]:
    """One entry of a ``log`` message: epoch seconds, level, text."""
    return {"timestamp": time.time(), "level": level, "message": message}


# -- print() capture ------------------------------------------------------------------------------


class OutputRouter:
    """Stands in for ``sys.stdout``/``sys.stderr``: writes from a thread running an execution go
    to that execution's log (level ``stdout``/``stderr``); everything else passes through."""

    def __init__(self, original: TextIO, level: str) -> None:
        self.original = original
        self.level = level

    def write(self, text: str) -> int:
        context = _current.get()
        if context is None:
            return self.original.write(text)
        if not context.aborted:
            context.write(self.level, text)
        return len(text)

    def flush(self) -> None:
        if _current.get() is None:
            self.original.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.original, name)


_capture_lock = threading.Lock()
_capture_users = 0


def install_capture() -> None:
    """Route ``print()`` of execution threads into their logs (reference-counted, process-wide)."""
    global _capture_users
    with _capture_lock:
        _capture_users += 1
        if _capture_users > 1:
            return
        if not isinstance(sys.stdout, OutputRouter):
            sys.stdout = cast(TextIO, OutputRouter(sys.stdout, "stdout"))
        if not isinstance(sys.stderr, OutputRouter):
            sys.stderr = cast(TextIO, OutputRouter(sys.stderr, "stderr"))


def uninstall_capture() -> None:
    """Undo :func:`install_capture` when its last user stops (streams replaced since stay)."""
    global _capture_users
    with _capture_lock:
        _capture_users = max(0, _capture_users - 1)
        if _capture_users:
            return
        for name in ("stdout", "stderr"):
            stream = getattr(sys, name)
            if isinstance(stream, OutputRouter):
                setattr(sys, name, stream.original)
