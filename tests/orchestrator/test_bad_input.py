"""A worker's message with a value the store can't keep or the views can't read is refused at the
door, as an error answering that message: nothing of it is stored, the run stays readable, and the
project and every other connection go on. Each batch test has a bystander worker that must stay
connected (a failed commit would close every worker of the project)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from coflux.errors import BadRequest, ProtocolError
from coflux.orchestrator import ProjectService, Timing
from coflux.storage import SqlStore
from tests.support.service import FLOW, TASK, FakeWorker, ok, open_service, run, start_parent, submit_child

Poison = Callable[[FakeWorker, dict[str, Any]], None]


async def _refused(service: ProjectService, poison: Poison, error: type[Exception], match: str) -> None:
    """``poison(worker, parent)`` is refused with ``error``; a bystander stays connected and the
    run keeps only its root step."""
    worker = FakeWorker(service)
    worker.hello(concurrency=4)
    bystander = FakeWorker(service)
    bystander.hello()
    parent = await start_parent(service, worker)
    with pytest.raises(error, match=match):
        poison(worker, parent)
    await service.writer.durable()
    assert bystander.closed is None, f"an innocent worker was disconnected: {bystander.closed}"
    assert worker.closed is None, f"the refused message closed its own connection: {worker.closed}"
    assert len((await service.get_run(parent["run_id"]))["steps"]) == 1


def _child_with(**fields: Any) -> Poison:
    def poison(worker: FakeWorker, parent: dict[str, Any]) -> None:
        worker.say(**{**submit_child(parent, 1, 0, awaits=False), **fields})

    return poison


def _log(timestamp: Any) -> Poison:
    def poison(worker: FakeWorker, parent: dict[str, Any]) -> None:
        entry = {"timestamp": timestamp, "level": "info", "message": "x"}
        worker.say(type="log", execution_id=parent["execution_id"], entries=[entry])

    return poison


def test_a_log_entry_with_a_nan_timestamp_is_refused_and_the_project_goes_on(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            await _refused(service, _log(float("nan")), ProtocolError, "timestamp must be a finite number")

    run(scenario)


def test_a_non_numeric_log_timestamp_is_a_protocol_error(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            await _refused(service, _log("soon"), ProtocolError, "timestamp must be a finite number")

    run(scenario)


def test_a_call_index_beyond_what_storage_holds_is_refused_and_the_project_goes_on(tmp_path: Path) -> None:
    def poison(worker: FakeWorker, parent: dict[str, Any]) -> None:
        worker.say(**submit_child(parent, 1, 2**64, awaits=False))

    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            await _refused(service, poison, ProtocolError, "call_index must be an integer from 0")

    run(scenario)


def test_a_submit_with_a_malformed_tagged_argument_is_refused_and_the_run_stays_readable(
    tmp_path: Path,
) -> None:
    """Arguments from a worker are checked as ``start_run`` checks them (a 400 over REST)."""

    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            poison = _child_with(arguments=[{"$c": "no-such-tag"}])
            await _refused(service, poison, BadRequest, "unknown tag 'no-such-tag'")

    run(scenario)


def test_a_result_with_malformed_tagged_json_is_refused_and_the_run_stays_readable(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            worker = FakeWorker(service)
            worker.hello()
            parent = await start_parent(service, worker)
            with pytest.raises(BadRequest, match="malformed base64"):
                worker.complete(parent["execution_id"], ok({"$c": "bytes", "b64": "%%%"}))
            await service.writer.durable()
            assert not [m for m in worker.inbox if m["type"] == "ack"], worker.inbox
            view = await service.get_run(parent["run_id"])
            assert view["status"] == "running"  # the refused result is not the execution's outcome
            worker.complete(parent["execution_id"], ok(2))  # the worker can still report a good one
            await worker.next("ack")
            view = await service.get_run(parent["run_id"])
            assert view["status"] == "succeeded" and view["result"] == 2

    run(scenario)


# -- PostgreSQL enforces String(n) columns and refuses NUL in text --------------------------------

PG_URL = os.environ.get("COFLUX_TEST_PG_URL")


@asynccontextmanager
async def _pg_service(tmp_path: Path) -> AsyncIterator[ProjectService]:
    import sqlalchemy as sa

    assert PG_URL
    project = "r" + uuid.uuid4().hex[:12]
    service = ProjectService(project, SqlStore.open(project, tmp_path, PG_URL), Timing())
    await service.start()
    try:
        yield service
    finally:
        await service.close()
        engine = sa.create_engine(PG_URL)
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "coflux_{project}" CASCADE'))
        engine.dispose()


@pytest.mark.postgres
def test_a_module_name_longer_than_storage_holds_is_refused_on_postgres(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with _pg_service(tmp_path) as service:
            await _refused(service, _child_with(module="m" * 600), ProtocolError, "module must be 1 to 512")

    run(scenario)


@pytest.mark.postgres
def test_a_target_name_with_a_nul_is_refused_on_postgres(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with _pg_service(tmp_path) as service:
            await _refused(service, _child_with(target="a\x00b"), ProtocolError, "target must be 1 to 512")

    run(scenario)


@pytest.mark.postgres
def test_a_session_id_longer_than_storage_holds_is_refused_and_runs_still_start(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with _pg_service(tmp_path) as service:
            worker = FakeWorker(service)
            hello = {
                "type": "hello",
                "protocol": 1,
                "workspace": "main",
                "concurrency": 1,
                "targets": [FLOW, TASK],
                "register": True,
                "session_id": "s" * 100,
            }
            with pytest.raises(ProtocolError, match="session_id must be 1 to 64"):
                service.connect(hello, worker.send, worker.close)
            assert not service.engine.sessions
            good = FakeWorker(service)
            good.hello()
            run_id = await service.start_run("main", "m", "flow", [1])
            assert (await good.next("execute"))["run_id"] == run_id
            assert good.closed is None

    run(scenario)
