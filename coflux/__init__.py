"""Coflux for Jupyter: durable workflows defined in notebooks and modules.

``import coflux as cf``; decorate functions with :func:`task` and :func:`workflow`, run a workflow with
``Workflow.run`` or :class:`Client`. Importing this package never imports Jupyter.
"""

from coflux.assets import Asset, AssetEntry
from coflux.client import Client, Run
from coflux.errors import (
    BadRequest,
    CofluxError,
    Conflict,
    ExecutionAbandoned,
    ExecutionCancelled,
    ExecutionError,
    ExecutionTerminated,
    ExecutionTimeout,
    Forbidden,
    NotFound,
    RequestError,
    Unauthorized,
)
from coflux.worker import (
    Cache,
    Execution,
    Retries,
    Target,
    Task,
    Worker,
    Workflow,
    group,
    log_debug,
    log_error,
    log_info,
    log_warning,
    task,
    workflow,
)
from coflux.worker.assets import asset
from coflux.worker.workdir import execution_dir


def load_ipython_extension(shell: object) -> None:
    """``%load_ext coflux``: the magics, the kernel's worker and the widgets (imported only now)."""
    from coflux.notebook import load_ipython_extension as load

    load(shell)


__all__ = [
    "Asset",
    "AssetEntry",
    "BadRequest",
    "Cache",
    "Client",
    "CofluxError",
    "Conflict",
    "Execution",
    "ExecutionAbandoned",
    "ExecutionCancelled",
    "ExecutionError",
    "ExecutionTerminated",
    "ExecutionTimeout",
    "Forbidden",
    "NotFound",
    "RequestError",
    "Retries",
    "Run",
    "Target",
    "Task",
    "Unauthorized",
    "Worker",
    "Workflow",
    "asset",
    "execution_dir",
    "group",
    "load_ipython_extension",
    "log_debug",
    "log_error",
    "log_info",
    "log_warning",
    "task",
    "workflow",
]
