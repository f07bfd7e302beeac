"""After a server restart, workers come back holding executions whose dispatch the server lost with
its last batch (the step committed, its assignment not): the restored server has them queued. Every
ordering of ``hello``, re-sent results and restored state must keep the result the worker re-sends,
run nothing a second time behind a worker's back, and abandon nothing a worker still holds. A
restored execution keeps its timeout. A failed commit reloads the project in place (a restart
without a new process): frames in flight on the sockets it closed change nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from coflux.errors import ProtocolError, StorageError
from coflux.orchestrator import ProjectService, Timing
from coflux.orchestrator.clock import FakeClock
from coflux.storage import Batch
from tests.support.service import (
    FakeWorker,
    ok,
    open_service,
    run,
    settle,
    spawn_child,
    start_parent,
    submit_child,
)


async def _dispatch_lost(tmp_path: Path) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """A worker (one slot) runs a parent, which submits a child: the child's step commits, queued.
    From then on commits are lost; the parent waits on the child, so the child is dispatched to
    the same worker. Returns (session id, the parent's execute, the child's execute)."""
    async with open_service(tmp_path) as service:
        worker = FakeWorker(service)
        session = worker.hello(concurrency=1)
        parent = await start_parent(service, worker)
        worker.say(**spawn_child(parent))
        child_id = (await worker.next("submitted"))["execution_id"]
        await service.writer.durable()  # the parent's assignment and the child's step
        service.store.apply = lambda batch: None  # type: ignore[method-assign]  # commits lost from here
        worker.say(type="wait", request_id=2, execution_id=child_id, from_execution_id=parent["execution_id"])
        child = await worker.next("execute")
        assert child["execution_id"] == child_id
        return session.session_id, parent, child


async def _states(service: ProjectService, run_id: str) -> list[list[tuple[str, Any]]]:
    view = await service.get_run(run_id)
    return [[(e["state"], e.get("result")) for e in step["executions"]] for step in view["steps"]]


def _executes(worker: FakeWorker) -> list[str]:
    return [m["execution_id"] for m in worker.inbox if m["type"] == "execute"]


def test_a_result_resent_with_the_hello_for_an_execution_restored_as_queued_is_recorded(
    tmp_path: Path,
) -> None:
    """The issue's shape: the hello lists the child (its result unacknowledged), and the same frame
    re-sends its ``complete``. Before: the result was dropped, the child dispatched again to the
    worker (which ignored it: it held the id) and abandoned a few seconds later."""

    async def scenario() -> None:
        session_id, parent, child = await _dispatch_lost(tmp_path)
        async with open_service(tmp_path) as service:
            worker = FakeWorker(service)
            worker.hello(
                concurrency=1, session_id=session_id, running=[parent["execution_id"], child["execution_id"]]
            )
            seq = worker.complete(child["execution_id"], ok(42))  # same frame: no await in between
            assert (await worker.next("ack"))["seqs"] == [seq]
            assert (await worker.next("outcome"))["outcome"] == ok(42)  # the parent is told
            assert child["execution_id"] not in _executes(worker)
            assert not [m for m in worker.inbox if m["type"] == "abort"]
            assert (await _states(service, parent["run_id"]))[1] == [("succeeded", 42)]

    run(scenario)


def test_an_execution_restored_as_queued_stays_with_the_worker_that_still_runs_it(tmp_path: Path) -> None:
    """The hello lists the child as running; its result comes frames later. Meanwhile it is
    dispatched to nobody (not even a second worker with free slots), and not abandoned by the
    worker's heartbeats, which list it."""

    async def scenario() -> None:
        session_id, parent, child = await _dispatch_lost(tmp_path)
        async with open_service(tmp_path) as service:
            worker = FakeWorker(service)
            worker.hello(
                concurrency=1, session_id=session_id, running=[parent["execution_id"], child["execution_id"]]
            )
            other = FakeWorker(service)
            other.hello(concurrency=4)
            await settle(service)
            worker.say(type="heartbeat", running=[parent["execution_id"], child["execution_id"]])
            await settle(service)
            assert _executes(worker) == [] and _executes(other) == []
            worker.complete(child["execution_id"], ok(7))
            await worker.next("ack")
            assert (await _states(service, parent["run_id"]))[1] == [("succeeded", 7)]

    run(scenario)


