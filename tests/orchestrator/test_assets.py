"""A project's assets through its orchestrator, on SQLite and PostgreSQL: persisted only when the
execution is the project's and every blob is in the store with its size; answered once durable (a
restart finds it) and announced to event listeners; restorations and the run view's ``assets``; a
failed commit fails the request."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from coflux.errors import BadRequest, NotFound, StorageError
from coflux.orchestrator import ProjectService
from coflux.storage import schema_name
from tests.support.service import FakeWorker, open_service, run, start_parent

KEY = "c" * 64


async def _sizes(keys: list[str]) -> dict[str, int | None]:
    """The blob store as the tests have it: blob KEY of 10 bytes, nothing else."""
    return {key: 10 if key == KEY else None for key in keys}


def _entry(path: str = "x.csv", size: int = 10) -> dict[str, Any]:
    return {"path": path, "blob_key": KEY, "size": size, "media_type": "text/csv"}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> Iterator[tuple[str, str | None]]:
    """A project name no other test uses, and its database (None: SQLite under tmp_path)."""
    project = "t" + uuid.uuid4().hex[:12]
    if request.param == "sqlite":
        yield project, None
        return
    url = os.environ["COFLUX_TEST_PG_URL"]
    yield project, url
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema_name(project)}" CASCADE'))
    finally:
        engine.dispose()


async def _execution(service: ProjectService) -> str:
    worker = FakeWorker(service)
    worker.hello()
    execution_id: str = (await start_parent(service, worker))["execution_id"]
    return execution_id


def test_a_persisted_asset_survives_a_restart_with_its_restorations(
    tmp_path: Path, database_url: tuple[str, str | None]
) -> None:
    project, url = database_url

    async def scenario() -> None:
        async with open_service(tmp_path, project=project, database_url=url) as service:
            execution_id = await _execution(service)
            events: list[dict[str, Any]] = []
            service.subscribe(events.append)
            asset = await service.assets.persist(execution_id, "data", [_entry(), _entry("b/y.csv")], _sizes)
            assert {
                "type": "asset",
                "run_id": execution_id.split(":")[0],
                "execution_id": execution_id,
                "asset_id": asset["asset_id"],
            } in events
            await service.assets.restored(asset["asset_id"], execution_id)
        async with open_service(tmp_path, project=project, database_url=url) as service:
            stored = await service.assets.get(asset["asset_id"])
            assert stored["entries"] == [_entry("b/y.csv"), _entry()]
            assert stored["execution_id"] == execution_id and stored["name"] == "data"
            assert [r["execution_id"] for r in stored["restored_by"]] == [execution_id]
            view = await service.get_run(execution_id.split(":")[0])
            assets = view["steps"][0]["executions"][0]["assets"]
            assert assets == [{"asset_id": asset["asset_id"], "name": "data", "entries": 2}]

    run(scenario)


def test_what_is_not_the_projects_or_not_in_the_store_is_refused(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            execution_id = await _execution(service)
            with pytest.raises(NotFound, match="no execution R"):
                await service.assets.persist(execution_id.replace(":1:", ":7:"), None, [_entry()], _sizes)
            with pytest.raises(BadRequest, match="not an execution id"):
                await service.assets.persist("x", None, [_entry()], _sizes)
            with pytest.raises(BadRequest, match="is not in the store: upload it first"):
                await service.assets.persist(execution_id, None, [{**_entry(), "blob_key": "d" * 64}], _sizes)
            with pytest.raises(BadRequest, match="valid Unicode"):
                await service.assets.persist(execution_id, "a\ud800", [_entry()], _sizes)
            with pytest.raises(BadRequest, match="NUL"):
                await service.assets.persist(execution_id, "a\x00", [_entry()], _sizes)
            with pytest.raises(BadRequest, match="below 2"):
                await service.assets.persist(execution_id, None, [_entry(size=2**63)], _sizes)
            with pytest.raises(BadRequest, match="at most 10000 entries"):
                await service.assets.persist(
                    execution_id, None, [_entry(str(n)) for n in range(10_001)], _sizes
                )
            with pytest.raises(NotFound, match="no asset"):
                await service.assets.restored("A" + "0" * 24, execution_id)
            with pytest.raises(BadRequest, match="not an asset id"):
                await service.assets.get("A" + "0" * 23)
            assert service.store.assets_of([execution_id]) == []

    run(scenario)


def test_a_failed_commit_fails_the_persist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            execution_id = await _execution(service)

            def refuse(batch: Any) -> None:
                raise StorageError("the disk is gone")

            monkeypatch.setattr(service.store, "apply", refuse)
            with pytest.raises(StorageError):
                await service.assets.persist(execution_id, None, [_entry()], _sizes)
            monkeypatch.undo()

    run(scenario)
