"""Running one execution on its own thread: decode the arguments, call the function with the
execution context set, encode the outcome, hand it to the connection.

Threads can't be killed: an aborted execution's thread runs on until its function returns (its
blocked waits are woken with ``ExecutionCancelled`` so it usually unwinds quickly); its result is
dropped. Concurrency is the server's business: it sends no more than the worker's concurrency.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import queue
import threading
from typing import Any

from coflux.errors import ExecutionCancelled, error_to_data
from coflux.models import JSON
from coflux.worker import context, values, workdir
from coflux.worker.context import ExecutionContext
from coflux.worker.options import TargetOptions
from coflux.worker.targets import Target

_logger = logging.getLogger("coflux.worker")


class Runner:
    """Runs executions on threads that are kept and reused: starting a thread blocks the event loop
    until the thread runs, which a fan-out would pay a thousand times. Idle threads wait for work;
    a new thread starts only when none is idle (an execution blocked on a child keeps its thread)."""

    def __init__(self, idle_timeout: float = 30.0) -> None:
        self._work: queue.SimpleQueue[tuple[ExecutionContext, Target[..., Any], list[JSON]]] = (
            queue.SimpleQueue()
        )
        self._lock = threading.Lock()
        self._idle = 0
        self._idle_timeout = idle_timeout

    def start(self, ctx: ExecutionContext, target: Target[..., Any], arguments: list[JSON]) -> None:
        with self._lock:
            spawn = self._idle == 0
            if not spawn:
                self._idle -= 1
        self._work.put((ctx, target, arguments))
        if spawn:
            threading.Thread(target=self._serve, name="coflux-execution", daemon=True).start()

    def _serve(self) -> None:
        """A runner thread: its own working directory (see :mod:`coflux.worker.workdir`), entered
        for each execution and emptied after it."""
        folder = workdir.WorkDir()
        try:
            while True:
                try:
                    ctx, target, arguments = self._work.get(timeout=self._idle_timeout)
                except queue.Empty:
                    with self._lock:
                        if self._idle > 0 and self._work.empty():
                            self._idle -= 1
                            return
                    continue
                folder.enter()
                try:
                    run(ctx, target, arguments)
                finally:
                    folder.leave()
                with self._lock:
                    self._idle += 1
        finally:
            folder.close()


def run(ctx: ExecutionContext, target: Target[..., Any], arguments: list[JSON]) -> None:
    token = context.enter(ctx)
    try:
        outcome = _outcome(ctx, target, arguments)
    finally:
        ctx.flush_output()
        context.leave(token)
    ctx.channel.complete(ctx, outcome)


def _outcome(ctx: ExecutionContext, target: Target[..., Any], arguments: list[JSON]) -> dict[str, JSON]:
    try:
        args = [values.decode(argument, ctx.channel) for argument in arguments]
        result = target.fn(*args)
        if inspect.iscoroutine(result):
            result = asyncio.run(result)
        return {"state": "succeeded", "value": values.encode(result, ctx.channel)}
    except BaseException as error:  # the user's code failed, whatever it raised
        if isinstance(error, ExecutionCancelled) and error.execution_id != ctx.execution_id:
            return cancelled_outcome(error)
        return failed_outcome(error, target.options)


def cancelled_outcome(error: ExecutionCancelled) -> dict[str, JSON]:
    """The code let out the cancellation of an execution it waited on: it is cancelled too, as an
    exception spreads to the callers that don't catch it (and, being cancelled, it is never
    retried). The reason names that execution; the traceback shows where the code waited."""
    data: dict[str, JSON] = {
        **error_to_data(error),
        "type": "coflux.ExecutionCancelled",
        "message": f"cancelled: it waited on {error.execution_id}, which was cancelled",
    }
    return {"state": "cancelled", "error": data}


def failed_outcome(error: BaseException, options: TargetOptions | None) -> dict[str, JSON]:
    """``{"state": "failed", "error": {type, message, traceback}}``, plus ``retryable`` when the
    target's ``Retries.when`` had to be evaluated here."""
    outcome: dict[str, JSON] = {"state": "failed", "error": error_to_data(error)}
    if options is not None:
        try:
            retryable = options.retryable(error)
        except Exception:
            _logger.exception("the Retries.when predicate raised; not retrying")
            retryable = False
        if retryable is not None:
            outcome["retryable"] = retryable
    return outcome
