"""Workspace inheritance and re-runs with real processes: production and dev run different code."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.harness import MODULES, Server, Worker, run_data, start_run, wait_for_run, wait_until

pytestmark = pytest.mark.e2e

V1, V2 = MODULES / "v1", MODULES / "v2"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    server = Server(tmp_path / "data").start()
    names = (("production", None), ("dev", "production"), ("staging", "production"), ("elsewhere", None))
    for name, base in names:
        response = server.request("POST", "api/projects/default/workspaces", {"name": name, "base": base})
        assert response.status == 201, response.body
    yield server
    server.stop()


def _tasks(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each task step's latest execution, by target."""
    return {s["target"]: s["executions"][-1] for s in data["steps"][1:]}


def _run(server: Server, workspace: str, n: int = 4) -> dict[str, Any]:
    """Run the pipeline in ``workspace``; its value is [count, scale, square] of ``n``."""
    data = wait_for_run(server, start_run(server, "pipeline:pipeline", n, workspace=workspace))
    assert data["status"] == "succeeded", data["error"]
    return data


def test_dev_reexecutes_only_its_edited_task_and_nobody_else_sees_its_results(server: Server) -> None:
    workers = [
        Worker(server, "pipeline", workspace="production", modules=V1).start(),
        Worker(server, "pipeline", workspace="dev", modules=V2).start(),
        Worker(server, "pipeline", workspace="staging", modules=V2).start(),
    ]
    try:
        production = _run(server, "production")
        assert production["result"] == [4, 8, 16]
        computed = _tasks(production)
        assert {e["state"] for e in computed.values()} == {"succeeded"}

        dev_run = _run(server, "dev")
        assert dev_run["result"] == [4, 12, 16]
        dev = _tasks(dev_run)
        assert dev["scale"]["state"] == "succeeded" and dev["scale"]["workspace"] == "dev"  # edited: runs
        for unchanged in ("count", "square"):  # the others hit production's executions
            assert dev[unchanged]["state"] == "cached"
            assert dev[unchanged]["cached_from"] == computed[unchanged]["execution_id"]

        again = _tasks(_run(server, "production"))  # the base sees none of dev's results
        for target, execution in again.items():
            assert execution["state"] == "cached"
            assert execution["cached_from"] == computed[target]["execution_id"]

        sibling = _tasks(_run(server, "staging"))  # nor does dev's sibling
        assert sibling["count"]["cached_from"] == computed["count"]["execution_id"]
        assert sibling["scale"]["state"] == "succeeded" and sibling["scale"]["workspace"] == "staging"
    finally:
        for worker in workers:
            worker.stop()


def test_rerun_of_a_production_step_in_dev_uses_devs_code(server: Server) -> None:
    workers = [
        Worker(server, "pipeline", workspace="production", modules=V1).start(),
        Worker(server, "pipeline", workspace="dev", modules=V2).start(),
    ]
    try:
        production = _run(server, "production", n=5)
        scale = next(s for s in production["steps"] if s["target"] == "scale")
        original = scale["executions"][0]

        refused = server.request(
            "POST", f"api/projects/default/steps/{scale['step_id']}/rerun", {"workspace": "elsewhere"}
        )
        assert refused.status == 400 and "descendant" in refused.json()["error"]["message"]

        response = server.request(
            "POST", f"api/projects/default/steps/{scale['step_id']}/rerun", {"workspace": "dev"}
        )
        assert response.status == 201
        rerun_id = response.json()["execution_id"]

        def finished_in_dev() -> dict[str, Any] | None:
            view = server.request(
                "GET", f"api/projects/default/runs/{production['run_id']}?workspace=dev"
            ).json()
            step = next(s for s in view["steps"] if s["target"] == "scale")
            return step if step["executions"][-1]["state"] == "succeeded" else None

        step = wait_until(finished_in_dev, 30, "the re-run in dev")
        assert [e["execution_id"] for e in step["executions"]] == [original["execution_id"], rerun_id]
        assert step["executions"][-1]["workspace"] == "dev" and step["executions"][-1]["rerun"] is True
        assert step["executions"][-1]["result"] == 15  # dev's code: 5 * 3

        base = run_data(server, production["run_id"])  # from production: nothing changed
        step = next(s for s in base["steps"] if s["target"] == "scale")
        assert [e["execution_id"] for e in step["executions"]] == [original["execution_id"]]
        assert base["result"] == production["result"]
    finally:
        for worker in workers:
            worker.stop()
