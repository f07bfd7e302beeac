"""The engine's invariants hold after every step of a worker's life: dispatch, a caller lending its
slot to its child, a withdrawn wait, a restart with work in flight, a reconnect, and abandonment
(every service of the tests checks them around every commit too: ``open_service``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from coflux.orchestrator import ProjectService, Timing, invariants
from coflux.orchestrator.clock import FakeClock
from tests.support.service import FakeWorker, ok, open_service, run, start_parent, submit_child

TIMING = Timing(reconnect_timeout=10, heartbeat_interval=2, heartbeat_timeout=15)


async def settle(service: ProjectService) -> None:
    """Everything so far is committed, and the invariants hold."""
    await service.writer.durable()
    invariants.check(service.engine)


def test_the_invariants_hold_through_a_workers_life_and_a_restart(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = FakeClock()
        async with open_service(tmp_path, TIMING, clock=clock) as service:
            worker = FakeWorker(service)
            session = worker.hello(concurrency=1)
            parent = await start_parent(service, worker)
            await settle(service)
            worker.say(**submit_child(parent, 1, 0, awaits=False))
            child = (await worker.next("submitted"))["execution_id"]
            worker.say(
                type="wait", request_id=2, execution_id=child, from_execution_id=parent["execution_id"]
            )
            await worker.next("execute")  # the waiting parent lent its slot to the child
            await settle(service)
            assert session.busy == 1
            worker.say(type="unwait", request_id=2)  # it stops waiting: both hold a slot
            await settle(service)
            assert session.busy == 2
        clock.advance(1)
        async with open_service(tmp_path, TIMING, clock=clock) as service:  # restarted: a ghost holds both
            await settle(service)
            ghost = service.engine.sessions[session.session_id]
            assert ghost.busy == 2 and not ghost.connected
            worker = FakeWorker(service)
            worker.hello(concurrency=1, session_id=session.session_id, running=[parent["execution_id"]])
            await settle(service)  # the child it no longer holds is abandoned
            assert ghost.busy == 1
            worker.disconnect()
            clock.advance(TIMING.reconnect_timeout + 1)  # it never comes back
            await settle(service)
            assert not service.engine.sessions and not service.engine.executions
            view = await service.get_run(parent["run_id"])
            assert view["steps"][0]["executions"][0]["state"] == "abandoned"

    run(scenario)


def test_a_checked_service_refuses_to_commit_a_broken_state(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with open_service(tmp_path, TIMING, clock=FakeClock()) as service:
            worker = FakeWorker(service)
            session = worker.hello(concurrency=2)
            await start_parent(service, worker)
            await settle(service)
            session.busy -= 1  # what only the engine may write, written behind its back
            with pytest.raises(invariants.InvariantBroken, match="counts 0 busy slots, not 1"):
                service.writer.flush()
            assert service.broken
            session.busy += 1
            service.broken.clear()

    run(scenario)


def test_a_result_settles_the_state_it_was_checked_against(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with open_service(tmp_path, TIMING, clock=FakeClock()) as service:
            worker = FakeWorker(service)
            worker.hello(concurrency=1)
            parent = await start_parent(service, worker)
            worker.say(**submit_child(parent, 1, 0))
            child = await worker.next("execute")
            worker.complete(child["execution_id"], ok(1))
            assert (await worker.next("resolved"))["outcome"] == ok(1)
            worker.complete(parent["execution_id"], ok(2))
            await worker.next("ack")
            await settle(service)
            assert not service.engine.executions and not service.engine.runs

    run(scenario)
