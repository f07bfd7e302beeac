"""The worker side of Coflux: targets and their decorators, execution handles, the execution
context (logs, groups, print capture) and the worker itself (an asyncio core on a background
thread with a synchronous face)."""

from coflux.worker.context import group, log_debug, log_error, log_info, log_warning
from coflux.worker.execution import Execution
from coflux.worker.options import Cache, Retries
from coflux.worker.targets import Target, Task, Workflow, task, workflow
from coflux.worker.worker import Worker

__all__ = [
    "Cache",
    "Execution",
    "Retries",
    "Target",
    "Task",
    "Worker",
    "Workflow",
    "group",
    "log_debug",
    "log_error",
    "log_info",
    "log_warning",
    "task",
    "workflow",
]
