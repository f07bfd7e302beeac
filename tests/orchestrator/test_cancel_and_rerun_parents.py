"""Cancellations say what cancelled them, a run whose workflow was cancelled is ``cancelled``, and a
re-run with ``parents`` carries a fix up to the root of the run (scripted worker, real SQLite)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from coflux.orchestrator import ProjectService
from tests.support.service import FakeWorker, ok, open_service, run, start_parent, submit_child

FAILED = {"state": "failed", "error": {"type": "builtins.ValueError", "message": "bad", "traceback": "tb"}}


async def _acked(worker: FakeWorker, seq: int) -> None:
    while seq not in (await worker.next("ack"))["seqs"]:
        pass


async def _view(service: ProjectService, run_id: str) -> dict[str, Any]:
    return await service.get_run(run_id)


def _reasons(view: dict[str, Any]) -> list[list[str | None]]:
    return [[(e.get("error") or {}).get("message") for e in s["executions"]] for s in view["steps"]]


async def _parent_and_child(service: ProjectService, worker: FakeWorker, **options: Any) -> tuple[Any, Any]:
    parent = await start_parent(service, worker)
    worker.say(**submit_child(parent, 1, 0, **options))
    return parent, await worker.next("execute")


def test_a_cancelled_execution_says_what_cancelled_it(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            worker = FakeWorker(service)
            worker.hello(concurrency=4)
            # By the user: the caller waiting on it is told why.
            parent, child = await _parent_and_child(service, worker)
            await service.cancel_execution(child["execution_id"])
            resolved = await worker.next("resolved")
            assert resolved["outcome"]["state"] == "cancelled"
            assert resolved["outcome"]["error"]["message"] == "cancelled by the user"
            # Its caller let the cancellation out (what a worker reports then): the run is cancelled.
            reason = f"cancelled: it waited on {child['execution_id']}, which was cancelled"
            cancelled = {"type": "coflux.ExecutionCancelled", "message": reason, "traceback": "tb"}
            await _acked(
                worker, worker.complete(parent["execution_id"], {"state": "cancelled", "error": cancelled})
            )
            aborted = [m["execution_id"] for m in worker.inbox if m["type"] == "abort"]
            assert parent["execution_id"] not in aborted, "its worker ended it: nothing to abort there"
            view = await _view(service, parent["run_id"])
            assert view["status"] == "cancelled"
            assert view["error"] == {
                "type": "coflux.ExecutionCancelled",
                "message": reason,
                "traceback": "tb",
            }
            assert _reasons(view) == [[reason], ["cancelled by the user"]]

            # Through a parent: cancelled, or timed out.
            parent, child = await _parent_and_child(service, worker)
            await service.cancel_execution(parent["execution_id"])
            view = await _view(service, parent["run_id"])
            assert _reasons(view) == [
                ["cancelled by the user"],
                [f"cancelled: its parent {parent['execution_id']} was cancelled"],
            ]
            assert view["status"] == "cancelled" and view["error"]["message"] == "cancelled by the user"
            worker.inbox.clear()
            parent = await start_parent(service, worker)
            worker.say(**submit_child(parent, 1, 0, timeout=0.2))
            timed = await worker.next("execute")
            worker.say(**{**submit_child(timed, 2, 0), "target": "child"})
            await worker.next("execute")
            await worker.next("resolved")
            view = await _view(service, parent["run_id"])
            assert _reasons(view)[2] == [f"cancelled: its parent {timed['execution_id']} timed out"]

            # With its run, and replaced by a re-run.
            parent, child = await _parent_and_child(service, worker)
            await service.rerun_step(child["step_id"], None)
            view = await _view(service, parent["run_id"])
            assert _reasons(view)[1] == [f"cancelled: replaced by the re-run {child['step_id']}:2", None]
            assert await service.cancel_run(parent["run_id"]) == 1  # its children go with it
            view = await _view(service, parent["run_id"])
            assert _reasons(view)[0] == [f"cancelled: its run {parent['run_id']} was cancelled"]

    run(scenario)


async def _failed_run(service: ProjectService, worker: FakeWorker) -> tuple[Any, Any]:
    """A workflow whose awaited child failed, and so did it."""
    parent, child = await _parent_and_child(service, worker)
    worker.complete(child["execution_id"], FAILED)
    await worker.next("resolved")
    await _acked(worker, worker.complete(parent["execution_id"], FAILED))
    assert (await _view(service, parent["run_id"]))["status"] == "failed"
    return parent, child


def test_rerunning_a_fixed_step_with_parents_lets_the_run_succeed(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            worker = FakeWorker(service)
            worker.hello(concurrency=4)
            parent, child = await _failed_run(service, worker)
            rerun = await service.rerun_step(child["step_id"], None, parents=True)
            assert (await worker.next("execute"))["execution_id"] == rerun
            worker.complete(rerun, ok(10))  # fixed
            again = await worker.next("execute")  # then its parent is re-run, in the same workspace
            assert again["execution_id"] == f"{parent['step_id']}:2"
            # The parent's call of the fixed step with the same arguments gets the fixed result.
            worker.say(**submit_child(again, 1, 0))
            resolved = await worker.next("resolved")
            assert (resolved["execution_id"], resolved["outcome"]) == (rerun, ok(10))
            # A call with other arguments is not the fixed step's: it runs.
            worker.say(**submit_child(again, 2, 1))
            assert (await worker.next("execute"))["execution_id"].startswith(f"{parent['run_id']}:3:")

            await _acked(worker, worker.complete(again["execution_id"], ok(11)))
            view = await _view(service, parent["run_id"])
            assert (view["status"], view["result"]) == ("succeeded", 11)
            root, fixed, other = view["steps"]  # the fixed step was reused, not called anew
            assert (fixed["arguments"], other["arguments"]) == ([1], [2])
            assert [e["state"] for e in fixed["executions"]] == ["failed", "succeeded"]
            assert fixed["executions"][1]["rerun_parents"] is True
            assert root["executions"][1]["rerun_parents"] is True
            assert root["executions"][1]["fixed_step"] == child["step_id"]

    run(scenario)


def test_a_run_being_fixed_reads_running_and_its_long_poll_waits_for_the_root(tmp_path: Path) -> None:
    """``run.rerun(step, parents=True)`` then ``run.result()``: the result is the fixed run's,
    never the error of the run before the fix (the root is re-run only once the step succeeds)."""

    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            worker = FakeWorker(service)
            worker.hello(concurrency=4)
            parent, child = await _failed_run(service, worker)
            rerun = await service.rerun_step(child["step_id"], None, parents=True)
            view = await _view(service, parent["run_id"])
            assert (view["status"], view["error"], view["completed_at"]) == ("running", None, None)
            poll = asyncio.ensure_future(service.get_run(parent["run_id"], wait=60, with_steps=False))
            await worker.next("execute")
            worker.complete(rerun, ok(10))
            again = await worker.next("execute")  # the root's re-run
            assert not poll.done()
            worker.say(**submit_child(again, 1, 0))
            await worker.next("resolved")
            assert not poll.done()
            worker.complete(again["execution_id"], ok(11))
            answered = await poll
            assert (answered["status"], answered["result_value"]) == ("succeeded", 11)

            # A chain that stops (the fix failed too): the long poll answers the run failed.
            parent, child = await _failed_run(service, worker)
            rerun = await service.rerun_step(child["step_id"], None, parents=True)
            poll = asyncio.ensure_future(service.get_run(parent["run_id"], wait=60, with_steps=False))
            await worker.next("execute")
            assert not poll.done()
            worker.complete(rerun, FAILED)
            assert (await poll)["status"] == "failed"

    run(scenario)


def test_a_run_whose_spawned_run_is_being_fixed_reads_running_until_its_own_root_succeeds(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            worker = FakeWorker(service)
            worker.hello(concurrency=4)
            outer = await start_parent(service, worker)
            worker.say(**{**submit_child(outer, 1, 0), "target": "flow", "target_type": "workflow"})
            inner = await worker.next("execute")  # the spawned run's root
            assert inner["run_id"] != outer["run_id"]
            worker.say(**submit_child(inner, 2, 0))
            task = await worker.next("execute")
            worker.complete(task["execution_id"], FAILED)
            await worker.next("resolved")
            worker.complete(inner["execution_id"], FAILED)
            await worker.next("resolved")
            await _acked(worker, worker.complete(outer["execution_id"], FAILED))
            assert (await _view(service, outer["run_id"]))["status"] == "failed"

            rerun = await service.rerun_step(task["step_id"], None, parents=True)
            assert (await _view(service, outer["run_id"]))["status"] == "running"
            poll = asyncio.ensure_future(service.get_run(outer["run_id"], wait=60, with_steps=False))
            await worker.next("execute")
            worker.complete(rerun, ok(1))
            inner_again = await worker.next("execute")
            assert inner_again["step_id"] == inner["step_id"] and not poll.done()
            worker.say(**submit_child(inner_again, 2, 0))
            await worker.next("resolved")
            worker.complete(inner_again["execution_id"], ok(2))
            outer_again = await worker.next("execute")
            assert outer_again["step_id"] == outer["step_id"] and not poll.done()
            worker.complete(outer_again["execution_id"], ok(3))
            answered = await poll
            assert (answered["status"], answered["result_value"]) == ("succeeded", 3)

    run(scenario)


def test_a_chain_stops_at_a_failure_and_goes_on_through_retries(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            worker = FakeWorker(service)
            worker.hello(concurrency=4)
            parent, child = await _failed_run(service, worker)
            rerun = await service.rerun_step(child["step_id"], None, parents=True)
            await worker.next("execute")
            await _acked(worker, worker.complete(rerun, FAILED))  # not fixed yet: nothing more runs
            assert not [m for m in worker.inbox if m["type"] == "execute"]
            assert (await _view(service, parent["run_id"]))["status"] == "failed"

            parent, child = await _parent_and_child(service, worker, retries={"limit": 1})
            worker.complete(child["execution_id"], FAILED)
            retried = await worker.next("execute")
            worker.complete(retried["execution_id"], FAILED)
            await worker.next("resolved")
            worker.complete(parent["execution_id"], FAILED)
            rerun = await service.rerun_step(child["step_id"], None, parents=True)
            await worker.next("execute")
            worker.complete(rerun, FAILED)  # a retry of the re-run carries on the chain
            retry = await worker.next("execute")
            assert retry["step_id"] == child["step_id"]
            worker.complete(retry["execution_id"], ok(3))
            assert (await worker.next("execute"))["execution_id"] == f"{parent['step_id']}:2"

    run(scenario)


def test_a_chain_survives_a_restart(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            worker = FakeWorker(service)
            session = worker.hello(concurrency=4)
            parent, child = await _failed_run(service, worker)
            rerun = await service.rerun_step(child["step_id"], None, parents=True)
            await worker.next("execute")
        async with open_service(tmp_path) as service:
            worker = FakeWorker(service)
            worker.hello(concurrency=4, session_id=session.session_id, running=[rerun])
            await worker.next("welcome")
            worker.complete(rerun, ok(10))
            again = await worker.next("execute")
            assert again["execution_id"] == f"{parent['step_id']}:2"
            worker.say(**submit_child(again, 1, 0))
            assert (await worker.next("resolved"))["outcome"] == ok(10)

    run(scenario)
