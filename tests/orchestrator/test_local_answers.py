"""A child that a worker runs for an awaited call of its own answers that call on the worker, before
the server has recorded it. The server's side: ``execute`` names the call it answers; a submit
re-sent with the ``outcome`` its caller used makes (or finishes) the child with exactly that
outcome, never running it again; a result the caller used that the server had already ended
otherwise (``answered`` on a late ``complete``) cancels the caller."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from coflux.errors import BadRequest
from tests.support.service import (
    FLOW,
    TASK,
    FakeWorker,
    ok,
    open_service,
    run,
    settle,
    start_parent,
    submit_child,
)


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
            parent = await start_parent(service, worker)
            assert "call_index" not in parent  # a run's root answers no call
            worker.say(**submit_child(parent, 1, 3))
            execute = await worker.next("execute")
            assert execute["parent_execution_id"] == parent["execution_id"] and execute["call_index"] == 3

    run(scenario)


def test_a_child_the_server_lost_is_made_again_from_the_outcome_its_caller_used(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            worker = FakeWorker(service)
            worker.hello(concurrency=4)
            parent = await start_parent(service, worker)
            await settle(service)  # the parent's assignment is durable
            assert worker.session is not None
            session_id = worker.session.session_id
            # The server dies after sending the child's ``execute`` (sent ahead of the commit that
            # makes the step), before that commit lands.
            service.store.apply = lambda batch: None  # type: ignore[method-assign]
            submit = submit_child(parent, 1, 0)
            worker.say(**submit)
            execute = await worker.next("execute")
        async with open_service(tmp_path) as service:
            assert await _states(service, parent["run_id"]) == [["assigned"]]  # the step was lost
            worker = FakeWorker(service)
            worker.hello(concurrency=4, session_id=session_id, running=[parent["execution_id"]])
            worker.say(**_resent(submit, execute["execution_id"], "used"))
            resolved = await worker.next("resolved")
            assert resolved["outcome"] == ok("used")
            await settle(service)
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
            parent = await start_parent(service, worker)
            submit = submit_child(parent, 1, 0)
            worker.say(**submit)
            execute = await worker.next("execute")
            await settle(service)  # the step and its assignment are durable
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
            parent = await start_parent(service, worker)
            worker.say(**submit_child(parent, 7, 0))  # the parent waits: its slot is free
            execute = await worker.next("execute")
            answered = {"caller": parent["execution_id"], "request_id": 7}
            worker.say(
                type="complete", seq=1, execution_id=execute["execution_id"], outcome=ok(3), answered=answered
            )
            assert (await worker.next("ack"))["seqs"] == [1]
            await settle(service)
            assert not [m for m in worker.inbox if m["type"] == "resolved"]
            # The parent runs again: with one slot, a new run waits for it.
            await service.start_run("main", "m", "flow", [2])
            await settle(service)
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
            parent = await start_parent(service, worker)
            worker.say(**submit_child(parent, 1, 0))
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
            parent = await start_parent(service, worker)
            submit = submit_child(parent, 1, 0)
            failed = {**submit, "execution_id": "R1:2:1", "outcome": {"state": "failed", "error": {}}}
            with pytest.raises(BadRequest, match="only a succeeded outcome"):
                worker.say(**failed)
            with pytest.raises(BadRequest, match="needs call_index, await"):
                worker.say(**{**_resent(submit, "R1:2:1", 1), "await": False})
            await settle(service)
            assert await _states(service, parent["run_id"]) == [["assigned"]]  # nothing was made

    run(scenario)


def test_a_result_the_caller_used_from_an_attempt_a_rerun_replaced_cancels_the_caller(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            worker = FakeWorker(service)
            worker.hello(concurrency=4)
            parent = await start_parent(service, worker)
            worker.say(**submit_child(parent, 1, 0))
            first = await worker.next("execute")
            await settle(service)
            await service.rerun_step(first["execution_id"].rsplit(":", 1)[0], None)  # replaces attempt 1
            await worker.next("execute")
            # Attempt 1 succeeded on the worker before its abort arrived, and its caller has 5.
            answered = {"caller": parent["execution_id"], "request_id": 1}
            worker.say(
                type="complete", seq=1, execution_id=first["execution_id"], outcome=ok(5), answered=answered
            )
            aborted = [(await worker.next("abort"))["execution_id"] for _ in range(2)]
            assert parent["execution_id"] in aborted  # the step's history won't hold 5
            assert (await _states(service, parent["run_id"]))[0] == ["cancelled"]

    run(scenario)


def test_a_restored_child_dispatched_elsewhere_is_finished_with_the_outcome_its_caller_used(
    tmp_path: Path,
) -> None:
    """The child's step committed but not its dispatch to this worker, which ran it and answered
    the caller; after a restart the child goes to another worker. The caller's re-sent call
    settles it with the outcome the caller used; the other worker's result is then late."""

    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            a = FakeWorker(service)
            a.hello(concurrency=1)
            parent = await start_parent(service, a)
            await settle(service)
            await service.start_run("main", "m", "flow", [2])  # queued: A has no free slot
            a.say(**submit_child(parent, 1, 0))  # the parent waits: its slot goes to the queued run
            other = await a.next("execute")
            await settle(service)  # the child's step is durable, not yet dispatched
            assert a.session is not None
            session_id = a.session.session_id
            service.store.apply = lambda batch: None  # type: ignore[method-assign]  # commits lost from here
            a.complete(other["execution_id"], ok(0))
            child = await a.next("execute")
        async with open_service(tmp_path) as service:
            b = FakeWorker(service)
            b.hello(concurrency=1)
            again = await b.next("execute")
            assert again["execution_id"] == child["execution_id"]
            a = FakeWorker(service)
            running = [parent["execution_id"], other["execution_id"], child["execution_id"]]
            a.hello(concurrency=1, session_id=session_id, running=running)
            a.say(**_resent(submit_child(parent, 1, 0), child["execution_id"], 7))
            assert (await a.next("resolved"))["outcome"] == ok(7)
            assert (await b.next("abort"))["execution_id"] == child["execution_id"]  # stopped there
            b.complete(again["execution_id"], ok(99))  # late: dropped
            await b.next("ack")
            view = await service.get_run(parent["run_id"])
            assert [(e["state"], e["result"]) for e in view["steps"][1]["executions"]] == [("succeeded", 7)]

    run(scenario)


