"""One worker's bad value fails the group commit for everyone (DESIGN.md section 8: "the server, the
project and every other connection go on"). Each test has a bystander worker that must stay connected."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from coflux.errors import BadRequest, ProtocolError
from coflux.orchestrator import ProjectService, Timing
from coflux.storage import SqlStore
from tests.support.service import FLOW, TASK, FakeWorker, open_service, run, start_parent, submit_child

REFUSED = (BadRequest, ProtocolError)


async def _poisoned(service: ProjectService, poison: Any) -> FakeWorker:
    """Returns the bystander after ``poison(worker, parent)`` ran on another worker."""
    worker = FakeWorker(service)
    worker.hello(concurrency=4)
    bystander = FakeWorker(service)
    bystander.hello()
    parent = await start_parent(service, worker)
    with contextlib.suppress(*REFUSED):  # refusing the message is the fix
        poison(worker, parent)
    await asyncio.sleep(0.1)
    return bystander


def test_nan_log_timestamp_fails_the_batch_for_everyone(tmp_path: Path) -> None:
    """sessions.py:178 float(NaN) passes; SQLite stores NaN as NULL -> NOT NULL constraint on
    logs.timestamp -> the whole batch rolls back and every worker of the project is closed (1011)."""

    def poison(worker: FakeWorker, parent: dict[str, Any]) -> None:
        entry = {"timestamp": float("nan"), "level": "info", "message": "x"}
        worker.say(type="log", execution_id=parent["execution_id"], entries=[entry])

    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            bystander = await _poisoned(service, poison)
            assert bystander.closed is None, f"an innocent worker was disconnected: {bystander.closed}"

    run(scenario)


def test_huge_call_index_fails_the_batch_for_everyone(tmp_path: Path) -> None:
    """sessions.py:196 accepts any Python int; SQLite raises OverflowError at commit (not even a
    StorageError), the batch fails and the project reloads."""

    def poison(worker: FakeWorker, parent: dict[str, Any]) -> None:
        worker.say(**submit_child(parent, 1, 2**64, awaits=False))

    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            bystander = await _poisoned(service, poison)
            assert bystander.closed is None, f"an innocent worker was disconnected: {bystander.closed}"

    run(scenario)


def test_non_numeric_log_timestamp_is_a_protocol_error_not_a_crash(tmp_path: Path) -> None:
    """sessions.py:178 float("soon") raises ValueError, which the websocket (catching only
    ProtocolError/RequestError/StorageError) lets escape: the connection is torn down without an
    error frame and the rest of the frame is skipped."""

    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            worker = FakeWorker(service)
            worker.hello()
            parent = await start_parent(service, worker)
            with pytest.raises(REFUSED):
                worker.say(type="log", execution_id=parent["execution_id"], entries=[{"timestamp": "soon"}])

    run(scenario)


# -- PostgreSQL: String(n) columns are enforced ---------------------------------------------------

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
def test_pg_long_module_name_in_a_submit_fails_the_batch(tmp_path: Path) -> None:
    """steps.module is String(512): a 600-character module from a worker's submit is accepted by
    sessions.py:_on_submit and fails at commit on PostgreSQL, closing every worker."""

    def poison(worker: FakeWorker, parent: dict[str, Any]) -> None:
        message = submit_child(parent, 1, 0, awaits=False)
        message["module"] = "m" * 600
        worker.say(**message)

    async def scenario() -> None:
        async with _pg_service(tmp_path) as service:
            bystander = await _poisoned(service, poison)
            assert bystander.closed is None, f"an innocent worker was disconnected: {bystander.closed}"

    run(scenario)


@pytest.mark.postgres
def test_pg_nul_in_target_name_fails_the_batch(tmp_path: Path) -> None:
    """PostgreSQL refuses NUL in text; only log messages are cleaned (store.py:_without_nul)."""

    def poison(worker: FakeWorker, parent: dict[str, Any]) -> None:
        message = submit_child(parent, 1, 0, awaits=False)
        message["target"] = "a\x00b"
        worker.say(**message)

    async def scenario() -> None:
        async with _pg_service(tmp_path) as service:
            bystander = await _poisoned(service, poison)
            assert bystander.closed is None, f"an innocent worker was disconnected: {bystander.closed}"

    run(scenario)


@pytest.mark.postgres
def test_pg_long_session_id_makes_every_run_fail(tmp_path: Path) -> None:
    """assignments.session_id is String(64) but sessions.py:63 adopts any requested session_id.
    The assignment is in the same batch as the run, so start_run fails with StorageError and all
    workers are disconnected; it repeats for every run while that worker is connected."""

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
            try:
                worker.session = service.connect(hello, worker.send, worker.close)
            except REFUSED:
                return  # refusing the hello is a fix
            await asyncio.sleep(0.05)
            await service.start_run("main", "m", "flow", [1])  # raises StorageError today
            assert worker.closed is None

    run(scenario)
