"""`coflux server --database-url`: the whole loop on PostgreSQL, including a server restart."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.support.harness import Server, Worker, start_run, wait_for_run

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]


@pytest.fixture
def project() -> Iterator[str]:
    name = "e2e" + uuid.uuid4().hex[:10]
    yield name
    engine = sa.create_engine(os.environ["COFLUX_TEST_PG_URL"])
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "coflux_{name}" CASCADE'))
    finally:
        engine.dispose()


def test_runs_on_postgres_survive_a_server_restart(tmp_path: Path, project: str) -> None:
    url = os.environ["COFLUX_TEST_PG_URL"]
    server = Server(tmp_path / "data", extra=["--database-url", url]).start()
    worker: Worker | None = None
    try:
        assert server.request("POST", "api/projects", {"name": project}).status == 201
        worker = Worker(server, project=project, token=server.worker_token(project)).start()
        first = wait_for_run(
            server, start_run(server, "e2e_flows:fanout", 10, project=project), project=project
        )
        assert first["status"] == "succeeded" and first["result"] == 285
        assert not (tmp_path / "data" / "projects").exists()  # nothing went to SQLite

        server.kill()
        server.start()
        again = server.request("GET", f"api/projects/{project}/runs/{first['run_id']}")
        assert again.status == 200 and again.json()["result"] == 285
        second = wait_for_run(
            server, start_run(server, "e2e_flows:fanout", 4, project=project), project=project
        )
        assert second["result"] == 14
    finally:
        if worker is not None:
            worker.stop()
        server.stop()
