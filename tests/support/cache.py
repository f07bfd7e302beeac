"""Cache and memo scenarios: a worker serving ``m:pair`` too, calls with options, and a server
that loses its pending batch."""

from __future__ import annotations

from typing import Any

from coflux.orchestrator import ProjectService
from coflux.storage import Batch
from tests.support.service import FLOW, TASK, FakeWorker, ok, settle

PAIR = {
    "module": "m",
    "name": "pair",
    "type": "task",
    "parameters": [{"name": "x"}, {"name": "label"}],
}
CACHED = {"max_age": None, "params": None, "namespace": None, "version": None}


def call_child(
    parent: dict[str, Any], request_id: int, call_index: int, arguments: list[Any], **options: Any
) -> dict[str, Any]:
    target = options.pop("target", "child")
    return {
        "type": "submit",
        "request_id": request_id,
        "parent_execution_id": parent["execution_id"],
        "module": "m",
        "target": target,
        "target_type": "task",
        "arguments": arguments,
        "call_index": call_index,
        "await": True,
        "options": options,
    }


async def connect_worker(service: ProjectService, workspace: str = "main") -> FakeWorker:
    worker = FakeWorker(service)
    hello = {
        "type": "hello",
        "protocol": 1,
        "workspace": workspace,
        "concurrency": 8,
        "targets": [FLOW, TASK, PAIR],
        "register": True,
    }
    worker.session = service.connect(hello, worker.send, worker.close)
    await worker.next("welcome")
    return worker


async def compute_next(worker: FakeWorker, value: Any) -> dict[str, Any]:
    """The next execute is run by the worker with ``value``; returns it once resolved."""
    execute = await worker.next("execute")
    worker.complete(execute["execution_id"], ok(value))
    await worker.next("resolved")
    return execute


async def start_flow(service: ProjectService, worker: FakeWorker, workspace: str = "main") -> dict[str, Any]:
    await service.start_run(workspace, "m", "flow", [0])
    return await worker.next("execute")


async def assert_no_execute(worker: FakeWorker) -> None:
    await settle(worker.service)
    assert not [m for m in worker.inbox if m["type"] == "execute"], worker.inbox


async def child_state(service: ProjectService, run_id: str, workspace: str | None = None) -> dict[str, Any]:
    view = await service.get_run(run_id, workspace)
    execution: dict[str, Any] = view["steps"][1]["executions"][-1]
    return execution


def lose_pending_batch(service: ProjectService) -> None:
    """The server dies before the pending batch commits: what it held is lost."""
    service.writer.batch = Batch()
    service.writer._effects.clear()
