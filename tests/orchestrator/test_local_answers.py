"""A child that a worker runs for an awaited call of its own answers that call on the worker, before
the server has recorded it. The server's side: ``execute`` names the call it answers; a submit
re-sent with the ``outcome`` its caller used makes (or finishes) the child with exactly that
outcome, never running it again; a result the caller used that the server had already ended
otherwise (``answered`` on a late ``complete``) cancels the caller."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from coflux.errors import BadRequest
from tests.orchestrator.test_service import FakeWorker, _start_parent, _submit, ok, open_service, run


def _resent(submit: dict[str, Any], execution_id: str, value: Any) -> dict[str, Any]:
    return {**submit, "execution_id": execution_id, "outcome": ok(value)}


async def _states(service: Any, run_id: str) -> list[list[str]]:
    view = await service.get_run(run_id)
    return [[e["state"] for e in step["executions"]] for step in view["steps"]]


def test_execute_names_the_call_it_answers(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            worker = FakeWorker(service)
            worker.hello(concurrency=4)
            parent = await _start_parent(service, worker)
            assert "call_index" not in parent  # a run's root answers no call
            worker.say(**_submit(parent, 1, 3))
            execute = await worker.next("execute")
            assert execute["parent_execution_id"] == parent["execution_id"] and execute["call_index"] == 3

    run(scenario)


def test_a_child_the_server_lost_is_made_again_from_the_outcome_its_caller_used(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            worker = FakeWorker(service)
            worker.hello(concurrency=4)
            parent = await _start_parent(service, worker)
            await asyncio.sleep(0.05)  # the parent's assignment is durable
            assert worker.session is not None
            session_id = worker.session.session_id
            # The server dies after sending the child's ``execute`` (sent ahead of the commit that
            # makes the step), before that commit lands.
            service.store.apply = lambda batch: None  # type: ignore[method-assign]
            submit = _submit(parent, 1, 0)
            worker.say(**submit)
            execute = await worker.next("execute")
        async with open_service(tmp_path) as service:
            assert await _states(service, parent["run_id"]) == [["assigned"]]  # the step was lost
            worker = FakeWorker(service)
            worker.hello(concurrency=4, session_id=session_id, running=[parent["execution_id"]])
            worker.say(**_resent(submit, execute["execution_id"], "used"))
            resolved = await worker.next("resolved")
            assert resolved["outcome"] == ok("used")
            await asyncio.sleep(0.05)
            assert not [m for m in worker.inbox if m["type"] == "execute"]  # not run again
            view = await service.get_run(parent["run_id"])
            [execution] = view["steps"][1]["executions"]
            assert execution["state"] == "succeeded" and execution["result"] == "used"
            # The lost complete, re-sent: acknowledged, nothing changes.
            seq = worker.complete(execute["execution_id"], ok("used"))
            assert (await worker.next("ack"))["seqs"] == [seq]
            worker.say(**_resent(submit, execute["execution_id"], "used"))  # another reconnect
            assert (await worker.next("resolved"))["outcome"] == ok("used")
            assert await _states(service, parent["run_id"]) == [["assigned"], ["succeeded"]]

    run(scenario)


def test_a_live_child_is_finished_by_the_outcome_its_caller_used(tmp_path: Path) -> None:
    """The step survived but the child's ``complete`` didn't arrive first: the re-sent call
    settles the child as its result would."""

    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            worker = FakeWorker(service)
            worker.hello(concurrency=4)
            parent = await _start_parent(service, worker)
            submit = _submit(parent, 1, 0)
            worker.say(**submit)
            execute = await worker.next("execute")
            await asyncio.sleep(0.05)  # the step and its assignment are durable
            worker.say(**_resent(submit, execute["execution_id"], 42))
            assert (await worker.next("resolved"))["outcome"] == ok(42)
            worker.say(
                type="complete",
                seq=1,
                execution_id=execute["execution_id"],
                outcome=ok(42),
                answered={"caller": parent["execution_id"], "request_id": 1},
            )
            await worker.next("ack")
            assert await _states(service, parent["run_id"]) == [["assigned"], ["succeeded"]]
            assert not [m for m in worker.inbox if m["type"] == "abort"]

    run(scenario)


def test_a_result_the_worker_gave_its_caller_settles_the_call_without_resolved(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            worker = FakeWorker(service)
            worker.hello(concurrency=1)
            parent = await _start_parent(service, worker)
            worker.say(**_submit(parent, 7, 0))  # the parent waits: its slot is free
            execute = await worker.next("execute")
            answered = {"caller": parent["execution_id"], "request_id": 7}
            worker.say(
                type="complete", seq=1, execution_id=execute["execution_id"], outcome=ok(3), answered=answered
            )
            assert (await worker.next("ack"))["seqs"] == [1]
            await asyncio.sleep(0.05)
            assert not [m for m in worker.inbox if m["type"] == "resolved"]
            # The parent runs again: with one slot, a new run waits for it.
            await service.start_run("main", "m", "flow", [2])
            await asyncio.sleep(0.05)
            assert not [m for m in worker.inbox if m["type"] == "execute"]
            worker.complete(parent["execution_id"], ok(3))
            assert (await worker.next("execute"))["arguments"] == [2]
            assert await _states(service, parent["run_id"]) == [["succeeded"], ["succeeded"]]

    run(scenario)


def test_a_result_the_caller_used_after_the_child_was_cancelled_cancels_the_caller(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            worker = FakeWorker(service)
            worker.hello(concurrency=4)
            parent = await _start_parent(service, worker)
            worker.say(**_submit(parent, 1, 0))
            execute = await worker.next("execute")
            await service.cancel_execution(execute["execution_id"])
            assert (await worker.next("abort"))["execution_id"] == execute["execution_id"]
            # Meanwhile the child succeeded on the worker, which gave the value to its caller.
            worker.inbox.clear()
            worker.say(
                type="complete",
                seq=1,
                execution_id=execute["execution_id"],
                outcome=ok(5),
                answered={"caller": parent["execution_id"], "request_id": 1},
            )
            assert (await worker.next("abort"))["execution_id"] == parent["execution_id"]
            assert await _states(service, parent["run_id"]) == [["cancelled"], ["cancelled"]]

    run(scenario)


def test_a_carried_outcome_must_be_a_success_of_an_awaited_call(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            worker = FakeWorker(service)
            worker.hello(concurrency=4)
            parent = await _start_parent(service, worker)
            submit = _submit(parent, 1, 0)
            failed = {**submit, "execution_id": "R1:2:1", "outcome": {"state": "failed", "error": {}}}
            with pytest.raises(BadRequest, match="only a succeeded outcome"):
                worker.say(**failed)
            with pytest.raises(BadRequest, match="needs call_index, await"):
                worker.say(**{**_resent(submit, "R1:2:1", 1), "await": False})
            await asyncio.sleep(0.05)
            assert await _states(service, parent["run_id"]) == [["assigned"]]  # nothing was made

    run(scenario)
