"""A run that ended (its root failed) keeps running what it started: those steps' results can
serve a re-run through memo and cache. The run view says so, and cancelling the run stops them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support.service import FakeWorker, ok, open_service, run, settle, spawn_child, start_parent


def _failed(message: str) -> dict[str, Any]:
    return {"state": "failed", "error": {"type": "builtins.ValueError", "message": message, "traceback": ""}}


def test_steps_still_running_after_their_run_failed_are_marked_and_cancelled_with_the_run(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            worker = FakeWorker(service)
            worker.hello(concurrency=2)
            parent = await start_parent(service, worker)
            for request_id in (1, 2, 3):
                worker.say(**spawn_child(parent, request_id))
            running = await worker.next("execute")  # one child runs (one slot left), two wait
            worker.complete(parent["execution_id"], _failed("gave up"))
            await worker.next("ack")
            await settle(service)
            view = await service.get_run(parent["run_id"])
            assert view["status"] == "failed"
            assert view["still_running"] == 3
            live = [e for s in view["steps"][1:] for e in s["executions"]]
            assert all(e.get("after_run_ended") for e in live)
            assert "after_run_ended" not in view["steps"][0]["executions"][0]
            # They are not cancelled by the failure (the rule): one is still running now.
            assert running["execution_id"] in {e["execution_id"] for e in live}

            assert await service.cancel_run(parent["run_id"]) == 3
            assert (await worker.next("abort"))["execution_id"] == running["execution_id"]
            view = await service.get_run(parent["run_id"])
            assert view["status"] == "failed"  # the run's outcome stays what it was
            assert view["still_running"] == 0
            assert [s["executions"][0]["state"] for s in view["steps"][1:]] == ["cancelled"] * 3
            assert await service.cancel_run(parent["run_id"]) == 0  # nothing left: a no-op

    run(scenario)


def test_cancelling_a_running_run_cancels_it_and_its_spawned_runs(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            worker = FakeWorker(service)
            worker.hello(concurrency=4)
            parent = await start_parent(service, worker)
            spawn = {**spawn_child(parent), "target": "flow", "target_type": "workflow"}
            worker.say(**spawn)
            spawned = await worker.next("execute")
            assert spawned["run_id"] != parent["run_id"]
            assert await service.cancel_run(parent["run_id"]) == 1  # the root: the cascade does the rest
            aborted = {(await worker.next("abort"))["execution_id"] for _ in range(2)}
            assert aborted == {parent["execution_id"], spawned["execution_id"]}
            assert (await service.get_run(parent["run_id"]))["status"] == "cancelled"
            assert (await service.get_run(spawned["run_id"]))["status"] == "cancelled"

    run(scenario)


def test_a_run_that_is_still_running_marks_nothing(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            worker = FakeWorker(service)
            worker.hello(concurrency=2)
            parent = await start_parent(service, worker)
            worker.say(**spawn_child(parent))
            await worker.next("execute")
            view = await service.get_run(parent["run_id"])
            assert view["status"] == "running" and view["still_running"] == 0
            assert not any(e.get("after_run_ended") for s in view["steps"] for e in s["executions"])
            worker.complete(parent["execution_id"], ok(1))

    run(scenario)
