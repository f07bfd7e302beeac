"""A cache hit on a durable result is answered ahead of the commit of its own step, and stays safe:
the step is still recorded (``cached`` from the reused execution), and a submit re-sent after the
server lost that commit gets the same answer and the same record."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support.cache import (
    CACHED,
    assert_no_execute,
    call_child,
    child_state,
    compute_next,
    connect_worker,
    start_flow,
)
from tests.support.scenarios import resent_after_a_lost_commit
from tests.support.service import ok, open_service, run, settle


def test_a_hit_on_a_durable_result_is_answered_before_its_step_commits(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            worker = await connect_worker(service)
            first = await start_flow(service, worker)
            worker.say(**call_child(first, 1, 0, [3], cache=CACHED))
            computed = await compute_next(worker, 9)

            second = await start_flow(service, worker)
            worker.say(**call_child(second, 2, 0, [3], cache=CACHED))
            # No turn of the loop has passed: nothing of the step is committed yet.
            assert service.writer.batch.steps and service.writer.batch.results
            answered = [m for m in worker.inbox if m["type"] == "resolved"]
            assert len(answered) == 1
            resolved = answered[0]
            assert resolved["request_id"] == 2 and resolved["outcome"] == ok(9)
            assert resolved["cached_from"] == computed["execution_id"]
            assert resolved["ahead"] == service.writer.number  # the commit that makes it durable
            assert resolved["execution_id"] == f"{second['run_id']}:2:1"
            await settle(service)
            # The caller has its answer: no pushed ``outcome`` for an awaited step.
            assert not [m for m in worker.inbox if m["type"] == "outcome"], worker.inbox
            await assert_no_execute(worker)
        async with open_service(tmp_path) as service:  # recorded, and durable
            state = await child_state(service, second["run_id"])
            assert state["state"] == "cached" and state["cached_from"] == computed["execution_id"]
            assert state["execution_id"] == resolved["execution_id"]

    run(scenario)


def test_a_hit_on_a_result_of_the_same_batch_is_answered_after_the_commit(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            worker = await connect_worker(service)
            first, second = await start_flow(service, worker), await start_flow(service, worker)
            worker.say(**call_child(first, 1, 0, [3], cache=CACHED))
            execute = await worker.next("execute")
            # One frame: the result, then an identical call; its source is not durable yet.
            worker.complete(execute["execution_id"], ok(9))
            worker.say(**call_child(second, 2, 0, [3], cache=CACHED))
            assert not [m for m in worker.inbox if m["type"] == "resolved"]
            answers = {m["request_id"]: m for m in [await worker.next("resolved") for _ in range(2)]}
            assert answers[2]["outcome"] == ok(9) and "ahead" not in answers[2]
            state = await child_state(service, second["run_id"])
            assert state["state"] == "cached" and state["cached_from"] == execute["execution_id"]

    run(scenario)


def test_a_submit_resent_after_a_lost_commit_gets_the_same_answer(tmp_path: Path) -> None:
    run(lambda: resent_after_a_lost_commit(lambda clock: open_service(tmp_path, clock=clock)))


def test_a_pin_that_names_no_entry_for_the_key_is_ignored(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            worker = await connect_worker(service)
            first = await start_flow(service, worker)
            worker.say(**call_child(first, 1, 0, [3], cache=CACHED))
            computed = await compute_next(worker, 9)
            parent = await start_flow(service, worker)
            other: dict[str, Any] = call_child(parent, 2, 0, [4], cache=CACHED)
            worker.say(**other, cached_from=computed["execution_id"])  # an entry of another key
            execute = await worker.next("execute")  # looked up as usual: a miss, so it runs
            assert execute["arguments"] == [4]

    run(scenario)
