"""Scenarios run against more than one store (SQLite here, PostgreSQL in ``test_service_postgres``)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from coflux.orchestrator import ProjectService
from coflux.orchestrator.clock import FakeClock
from tests.support.cache import (
    CACHED,
    PAIR,
    assert_no_execute,
    call_child,
    child_state,
    compute_next,
    connect_worker,
    lose_pending_batch,
    start_flow,
)
from tests.support.service import FLOW, TASK, FakeWorker, ok, settle


async def dispatch_complete_acknowledge(service: ProjectService) -> None:
    """A run is dispatched, its result acknowledged after commit and seen in the run (any backend)."""
    worker = FakeWorker(service)
    worker.hello()
    assert (await worker.next("welcome"))["session_id"]
    run_id = await service.start_run("main", "m", "flow", [5])
    execute = await worker.next("execute")
    assert execute["execution_id"] == f"{run_id}:1:1" and execute["arguments"] == [5]
    seq = worker.complete(execute["execution_id"], ok(25))
    assert (await worker.next("ack"))["seqs"] == [seq]
    view = await service.get_run(run_id)
    assert view["status"] == "succeeded" and view["result"] == 25
    assert view["steps"][0]["executions"][0]["state"] == "succeeded"


async def resent_after_a_lost_commit(
    open_: Callable[[FakeClock], AbstractAsyncContextManager[ProjectService]],
) -> None:
    """The server dies after answering a hit ahead, before the step commits; the worker re-sends
    the submit pinned to the answer's source. The result is older than ``max_age`` by then, so only
    the pin makes it the same answer (and the same record) rather than a new execution."""
    clock = FakeClock()
    young = {**CACHED, "max_age": 30}
    async with open_(clock) as service:
        worker = await connect_worker(service)
        first = await start_flow(service, worker)
        worker.say(**call_child(first, 1, 0, [3], cache=young))
        computed = await compute_next(worker, 9)
        parent = await start_flow(service, worker)
        await settle(service)  # the parent's assignment is durable
        submit = call_child(parent, 2, 0, [3], cache=young)
        worker.say(**submit)
        resolved = next(m for m in worker.inbox if m["type"] == "resolved")
        assert resolved["ahead"] and resolved["cached_from"] == computed["execution_id"]
        assert worker.session is not None
        session_id = worker.session.session_id
        lose_pending_batch(service)
    clock.advance(31)  # the result is now too old for a fresh lookup
    async with open_(clock) as service:
        assert len((await service.get_run(parent["run_id"]))["steps"]) == 1  # the step was lost
        worker = FakeWorker(service)
        worker.hello(
            concurrency=8, session_id=session_id, running=[parent["execution_id"]], targets=[FLOW, TASK, PAIR]
        )
        worker.say(**submit, cached_from=resolved["cached_from"])  # re-sent, pinned
        again = await worker.next("resolved")
        assert again["outcome"] == ok(9) and again["execution_id"] == resolved["execution_id"]
        await assert_no_execute(worker)
        state = await child_state(service, parent["run_id"])
        assert state["state"] == "cached" and state["cached_from"] == computed["execution_id"]

        # Re-sent again (another reconnect): the step exists now, nothing new is made.
        worker.say(**submit, cached_from=resolved["cached_from"])
        assert (await worker.next("resolved"))["outcome"] == ok(9)
        assert len((await service.get_run(parent["run_id"]))["steps"]) == 2
