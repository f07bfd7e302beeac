"""A worker that comes back after its session was abandoned keeps running the abandoned work."""

from __future__ import annotations

import asyncio
from pathlib import Path

from coflux.orchestrator import Timing
from tests.support.service import FakeWorker, open_service, run, start_parent


def test_executions_the_server_abandoned_are_not_aborted_on_reconnect(tmp_path: Path) -> None:
    """sessions.py:connect/_reconcile only looks at executions the server still assigns to the
    session; ids in hello.running that it already abandoned (reconnect timeout) get no 'abort'.
    The worker keeps running them as zombies: outside the server's slot accounting (the worker
    exceeds its concurrency) and in parallel with their retries (side effects twice)."""

    async def scenario() -> None:
        timing = Timing(reconnect_timeout=0.2, heartbeat_interval=0.1, heartbeat_timeout=5)
        async with open_service(tmp_path, timing) as service:
            worker = FakeWorker(service)
            session = worker.hello(concurrency=1)
            parent = await start_parent(service, worker)
            worker.disconnect()
            await asyncio.sleep(0.8)  # abandoned
            assert parent["execution_id"] not in service.engine.executions
            back = FakeWorker(service)
            back.hello(session_id=session.session_id, running=[parent["execution_id"]])
            abort = await back.next("abort", timeout=1.0)
            assert abort["execution_id"] == parent["execution_id"]

    run(scenario)
