"""Slot accounting (Session.busy) across wait / resolve."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.support.service import FakeWorker, ok, open_service, run, start_parent


def test_waiting_on_a_finished_execution_oversubscribes_the_worker(tmp_path: Path) -> None:
    """sessions.py:_wait gives the slot back (busy -= 1) before it knows whether the step is still
    live. For a step that is already final, Engine.add_waiter only schedules the answer after the
    next commit, and dispatch() runs *before* that commit: it hands the 'free' slot to a queued
    execution, then the waiter takes the slot back. A concurrency-1 worker now runs two executions
    (busy == 2). Any Execution passed to another task and .result()-ed there takes this path."""

    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            worker = FakeWorker(service)
            session = worker.hello(concurrency=1)
            first = await start_parent(service, worker)
            worker.complete(first["execution_id"], ok(1))
            await worker.next("ack")
            second = await start_parent(service, worker)
            await service.start_run("main", "m", "flow", [3])  # queued: the only slot is taken
            worker.say(
                type="wait",
                request_id=9,
                execution_id=first["execution_id"],
                from_execution_id=second["execution_id"],
            )
            await worker.next("resolved")
            await asyncio.sleep(0.05)
            executes = [m for m in worker.inbox if m["type"] == "execute"]
            assert session.busy <= session.concurrency and not executes, (
                f"busy={session.busy} concurrency={session.concurrency}; dispatched {executes}"
            )

    run(scenario)
