"""What happens after a commit fails and ProjectService._on_failure reloads the project in place."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from coflux.errors import ProtocolError, StorageError
from coflux.orchestrator import ProjectService, Timing
from coflux.orchestrator.clock import FakeClock
from coflux.storage import Batch, SqlStore
from tests.orchestrator.test_service import FakeWorker, _start_parent, _submit, ok, open_service, run


def _fail_a_commit(service: ProjectService) -> None:
    """The next commit fails as the database would (poison values are refused at the door now,
    see test_poison_batch.py), then storage works again."""
    store = service.store
    apply = store.apply

    def fail_once(batch: Batch) -> None:
        store.apply = apply  # type: ignore[method-assign]
        raise StorageError("writing a batch failed: disk I/O error")

    store.apply = fail_once  # type: ignore[method-assign]
    poisoner = FakeWorker(service)  # registers a new workflow: something to commit
    poisoner.hello(targets=[{"module": "m", "name": "poison", "type": "workflow"}])


def test_a_frame_on_the_old_connection_corrupts_the_reloaded_state(tmp_path: Path) -> None:
    """service.py:180 closes the sockets and rebuilds engine/sessions, but each WorkerSocket keeps
    its old Session object, and Tornado still delivers frames that were in flight after close().
    A ``complete`` on that stale session runs Engine.finish with the *old* Execution/Step objects
    against the *new* engine: it pops the new step, leaves the new run's live_steps and the ghost
    session's execution behind, and writes a result row. When the worker comes back and re-sends
    the same (unacknowledged) complete, the restored execution is finished again -> duplicate
    results PK -> a second storage failure that disconnects everyone once more."""

    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            worker = FakeWorker(service)
            session = worker.hello(concurrency=4)
            parent = await _start_parent(service, worker)
            worker.say(**_submit(parent, 1, 0))
            child = await worker.next("execute")
            _fail_a_commit(service)
            await asyncio.sleep(0.05)
            assert worker.closed is not None  # the reload closed the socket...
            # ...but a frame was already in flight: it is refused, its session is stale
            with pytest.raises(ProtocolError):
                worker.complete(child["execution_id"], ok(5))
            await asyncio.sleep(0.05)

            back = FakeWorker(service)
            back.hello(session_id=session.session_id, running=[parent["execution_id"], child["execution_id"]])
            back.seq = 1
            back.complete(child["execution_id"], ok(5))  # the worker re-sends what was not acked
            await asyncio.sleep(0.1)
            assert back.closed is None, f"a second storage failure: {back.closed}"
            ghost = service.engine.sessions[session.session_id]
            assert child["execution_id"] not in ghost.executions

    run(scenario)


def test_each_storage_failure_leaks_a_session_checker_task(tmp_path: Path) -> None:
    """service.py:185 runs start() again, which overwrites self._checker without cancelling the
    old _check_loop task; close() cancels only the newest, so the old ones run forever against a
    closed service."""

    async def scenario() -> None:
        clock = FakeClock()
        service = ProjectService(
            "test", SqlStore.open("test", tmp_path), Timing(heartbeat_interval=0.1), clock=clock
        )
        await service.start()
        try:
            assert clock.pending == 1  # the session check
            _fail_a_commit(service)
            await asyncio.sleep(0.1)  # the reload starts the service again
            assert clock.pending == 1, f"{clock.pending} session checks for one service"
        finally:
            await service.close()
        assert clock.pending == 0

    run(scenario)
