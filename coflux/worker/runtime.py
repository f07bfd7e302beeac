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
import threading
from typing import Any

from coflux.errors import error_to_data
from coflux.models import JSON
from coflux.worker import context, values
from coflux.worker.context import ExecutionContext
from coflux.worker.options import TargetOptions
from coflux.worker.targets import Target

_logger = logging.getLogger("coflux.worker")


def start(ctx: ExecutionContext, target: Target[..., Any], arguments: list[JSON]) -> None:
    """Run the execution on a new daemon thread."""
    thread = threading.Thread(
        target=run, args=(ctx, target, arguments), name=f"coflux {ctx.execution_id}", daemon=True
    )
    thread.start()


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
        return failed_outcome(error, target.options)


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
