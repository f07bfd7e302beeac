"""Values a worker sends are stored unchecked, then break the read side (views.py)."""

from __future__ import annotations

from pathlib import Path

from coflux.errors import BadRequest
from tests.support.service import FakeWorker, ok, open_service, run, start_parent, submit_child


def test_malformed_tagged_argument_from_a_worker_makes_the_run_unviewable(tmp_path: Path) -> None:
    """start_run checks arguments with serialization.describe, sessions.py:_on_submit does not.
    views._step describes every argument, so GET .../runs/R answers 400 for that run forever."""

    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            worker = FakeWorker(service)
            worker.hello(concurrency=4)
            parent = await start_parent(service, worker)
            message = submit_child(parent, 1, 0, awaits=False)
            message["arguments"] = [{"$c": "no-such-tag"}]
            try:
                worker.say(**message)
            except BadRequest:
                return  # refusing the submit is a fix
            await worker.next("submitted")
            view = await service.get_run(parent["run_id"])
            assert len(view["steps"]) == 2

    run(scenario)


def test_malformed_tagged_result_from_a_worker_makes_the_run_unviewable(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            worker = FakeWorker(service)
            worker.hello()
            parent = await start_parent(service, worker)
            try:
                worker.complete(parent["execution_id"], ok({"$c": "bytes", "b64": "%%%"}))
            except BadRequest:
                return  # refusing the outcome is a fix
            await worker.next("ack")
            view = await service.get_run(parent["run_id"])
            assert view["status"] == "succeeded"

    run(scenario)
