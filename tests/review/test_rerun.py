"""Re-running a step (service.py:rerun_step) in a descendant workspace, and its bookkeeping."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from coflux.errors import NotFound
from coflux.orchestrator import ProjectService
from tests.support.service import FLOW, TASK, FakeWorker, ok, open_service, run, start_parent, submit_child


def _dev_worker(service: ProjectService) -> FakeWorker:
    worker = FakeWorker(service)
    hello = {"type": "hello", "protocol": 1, "workspace": "dev", "concurrency": 4, "targets": [FLOW, TASK]}
    worker.session = service.connect(hello, worker.send, worker.close)
    return worker


async def _child_rerun_in_dev(
    service: ProjectService,
) -> tuple[FakeWorker, FakeWorker, dict[str, Any], dict[str, Any], dict[str, Any]]:
    main = FakeWorker(service)
    main.hello(concurrency=4)
    await service.create_workspace("dev", "main")
    dev = _dev_worker(service)
    parent = await start_parent(service, main)
    main.say(**submit_child(parent, 1, 0))  # awaited
    child = await main.next("execute")
    await service.rerun_step(child["step_id"], "dev")
    dev_child = await dev.next("execute")
    return main, dev, parent, child, dev_child


def test_a_parent_in_the_base_sees_the_result_of_a_rerun_in_a_child_workspace(tmp_path: Path) -> None:
    """DESIGN.md section 2: 'a parent never sees a child's results' / 'viewed from the base, nothing
    changed'. Engine.resolve_step resolves the step with whichever execution finishes first,
    whatever its workspace, so the main-workspace parent receives the dev re-run's value."""

    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            main, dev, _, child, dev_child = await _child_rerun_in_dev(service)
            dev.complete(dev_child["execution_id"], ok("from dev"))
            await dev.next("ack")
            main.complete(child["execution_id"], ok("from main"))
            await main.next("ack")
            resolved = await main.next("resolved")
            assert resolved["outcome"] == ok("from main")

    run(scenario)


def test_a_step_with_two_live_executions_is_resolved_twice(tmp_path: Path) -> None:
    """Each execution of a step must be counted once: the run stays known (engine.runs) while its
    root execution is still running, so that a later re-run reuses the same Run object and its
    step numbering."""

    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            main, dev, parent, child, dev_child = await _child_rerun_in_dev(service)
            run_state = service.engine.runs[parent["run_id"]]
            dev.complete(dev_child["execution_id"], ok("from dev"))
            await dev.next("ack")
            main.complete(child["execution_id"], ok("from main"))
            await main.next("ack")
            assert parent["execution_id"] in service.engine.executions  # the root is still running
            assert run_state.live == 1, f"live executions: {run_state.live}"  # only the root
            assert parent["run_id"] in service.engine.runs

    run(scenario)


def test_restart_then_retry_reuses_an_execution_id(tmp_path: Path) -> None:
    """service.py:81 restores step.attempts from *unfinished* executions only. If a later attempt
    (a re-run in dev) already finished, the next retry of the restored attempt gets that attempt's
    id -> duplicate executions PK -> the batch fails. The worker re-sends its unacknowledged
    complete after every reconnect, so the project is stuck failing and reloading."""

    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            main = FakeWorker(service)
            session = main.hello(concurrency=4)
            await service.create_workspace("dev", "main")
            dev = _dev_worker(service)
            parent = await start_parent(service, main)
            main.say(**submit_child(parent, 1, 0, retries={"limit": 2}))
            child = await main.next("execute")
            await service.rerun_step(child["step_id"], "dev")
            dev_child = await dev.next("execute")
            dev.complete(dev_child["execution_id"], ok("from dev"))
            await dev.next("ack")
        async with open_service(tmp_path) as service:
            main = FakeWorker(service)
            main.hello(session_id=session.session_id, running=[parent["execution_id"], child["execution_id"]])
            failure = {"state": "failed", "error": {"type": "builtins.RuntimeError", "message": "x"}}
            main.complete(child["execution_id"], failure)  # retryable: a new attempt
            await asyncio.sleep(0.1)
            assert main.closed is None, f"storage failure: {main.closed}"

    run(scenario)


def test_a_refused_rerun_leaks_a_run(tmp_path: Path) -> None:
    """service.py:_revive puts a Run into engine.runs before rerun_step validates the workspace;
    when that raises, nothing removes it (live_steps 0, never popped)."""

    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            worker = FakeWorker(service)
            worker.hello()
            parent = await start_parent(service, worker)
            worker.complete(parent["execution_id"], ok(1))
            await worker.next("ack")
            assert parent["run_id"] not in service.engine.runs
            with pytest.raises(NotFound):
                await service.rerun_step(parent["step_id"], "nowhere")
            assert parent["run_id"] not in service.engine.runs

    run(scenario)
