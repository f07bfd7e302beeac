"""Orchestrator scenarios of test_service.py against PostgreSQL: a fresh schema per test, dropped after."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest
import sqlalchemy as sa

from coflux.orchestrator import ProjectService, Timing
from coflux.orchestrator.clock import Clock
from coflux.storage import schema_name
from tests.support.scenarios import dispatch_complete_acknowledge, resent_after_a_lost_commit
from tests.support.service import FakeWorker, ok, open_service, run, start_parent, submit_child

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_project() -> Iterator[tuple[str, str]]:
    """A project name no other test uses, and the database URL; its schema is dropped afterwards."""
    url = os.environ["COFLUX_TEST_PG_URL"]
    project = "t" + uuid.uuid4().hex[:12]
    yield project, url
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema_name(project)}" CASCADE'))
    finally:
        engine.dispose()


def open_pg_service(
    path: Path, pg_project: tuple[str, str], timing: Timing | None = None, clock: Clock | None = None
) -> AbstractAsyncContextManager[ProjectService]:
    project, url = pg_project
    return open_service(path, timing, project=project, database_url=url, clock=clock)


def test_run_is_dispatched_completed_and_acknowledged(tmp_path: Path, pg_project: tuple[str, str]) -> None:
    async def scenario() -> None:
        async with open_pg_service(tmp_path, pg_project) as service:
            await dispatch_complete_acknowledge(service)
        assert not (tmp_path / "projects").exists()  # nothing went to a SQLite file

    run(scenario)


def test_child_is_submitted_and_resolved(tmp_path: Path, pg_project: tuple[str, str]) -> None:
    async def scenario() -> None:
        async with open_pg_service(tmp_path, pg_project) as service:
            worker = FakeWorker(service)
            worker.hello(concurrency=1)
            parent = await start_parent(service, worker)
            worker.say(**submit_child(parent, 7, 0))
            child = await worker.next("execute")  # concurrency 1: the waiting parent gave up its slot
            worker.complete(child["execution_id"], ok(49))
            resolved = await worker.next("resolved")
            assert resolved["request_id"] == 7 and resolved["outcome"] == ok(49)
            assert resolved["execution_id"] == child["execution_id"]
            worker.say(**submit_child(parent, 8, 0, awaits=False))  # a re-sent submit finds the stored child
            assert (await worker.next("submitted"))["execution_id"] == child["execution_id"]
            view = await service.get_run(parent["run_id"])
            assert len(view["steps"]) == 2 and view["steps"][1]["executions"][0]["state"] == "succeeded"

    run(scenario)


def test_restart_rebuilds_in_flight_work_and_the_worker_reclaims_it(
    tmp_path: Path, pg_project: tuple[str, str]
) -> None:
    async def scenario() -> None:
        async with open_pg_service(tmp_path, pg_project) as service:
            worker = FakeWorker(service)
            session = worker.hello(concurrency=4)
            parent = await start_parent(service, worker)
            worker.say(**submit_child(parent, 1, 0))
            child = await worker.next("execute")
            worker.complete(child["execution_id"], ok(10))
            await worker.next("ack")
        async with open_pg_service(tmp_path, pg_project) as service:
            assert parent["execution_id"] in service.engine.executions
            assert child["execution_id"] not in service.engine.executions
            worker = FakeWorker(service)
            worker.hello(session_id=session.session_id, running=[parent["execution_id"]])
            assert (await worker.next("welcome"))["session_id"] == session.session_id
            worker.say(**submit_child(parent, 1, 0))  # re-sent after the reconnect: the same child
            resolved = await worker.next("resolved")
            assert resolved["outcome"] == ok(10)
            worker.complete(parent["execution_id"], ok(11))
            await worker.next("ack")
            view = await service.get_run(parent["run_id"])
            assert view["status"] == "succeeded" and view["result"] == 11 and len(view["steps"]) == 2

    run(scenario)


def test_a_log_line_with_a_nul_character_does_not_break_the_project(
    tmp_path: Path, pg_project: tuple[str, str]
) -> None:
    # A task printing binary data sends a NUL; the run must carry on and the line must be kept.
    async def scenario() -> None:
        async with open_pg_service(tmp_path, pg_project) as service:
            worker = FakeWorker(service)
            worker.hello()
            parent = await start_parent(service, worker)
            entry = {"timestamp": 1.0, "level": "info", "message": "raw \x00 bytes"}
            worker.say(type="log", execution_id=parent["execution_id"], entries=[entry])
            seq = worker.complete(parent["execution_id"], ok(1))
            assert (await worker.next("ack"))["seqs"] == [seq]
            assert worker.closed is None
            assert (await service.get_run(parent["run_id"]))["status"] == "succeeded"
            (line,) = await service.logs(parent["execution_id"])
            assert line["message"].startswith("raw ") and line["message"].endswith(" bytes")

    run(scenario)


def test_a_cache_hit_answered_ahead_survives_a_lost_commit(
    tmp_path: Path, pg_project: tuple[str, str]
) -> None:
    run(lambda: resent_after_a_lost_commit(lambda clock: open_pg_service(tmp_path, pg_project, clock=clock)))
