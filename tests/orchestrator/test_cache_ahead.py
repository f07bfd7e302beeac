"""A cache hit on a durable result is answered ahead of the commit of its own step, and stays safe:
the step is still recorded (``cached`` from the reused execution), and a submit re-sent after the
server lost that commit gets the same answer and the same record."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

from coflux.orchestrator import ProjectService
from coflux.storage import Batch
from tests.orchestrator.test_cache import (
    CACHED,
    PAIR,
    _call,
    _child_state,
    _computed,
    _no_execute,
    _parent,
    _worker,
)
from tests.orchestrator.test_service import FLOW, TASK, FakeWorker, ok, open_service, run


def _crash(service: ProjectService) -> None:
    """The server dies before the pending batch commits: what it held is lost."""
    service.writer.batch = Batch()
    service.writer._effects.clear()


def test_a_hit_on_a_durable_result_is_answered_before_its_step_commits(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            worker = await _worker(service)
            first = await _parent(service, worker)
            worker.say(**_call(first, 1, 0, [3], cache=CACHED))
            computed = await _computed(worker, 9)

            second = await _parent(service, worker)
            worker.say(**_call(second, 2, 0, [3], cache=CACHED))
            # No turn of the loop has passed: nothing of the step is committed yet.
            assert service.writer.batch.steps and service.writer.batch.results
            answered = [m for m in worker.inbox if m["type"] == "resolved"]
            assert len(answered) == 1
            resolved = answered[0]
            assert resolved["request_id"] == 2 and resolved["outcome"] == ok(9)
            assert resolved["cached_from"] == computed["execution_id"]
            assert resolved["ahead"] == service.writer.number  # the commit that makes it durable
            assert resolved["execution_id"] == f"{second['run_id']}:2:1"
            await asyncio.sleep(0.05)
            # The caller has its answer: no pushed ``outcome`` for an awaited step.
            assert not [m for m in worker.inbox if m["type"] == "outcome"], worker.inbox
            await _no_execute(worker)
        async with open_service(tmp_path) as service:  # recorded, and durable
            state = await _child_state(service, second["run_id"])
            assert state["state"] == "cached" and state["cached_from"] == computed["execution_id"]
            assert state["execution_id"] == resolved["execution_id"]

    run(scenario)


def test_a_hit_on_a_result_of_the_same_batch_is_answered_after_the_commit(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            worker = await _worker(service)
            first, second = await _parent(service, worker), await _parent(service, worker)
            worker.say(**_call(first, 1, 0, [3], cache=CACHED))
            execute = await worker.next("execute")
            # One frame: the result, then an identical call; its source is not durable yet.
            worker.complete(execute["execution_id"], ok(9))
            worker.say(**_call(second, 2, 0, [3], cache=CACHED))
            assert not [m for m in worker.inbox if m["type"] == "resolved"]
            answers = {m["request_id"]: m for m in [await worker.next("resolved") for _ in range(2)]}
            assert answers[2]["outcome"] == ok(9) and "ahead" not in answers[2]
            state = await _child_state(service, second["run_id"])
            assert state["state"] == "cached" and state["cached_from"] == execute["execution_id"]

    run(scenario)


async def resent_after_a_lost_commit(
    open_: Callable[[], AbstractAsyncContextManager[ProjectService]],
) -> None:
    """The server dies after answering a hit ahead, before the step commits; the worker re-sends
    the submit pinned to the answer's source. The result is older than ``max_age`` by then, so only
    the pin makes it the same answer (and the same record) rather than a new execution."""
    young = {**CACHED, "max_age": 0.3}
    async with open_() as service:
        worker = await _worker(service)
        first = await _parent(service, worker)
        worker.say(**_call(first, 1, 0, [3], cache=young))
        computed = await _computed(worker, 9)
        parent = await _parent(service, worker)
        await asyncio.sleep(0.05)  # the parent's assignment is durable
        submit = _call(parent, 2, 0, [3], cache=young)
        worker.say(**submit)
        resolved = next(m for m in worker.inbox if m["type"] == "resolved")
        assert resolved["ahead"] and resolved["cached_from"] == computed["execution_id"]
        assert worker.session is not None
        session_id = worker.session.session_id
        _crash(service)
    await asyncio.sleep(0.4)  # the result is now too old for a fresh lookup
    async with open_() as service:
        assert len((await service.get_run(parent["run_id"]))["steps"]) == 1  # the step was lost
        worker = FakeWorker(service)
        worker.hello(
            concurrency=8, session_id=session_id, running=[parent["execution_id"]], targets=[FLOW, TASK, PAIR]
        )
        worker.say(**submit, cached_from=resolved["cached_from"])  # re-sent, pinned
        again = await worker.next("resolved")
        assert again["outcome"] == ok(9) and again["execution_id"] == resolved["execution_id"]
        await _no_execute(worker)
        state = await _child_state(service, parent["run_id"])
        assert state["state"] == "cached" and state["cached_from"] == computed["execution_id"]

        # Re-sent again (another reconnect): the step exists now, nothing new is made.
        worker.say(**submit, cached_from=resolved["cached_from"])
        assert (await worker.next("resolved"))["outcome"] == ok(9)
        assert len((await service.get_run(parent["run_id"]))["steps"]) == 2


def test_a_submit_resent_after_a_lost_commit_gets_the_same_answer(tmp_path: Path) -> None:
    run(lambda: resent_after_a_lost_commit(lambda: open_service(tmp_path)))


def test_a_pin_that_names_no_entry_for_the_key_is_ignored(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            worker = await _worker(service)
            first = await _parent(service, worker)
            worker.say(**_call(first, 1, 0, [3], cache=CACHED))
            computed = await _computed(worker, 9)
            parent = await _parent(service, worker)
            other: dict[str, Any] = _call(parent, 2, 0, [4], cache=CACHED)
            worker.say(**other, cached_from=computed["execution_id"])  # an entry of another key
            execute = await worker.next("execute")  # looked up as usual: a miss, so it runs
            assert execute["arguments"] == [4]

    run(scenario)
