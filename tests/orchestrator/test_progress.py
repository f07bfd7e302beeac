"""A run that can't progress says why in its view (``blocked``): the workspace is paused, or no
connected worker serves a queued step's target (or provides the tags it requires)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support.service import FLOW, TASK, FakeWorker, ok, open_service, run, submit_child

NO_WORKER = {"reason": "no_worker", "message": "queued: no worker serves m:child in workspace main"}


def _child(view: dict[str, Any]) -> dict[str, Any]:
    execution: dict[str, Any] = view["steps"][1]["executions"][-1]
    return execution


def test_a_step_whose_target_no_connected_worker_serves_says_so_until_one_connects(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            flows = FakeWorker(service)
            flows.hello(targets=[FLOW])  # serves the workflow, not the task it calls
            run_id = await service.start_run("main", "m", "flow", [1])
            parent = await flows.next("execute")
            flows.say(**submit_child(parent, 1, 0, awaits=False))
            flows.say(**submit_child(parent, 2, 1, awaits=False))
            await flows.next("submitted")
            await flows.next("submitted")  # both steps are durable
            view = await service.get_run(run_id)
            assert [e["state"] for s in view["steps"][1:] for e in s["executions"]] == ["queued", "queued"]
            assert _child(view)["blocked"] == NO_WORKER
            assert view["blocked"] == [{**NO_WORKER, "steps": 2}]
            assert view["steps"][0]["executions"][0]["blocked"] is None  # running: nothing to explain
            summary = await service.get_run(run_id, with_steps=False)
            assert summary["blocked"] == []  # a summary reads the root step only

            tasks = FakeWorker(service)
            tasks.hello(targets=[TASK], concurrency=1)
            execute = await tasks.next("execute")
            view = await service.get_run(run_id)
            waiting = [
                s["executions"][0] for s in view["steps"][1:] if s["executions"][0]["state"] == "queued"
            ]
            assert len(waiting) == 1 and waiting[0]["blocked"] is None  # it waits for a free slot only
            assert view["blocked"] == []
            tasks.complete(execute["execution_id"], ok(1))
            await tasks.next("execute")

    run(scenario)


def test_a_disconnected_worker_serves_nothing(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            worker = FakeWorker(service)
            worker.hello(targets=[FLOW])
            await worker.next("welcome")
            worker.disconnect()  # its session is kept for the reconnect timeout, but nobody is there
            run_id = await service.start_run("main", "m", "flow", [1])
            view = await service.get_run(run_id)
            message = "queued: no worker serves m:flow in workspace main"
            assert view["steps"][0]["executions"][0]["blocked"] == {"reason": "no_worker", "message": message}
            assert view["blocked"] == [{"reason": "no_worker", "message": message, "steps": 1}]

    run(scenario)


def test_a_paused_workspace_is_the_reason_while_it_lasts(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            worker = FakeWorker(service)
            worker.hello()
            await worker.next("welcome")
            await service.pause_workspace("main")
            run_id = await service.start_run("main", "m", "flow", [1])
            paused = {"reason": "workspace_paused", "message": "queued: workspace main is paused"}
            view = await service.get_run(run_id)
            assert view["steps"][0]["executions"][0]["blocked"] == paused
            assert (await service.get_run(run_id, with_steps=False))["blocked"] == [{**paused, "steps": 1}]
            await service.resume_workspace("main")
            await worker.next("execute")
            assert (await service.get_run(run_id))["blocked"] == []

    run(scenario)


def test_a_step_requiring_tags_no_serving_worker_provides_names_them(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            worker = FakeWorker(service)
            worker.hello()
            run_id = await service.start_run("main", "m", "flow", [1])
            parent = await worker.next("execute")
            worker.say(**submit_child(parent, 1, 0, awaits=False, requires={"gpu": ["a100", "h100"]}))
            await worker.next("submitted")
            view = await service.get_run(run_id)
            assert _child(view)["blocked"] == {
                "reason": "no_worker_with_tags",
                "message": "queued: no worker serving m:child in workspace main provides gpu=a100|h100",
            }

    run(scenario)
