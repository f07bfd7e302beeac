"""Workspace administration: rename, rebase, pause, resume and archive, through the project service;
and a step re-run in a child workspace, which its run in the base never sees."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from coflux.errors import BadRequest, Conflict, NotFound
from coflux.models import SessionId
from coflux.orchestrator import ProjectService, Session, Timing, dispatch
from coflux.orchestrator.clock import FakeClock
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

RECONNECT = Timing().reconnect_timeout


def _events(service: ProjectService) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    service.subscribe(seen.append)
    return seen


async def _quiet(worker: FakeWorker, kind: str) -> None:
    """Nothing of ``kind`` arrives once everything so far is committed."""
    await settle(worker.service)
    assert not [m for m in worker.inbox if m["type"] == kind], worker.inbox


async def _until_gone(service: ProjectService, clock: FakeClock) -> None:
    """Past the reconnect timeout: every disconnected session is gone."""
    clock.advance(RECONNECT + 1)
    await settle(service)
    assert not service.engine.sessions, "sessions outlived the reconnect timeout"


def _state(listed: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(w for w in listed if w["name"] == name)


def test_plan_skips_workspaces_that_are_not_active(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = FakeClock()
        async with open_service(tmp_path, clock=clock) as service:
            worker = FakeWorker(service)
            worker.hello()  # registers the workflow, then goes away for good
            worker.disconnect()
            await _until_gone(service, clock)
            await service.start_run("main", "m", "flow", [1])
            workspace_id = service.workspaces.get("main").id
            assert service.engine.queue[workspace_id]  # no session: it waits
            session = Session(
                SessionId("s"), workspace_id, 1, {}, {("m", "flow")}, print, None, None, clock.now()
            )
            assert len(dispatch.plan(service.engine.queue, [session])) == 1
            active = service.workspaces.dispatchable
            assert len(dispatch.plan(service.engine.queue, [session], active=active)) == 1
            await service.pause_workspace("main")
            assert dispatch.plan(service.engine.queue, [session], active=active) == []
            await service.resume_workspace("main")
            assert len(dispatch.plan(service.engine.queue, [session], active=active)) == 1

    run(scenario)


def test_a_paused_workspace_dispatches_nothing_until_resumed(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            events = _events(service)
            worker = FakeWorker(service)
            worker.hello()
            await worker.next("welcome")
            first = await service.start_run("main", "m", "flow", [1])
            running = await worker.next("execute")
            paused = await service.pause_workspace("main")
            assert paused == {"name": "main", "base": None, "state": "paused"}
            assert {"type": "workspace", "name": "main", "base": None, "state": "paused"} in events
            second = await service.start_run("main", "m", "flow", [2])  # accepted, but it waits
            await _quiet(worker, "execute")
            worker.complete(running["execution_id"], ok(1))  # what was running finishes normally
            await worker.next("ack")
            assert (await service.get_run(first))["status"] == "succeeded"
            waiting = await service.get_run(second)
            assert waiting["steps"][0]["executions"][0]["state"] == "queued"

            assert (await service.resume_workspace("main"))["state"] == "active"
            execute = await worker.next("execute")
            assert execute["run_id"] == second
            worker.complete(execute["execution_id"], ok(2))
            await worker.next("ack")
            assert (await service.get_run(second))["status"] == "succeeded"
            assert {"type": "workspace", "name": "main", "base": None, "state": "active"} in events

    run(scenario)


def test_pause_survives_a_restart(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            await service.create_workspace("dev", None)
            await service.pause_workspace("dev")
        async with open_service(tmp_path) as service:
            assert _state(await service.list_workspaces(), "dev")["state"] == "paused"
            assert not service.workspaces.dispatchable(service.workspaces.get("dev").id)

    run(scenario)


def test_rebase_refuses_cycles(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            await service.create_workspace("a", None)
            await service.create_workspace("a/b", "a")
            await service.create_workspace("a/b/c", "a/b")
            for base in ("a", "a/b", "a/b/c"):  # itself, or one of its descendants
                with pytest.raises(BadRequest):
                    await service.rebase_workspace("a", base)
            with pytest.raises(BadRequest):
                await service.rebase_workspace("a/b", "a/b/c")
            with pytest.raises(NotFound):
                await service.rebase_workspace("a", "nowhere")
            with pytest.raises(NotFound):
                await service.rebase_workspace("nowhere", "a")
            assert await service.rebase_workspace("a/b/c", "a") == {
                "name": "a/b/c",
                "base": "a",
                "state": "active",
            }
            assert (await service.rebase_workspace("a/b", None))["base"] is None
            assert (await service.rebase_workspace("a", "a/b"))["base"] == "a/b"  # no longer a cycle
        async with open_service(tmp_path) as service:
            listed = await service.list_workspaces()
            assert [(_state(listed, n)["base"]) for n in ("a", "a/b", "a/b/c")] == ["a/b", None, "a"]

    run(scenario)


def test_rename_keeps_runs_readable_under_the_new_name(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = FakeClock()
        async with open_service(tmp_path, clock=clock) as service:
            events = _events(service)
            worker = FakeWorker(service)
            worker.hello()
            await worker.next("welcome")
            run_id = await service.start_run("main", "m", "flow", [3])
            worker.complete((await worker.next("execute"))["execution_id"], ok(9))
            await worker.next("ack")
            with pytest.raises(Conflict):  # its worker would come back under the old name
                await service.rename_workspace("main", "prod")
            worker.disconnect()
            await _until_gone(service, clock)
            await service.create_workspace("taken", None)
            with pytest.raises(Conflict):
                await service.rename_workspace("main", "taken")
            with pytest.raises(BadRequest):
                await service.rename_workspace("main", "../bad")
            with pytest.raises(NotFound):
                await service.rename_workspace("nowhere", "prod")
            renamed = await service.rename_workspace("main", "prod")
            assert renamed == {"name": "prod", "base": None, "state": "active"}
            assert events[-1] == {**renamed, "type": "workspace", "renamed_from": "main"}
            view = await service.get_run(run_id, "prod")
            assert view["workspace"] == "prod" and view["result"] == 9
            assert view["steps"][0]["executions"][0]["workspace"] == "prod"
            with pytest.raises(NotFound):
                await service.get_run(run_id, "main")
        async with open_service(tmp_path) as service:
            assert (await service.get_run(run_id))["workspace"] == "prod"
            assert "main" not in [w["name"] for w in await service.list_workspaces()]

    run(scenario)


def test_archive_refuses_new_runs_and_keeps_old_ones_readable(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            worker = FakeWorker(service)
            worker.hello()
            await worker.next("welcome")
            run_id = await service.start_run("main", "m", "flow", [4])
            execute = await worker.next("execute")
            with pytest.raises(Conflict):  # something of it is in flight
                await service.archive_workspace("main")
            worker.complete(execute["execution_id"], ok(16))
            await worker.next("ack")
            await service.create_workspace("main/child", "main")
            with pytest.raises(Conflict):  # it would leave a workspace based on an archived one
                await service.archive_workspace("main")
            await service.rebase_workspace("main/child", None)
            archived = await service.archive_workspace("main")
            assert archived["state"] == "archived"
            assert (await service.archive_workspace("main")) == archived  # once is enough
            with pytest.raises(Conflict):
                await service.start_run("main", "m", "flow", [5])
            with pytest.raises(Conflict):
                await service.rerun_step(f"{run_id}:1", "main")
            for change in (service.pause_workspace, service.resume_workspace):
                with pytest.raises(Conflict):
                    await change("main")
            with pytest.raises(Conflict):
                await service.create_workspace("other", "main")
            with pytest.raises(Conflict):
                await service.rebase_workspace("main/child", "main")
            assert (await service.get_run(run_id))["result"] == 16
            assert [w["name"] for w in await service.list_workflows("main")] == ["flow"]
        async with open_service(tmp_path) as service:
            assert _state(await service.list_workspaces(), "main")["state"] == "archived"
            with pytest.raises(Conflict):
                await service.start_run("main", "m", "flow", [5])

    run(scenario)


# -- a step re-run in a child workspace -----------------------------------------------------------


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


def test_a_parent_in_the_base_gets_its_own_workspaces_result_not_a_rerun_in_a_child_workspace(
    tmp_path: Path,
) -> None:
    """Viewed from the base, nothing a child workspace does changes anything: a re-run in ``dev``
    that finishes first does not resolve the ``main`` parent's call."""

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


def test_each_live_execution_of_a_step_is_counted_once_in_its_run(tmp_path: Path) -> None:
    """The run stays known while its root execution runs, so that a later re-run reuses the same
    run and its step numbering; each execution of a step counts once towards it."""

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


def test_a_retry_after_a_restart_gets_an_attempt_number_past_a_finished_rerun(tmp_path: Path) -> None:
    """Attempts are restored from every execution of a step, finished ones too: a retry of the
    restored attempt doesn't take the number (the execution id) of a re-run that already finished,
    which would fail the batch and disconnect the project over and over."""

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
            retry = await main.next("execute")
            assert retry["step_id"] == child["step_id"]
            assert retry["execution_id"] not in {child["execution_id"], dev_child["execution_id"]}
            await service.writer.durable()
            assert main.closed is None, f"storage failure: {main.closed}"

    run(scenario)


def test_a_refused_rerun_leaves_no_run_behind(tmp_path: Path) -> None:
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