def test_a_welcome_precedes_what_the_declarations_of_its_hello_revoke(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            worker = FakeWorker(service)
            worker.hello(concurrency=4)
            parent = await start_parent(service, worker)
            worker.say(
                **submit_child(
                    parent, 1, 0, cache={"max_age": None, "params": None, "namespace": None, "version": None}
                )
            )
            execute = await worker.next("execute")
            worker.complete(execute["execution_id"], ok(1))
            await worker.next("resolved")
            second = await start_parent(service, worker)
            await settle(service)
            cached = {"max_age": None, "params": None, "namespace": None, "version": None}
            worker.say(**submit_child(second, 1, 0, cache=cached))
            assert "lease" in await worker.next("resolved")
            assert worker.session is not None
            worker.disconnect()
            worker.inbox.clear()
            # It comes back declaring the task with other parameters: its lease is revoked, after the welcome.
            worker.hello(
                concurrency=4,
                session_id=worker.session.session_id,
                running=[second["execution_id"]],
                targets=[FLOW, {**TASK, "parameters": [{"name": "y"}]}],
            )
            assert [m["type"] for m in worker.inbox][:2] == ["welcome", "uncache"]

    run(scenario)


def test_a_malformed_answered_still_records_the_result(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            worker = FakeWorker(service)
            worker.hello(concurrency=4)
            parent = await start_parent(service, worker)
            for answered in (
                {"caller": 3, "request_id": 1},
                {"caller": parent["execution_id"], "request_id": True},
            ):
                worker.say(
                    type="complete",
                    seq=1,
                    execution_id=parent["execution_id"],
                    outcome=ok(1),
                    answered=answered,
                )
                assert (await worker.next("ack"))["seqs"] == [1]  # recorded and acknowledged, not refused
            assert await _states(service, parent["run_id"]) == [["succeeded"]]

    run(scenario)


def test_a_lost_step_a_worker_still_holds_keeps_its_number_from_new_steps(tmp_path: Path) -> None:
    """The server dies after dispatching a child, before the commit that makes it; the worker
    ran it and holds its result. The call, re-sent after the restart, makes a new step: it must
    not take the lost step's number, or the worker would take its ``execute`` for a repeat."""

    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            worker = FakeWorker(service)
            worker.hello(concurrency=4)
            parent = await start_parent(service, worker)
            await settle(service)
            assert worker.session is not None
            session_id = worker.session.session_id
            service.store.apply = lambda batch: None  # type: ignore[method-assign]  # commits lost from here
            submit = submit_child(parent, 1, 0, timeout=60)  # (a timeout: not answered on the worker)
            worker.say(**submit)
            lost = await worker.next("execute")
        async with open_service(tmp_path) as service:
            worker = FakeWorker(service)
            worker.hello(
                concurrency=4, session_id=session_id, running=[parent["execution_id"], lost["execution_id"]]
            )
            worker.say(**submit)  # re-sent: the step is made again
            again = await worker.next("execute")
            assert again["execution_id"] != lost["execution_id"]
            assert again["call_index"] == 0 and again["parent_execution_id"] == parent["execution_id"]

    run(scenario)