def test_a_result_for_an_execution_given_to_another_worker_meanwhile_is_taken_and_the_other_stopped(
    tmp_path: Path,
) -> None:
    """Another worker connected first after the restart and was given the child. The worker that
    ran it comes back with its result: that result is recorded (the first one wins), the other
    worker is told to abort, and its own result, later, is dropped."""

    async def scenario() -> None:
        session_id, parent, child = await _dispatch_lost(tmp_path)
        async with open_service(tmp_path) as service:
            other = FakeWorker(service)
            other.hello(concurrency=4)
            assert (await other.next("execute"))["execution_id"] == child["execution_id"]
            worker = FakeWorker(service)
            worker.hello(
                concurrency=1, session_id=session_id, running=[parent["execution_id"], child["execution_id"]]
            )
            worker.complete(child["execution_id"], ok(42))
            await worker.next("ack")
            assert (await other.next("abort"))["execution_id"] == child["execution_id"]
            other.complete(child["execution_id"], ok(99))  # late: acknowledged, dropped
            await other.next("ack")
            assert (await _states(service, parent["run_id"]))[1] == [("succeeded", 42)]

    run(scenario)


def test_a_worker_still_running_an_execution_given_to_another_is_told_to_abort_it(tmp_path: Path) -> None:
    async def scenario() -> None:
        session_id, parent, child = await _dispatch_lost(tmp_path)
        async with open_service(tmp_path) as service:
            other = FakeWorker(service)
            other.hello(concurrency=4)
            await other.next("execute")
            worker = FakeWorker(service)
            worker.hello(
                concurrency=1, session_id=session_id, running=[parent["execution_id"], child["execution_id"]]
            )
            assert (await worker.next("abort"))["execution_id"] == child["execution_id"]
            other.complete(child["execution_id"], ok(5))
            await other.next("ack")
            assert (await _states(service, parent["run_id"]))[1] == [("succeeded", 5)]

    run(scenario)


def test_a_parent_restored_as_queued_takes_the_calls_its_worker_resends(tmp_path: Path) -> None:
    """The root's dispatch was lost: the worker runs it, the restored server has it queued. The
    worker's calls, re-sent after the hello, must be taken (the parent is its again), not refused
    as coming from an execution that isn't running there."""

    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            registering = FakeWorker(service)
            registering.hello(concurrency=1)
            registering.disconnect()  # the workflow stays registered; nobody can run it now
            await service.start_run("main", "m", "flow", [1])  # committed, queued
            service.store.apply = lambda batch: None  # type: ignore[method-assign]  # commits lost from here
            worker = FakeWorker(service)
            session = worker.hello(concurrency=1)
            parent = await worker.next("execute")  # its dispatch is lost
        async with open_service(tmp_path) as service:
            worker = FakeWorker(service)
            worker.hello(concurrency=1, session_id=session.session_id, running=[parent["execution_id"]])
            worker.say(**spawn_child(parent))  # re-sent after the welcome
            submitted = await worker.next("submitted")
            assert submitted["execution_id"] == f"{parent['run_id']}:2:1"
            assert parent["execution_id"] not in _executes(worker)
            worker.complete(parent["execution_id"], ok(1))
            await worker.next("ack")
            assert (await _states(service, parent["run_id"]))[0] == [("succeeded", 1)]

    run(scenario)


def test_a_worker_back_first_takes_an_execution_from_a_worker_that_is_gone(tmp_path: Path) -> None:
    """Two restarts: after the first, another worker was given the child (committed); after the
    second, that worker is only a session restored from storage when the one that ran it first
    comes back with its result. The result is taken; the other, back later, is told to abort."""

    async def scenario() -> None:
        session_id, parent, child = await _dispatch_lost(tmp_path)
        async with open_service(tmp_path) as service:
            other = FakeWorker(service)
            other_session = other.hello(concurrency=4)
            await other.next("execute")
            await service.writer.durable()  # its assignment
        async with open_service(tmp_path) as service:
            worker = FakeWorker(service)
            worker.hello(
                concurrency=1, session_id=session_id, running=[parent["execution_id"], child["execution_id"]]
            )
            worker.complete(child["execution_id"], ok(42))
            await worker.next("ack")
            other = FakeWorker(service)
            other.hello(concurrency=4, session_id=other_session.session_id, running=[child["execution_id"]])
            assert (await other.next("abort"))["execution_id"] == child["execution_id"]
            assert (await _states(service, parent["run_id"]))[1] == [("succeeded", 42)]

    run(scenario)


