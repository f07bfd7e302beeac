"""The orchestrator driven by a scripted fake worker: a real ``ProjectService`` on a real store
(a SQLite file, or PostgreSQL), spoken to through its methods (an in-memory transport)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from coflux.orchestrator import ProjectService, Session, Timing
from coflux.orchestrator.clock import Clock
from coflux.storage import SqlStore

FLOW = {"module": "m", "name": "flow", "type": "workflow", "parameters": [{"name": "x"}]}
TASK = {"module": "m", "name": "child", "type": "task", "parameters": [{"name": "x"}]}


class FakeWorker:
    """Speaks the protocol through the service's methods, recording what the server sends."""

    def __init__(self, service: ProjectService) -> None:
        self.service = service
        self.inbox: list[dict[str, Any]] = []
        self.closed: tuple[int, str] | None = None
        self.session: Session | None = None
        self.seq = 0

    def send(self, message: dict[str, Any]) -> None:
        self.inbox.append(message)

    def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)

    def hello(
        self,
        concurrency: int = 2,
        session_id: str | None = None,
        running: list[str] | None = None,
        targets: list[dict[str, Any]] | None = None,
    ) -> Session:
        message = {
            "type": "hello",
            "protocol": 1,
            "workspace": "main",
            "concurrency": concurrency,
            "targets": targets if targets is not None else [FLOW, TASK],
            "register": True,
            "session_id": session_id,
            "running": running or [],
        }
        self.session = self.service.connect(message, self.send, self.close)
        return self.session

    def say(self, **message: Any) -> None:
        assert self.session is not None
        self.service.receive(self.session, message)

    def complete(self, execution_id: str, outcome: dict[str, Any]) -> int:
        self.seq += 1
        self.say(type="complete", seq=self.seq, execution_id=execution_id, outcome=outcome)
        return self.seq

    async def next(self, kind: str, timeout: float = 5.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            for index, message in enumerate(self.inbox):
                if message["type"] == kind:
                    return self.inbox.pop(index)
            if time.monotonic() > deadline:
                raise AssertionError(f"no {kind!r} message; inbox: {self.inbox}")
            await asyncio.sleep(0.005)

    def disconnect(self) -> None:
        assert self.session is not None
        self.service.disconnected(self.session, self.send)


@asynccontextmanager
async def open_service(
    path: Path,
    timing: Timing | None = None,
    *,
    project: str = "test",
    database_url: str | None = None,
    clock: Clock | None = None,
) -> AsyncIterator[ProjectService]:
    """A started project service on a real store: a SQLite file under ``path``, or PostgreSQL.
    Its engine's invariants are checked around every commit; any broken fails the test. With
    ``clock`` (a ``FakeClock``), its timers fire only as the test advances that clock."""
    store = SqlStore.open(project, path, database_url)
    service = ProjectService(project, store, timing or Timing(), clock=clock, checked=True)
    await service.start()
    try:
        yield service
    finally:
        await service.close()
    assert not service.broken, f"broken invariants: {service.broken}"


async def settle(service: ProjectService) -> None:
    """Everything written so far is committed, and so is what its effects set off in turn: what a
    worker will be sent without anything new happening has been sent."""
    await service.writer.durable()
    while service.writer.scheduled:
        await service.writer.durable()


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(test(), 30))


def ok(value: Any) -> dict[str, Any]:
    return {"state": "succeeded", "value": value}


async def start_parent(service: ProjectService, worker: FakeWorker) -> dict[str, Any]:
    """Start a run of ``m:flow`` and take its execute (the parent of the calls a test submits)."""
    await service.start_run("main", "m", "flow", [1])
    return await worker.next("execute")


def submit_child(
    parent: dict[str, Any], request_id: int, call_index: int, awaits: bool = True, **options: Any
) -> dict[str, Any]:
    """A ``submit`` of ``m:child(request_id)`` from ``parent``, awaited unless ``awaits`` is False."""
    return {
        "type": "submit",
        "request_id": request_id,
        "parent_execution_id": parent["execution_id"],
        "module": "m",
        "target": "child",
        "target_type": "task",
        "arguments": [request_id],
        "call_index": call_index,
        "await": awaits,
        "options": options,
    }


def spawn_child(parent: dict[str, Any], request_id: int = 1) -> dict[str, Any]:
    """A child of ``parent`` that its caller doesn't await (so only the server can answer it)."""
    return submit_child(parent, request_id, request_id - 1, awaits=False)