def test_a_restored_execution_keeps_its_timeout(tmp_path: Path) -> None:
    """An execution restored after a restart is timed from its assignment as before: a hung step
    still times out."""

    async def scenario() -> None:
        clock = FakeClock()
        async with open_service(tmp_path, clock=clock) as service:
            worker = FakeWorker(service)
            session = worker.hello(concurrency=4)
            parent = await start_parent(service, worker)
            worker.say(**submit_child(parent, 1, 0, timeout=5))
            child = await worker.next("execute")
        clock.advance(3)  # the server was down meanwhile
        async with open_service(tmp_path, clock=clock) as service:
            worker = FakeWorker(service)
            worker.hello(
                session_id=session.session_id, running=[parent["execution_id"], child["execution_id"]]
            )
            clock.advance(1.9)
            await settle(service)
            assert child["execution_id"] in service.engine.executions
            clock.advance(0.1)  # 5 s after its assignment
            await settle(service)
            view = await service.get_run(parent["run_id"])
            assert view["steps"][1]["executions"][0]["state"] == "timed_out"

    run(scenario)


# -- a reload in place after a failed commit -------------------------------------------------------


def _fail_a_commit(service: ProjectService) -> None:
    """The next commit fails as the database would (values it can't hold are refused at the door,
    see test_bad_input.py), then storage works again."""
    store = service.store
    apply = store.apply

    def fail_once(batch: Batch) -> None:
        store.apply = apply  # type: ignore[method-assign]
        raise StorageError("writing a batch failed: disk I/O error")

    store.apply = fail_once  # type: ignore[method-assign]
    trigger = FakeWorker(service)  # registers a new workflow: something to commit
    trigger.hello(targets=[{"module": "m", "name": "poison", "type": "workflow"}])


def test_a_frame_on_a_connection_the_reload_closed_is_refused_and_the_resent_result_recorded_once(
    tmp_path: Path,
) -> None:
    """A failed commit reloads the project in place and closes its sockets, but a frame already in
    flight on a closed socket may still arrive: it is refused (its session is stale) and changes
    nothing, so the result the worker re-sends when it is back is recorded once, with no second
    storage failure."""

    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            worker = FakeWorker(service)
            session = worker.hello(concurrency=4)
            parent = await start_parent(service, worker)
            worker.say(**submit_child(parent, 1, 0))
            child = await worker.next("execute")
            _fail_a_commit(service)
            with pytest.raises(StorageError):
                await service.writer.durable()
            assert worker.closed is not None  # the reload closed the socket...
            # ...but a frame was already in flight: it is refused, its session is stale
            with pytest.raises(ProtocolError):
                worker.complete(child["execution_id"], ok(5))
            await settle(service)

            back = FakeWorker(service)
            back.hello(session_id=session.session_id, running=[parent["execution_id"], child["execution_id"]])
            back.seq = 1
            back.complete(child["execution_id"], ok(5))  # the worker re-sends what was not acked
            await settle(service)
            assert back.closed is None, f"a second storage failure: {back.closed}"
            ghost = service.engine.sessions[session.session_id]
            assert child["execution_id"] not in ghost.executions

    run(scenario)


def test_a_reload_after_a_failed_commit_keeps_one_session_checker(tmp_path: Path) -> None:
    """The reload starts the project again: the session checker it had is replaced, not joined
    by a second one that would run on against a closed service."""

    async def scenario() -> None:
        clock = FakeClock()
        async with open_service(tmp_path, Timing(heartbeat_interval=0.1), clock=clock) as service:
            assert clock.pending == 1  # the session check
            _fail_a_commit(service)
            with pytest.raises(StorageError):
                await service.writer.durable()
            await service.writer.durable()  # the reloaded service has started
            assert clock.pending == 1, f"{clock.pending} session checks for one service"
        assert clock.pending == 0

    run(scenario)
