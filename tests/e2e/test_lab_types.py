"""The JupyterLab extension's message types (``labextension/src/types.ts``) agree with what a real
server sends: a JSON Schema generated from the TypeScript (``ts-json-schema-generator``, the
labextension's dev dependency) validates every REST answer and event of a run that has every shape
(a group, a cache hit, a failure, an asset, a spawned run, logs, previews), with no property the
types don't declare, and every property the types declare is seen at least once."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tornado.websocket import websocket_connect

from tests.support.harness import Server, Worker, start_run, wait_for_run
from tests.support.labtypes import Checker

pytestmark = pytest.mark.e2e


class Events:
    """The project's events feed, read on a thread of its own while the test runs."""

    def __init__(self, server: Server) -> None:
        self.url = f"ws://127.0.0.1:{server.port}/coflux/ws/events?project=default&token={server.token}"
        self.messages: list[dict[str, Any]] = []
        self.opened = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._read()), daemon=True)

    def __enter__(self) -> Events:
        self._thread.start()
        assert self.opened.wait(30), "the events feed did not open"
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    async def _read(self) -> None:
        connection = await websocket_connect(self.url)
        self.opened.set()
        try:
            while not self._stop.is_set():
                try:
                    message = await asyncio.wait_for(connection.read_message(), 0.2)
                except asyncio.TimeoutError:
                    continue
                if message is None:
                    return
                self.messages.append(json.loads(message))
        finally:
            connection.close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    data = tmp_path / "data"
    data.mkdir()
    server = Server(data).start()
    try:
        yield server
    finally:
        server.stop()


def _get(server: Server, path: str) -> Any:
    response = server.request("GET", f"api/{path}")
    assert response.status == 200, response.body
    return response.json()


def _post(server: Server, path: str, body: Any, status: int = 200) -> Any:
    response = server.request("POST", f"api/{path}", body)
    assert response.status == status, response.body
    return response.json()


# Checked elsewhere: what kernels answer and send (tests/e2e/test_kernel_workers.py), and the bundle
# of a notebook's run output (not a REST answer).
ELSEWHERE = frozenset({"KernelWorker", "WorkerEvent", "RunOutput", "JSONValue"})


def test_the_labextension_types_mirror_the_rest_answers(server: Server) -> None:
    checker = Checker()
    project = "projects/default"
    worker = Worker(server, "lab_types_flows").start()
    try:
        with Events(server) as events:
            run_id = start_run(server, "lab_types_flows:shapes", 3)
            body = {"module": "lab_types_flows", "target": "child", "arguments": [2]}
            checker.check("RunStarted", _post(server, f"{project}/workspaces/main/runs", body, 201))
            run = wait_for_run(server, run_id)
            assert run["status"] == "succeeded", run
            created = _post(server, f"{project}/workspaces", {"name": "dev", "base": "main"}, 201)
            checker.check("Workspace", created)
            checker.check("Workspace", _post(server, f"{project}/workspaces/dev/pause", {}))
            checker.check("Workspace", _post(server, f"{project}/workspaces/dev/resume", {}))
            checker.check("Workspace", _post(server, f"{project}/workspaces/dev/rename", {"name": "dev2"}))
            steps = {s["target"]: s for s in run["steps"]}
            rerun = _post(
                server, f"{project}/steps/{steps['point']['step_id']}/rerun", {"workspace": "dev2"}, 201
            )
            checker.check("ExecutionStarted", rerun)
            # No worker serves dev2: the re-run waits, and the run seen from dev2 says why.
            blocked = _get(server, f"{project}/runs/{run_id}?workspace=dev2")
            assert [b["reason"] for b in blocked["blocked"]] == ["no_worker"], blocked["blocked"]
            _check_run(checker, blocked)
            checker.check("RunCancelled", _post(server, f"{project}/runs/{run_id}/cancel", {}))
    finally:
        worker.stop()

    checker.check("ProjectList", _get(server, "projects"))
    checker.check("WorkspaceList", _get(server, f"{project}/workspaces"))
    checker.check("WorkflowList", _get(server, f"{project}/workspaces/main/workflows"))
    listed = _get(server, f"{project}/workspaces/main/runs")
    checker.check("RunList", listed)
    for summary in listed["runs"]:
        checker.check("RunSummary", summary)
    for workflow in _get(server, f"{project}/workspaces/main/workflows")["workflows"]:
        checker.check("Workflow", workflow)
        for parameter in workflow["parameters"]:
            checker.check("Parameter", parameter)

    for view in ("main", "dev2"):  # dev2: with the cancelled re-run on top
        data = _get(server, f"{project}/runs/{run_id}?workspace={view}")
        _check_run(checker, data)
        for spawned in data["spawned_runs"]:
            checker.check("SpawnedRun", spawned)
            _check_run(checker, _get(server, f"{project}/runs/{spawned['run_id']}"))
    summary = _get(server, f"{project}/runs/{run_id}?steps=false")
    checker.check("Run", summary)
    assert summary["steps"] is None

    by_target = {s["target"]: s for s in reversed(run["steps"])}  # each target's first step
    square_execution = by_target["square"]["executions"][0]["execution_id"]
    logs = _get(server, f"{project}/executions/{square_execution}/logs")
    checker.check("LogList", logs)
    assert {entry["level"] for entry in logs["logs"]} >= {"stdout", "info"}
    asset_id = by_target["files"]["executions"][0]["assets"][0]["asset_id"]
    asset = _get(server, f"{project}/assets/{asset_id}")
    checker.check("Asset", asset)
    for entry in asset["entries"]:
        checker.check("AssetEntry", entry)

    missing = server.request("GET", f"api/{project}/runs/Rnotarun0000")
    assert missing.status in (400, 404)
    checker.check("ErrorAnswer", missing.json())

    kinds = {message["type"]: message for message in events.messages}
    assert set(kinds) == {"run", "execution", "asset", "workspace"}, sorted(kinds)
    names = {
        "run": "RunEvent",
        "execution": "ExecutionEvent",
        "asset": "AssetEvent",
        "workspace": "WorkspaceEvent",
    }
    for message in events.messages:
        checker.check("CofluxEvent", message)
        checker.check(names[message["type"]], message)

    unseen = checker.unseen(leave_out=ELSEWHERE)
    assert not unseen, f"types.ts declares fields the server never sent: {unseen}"


def _check_run(checker: Checker, data: dict[str, Any]) -> None:
    checker.check("Run", data)
    for blocked in data["blocked"]:
        checker.check("BlockedSteps", blocked)
    for step in data["steps"]:
        checker.check("Step", step)
        for execution in step["executions"]:
            checker.check("Execution", execution)
            if execution.get("error"):
                checker.check("ErrorInfo", execution["error"])
            for asset in execution["assets"]:
                checker.check("AssetSummary", asset)
            _check_previews(checker, execution.get("result"))
        for argument in step["arguments"]:
            _check_previews(checker, argument)


def _check_previews(checker: Checker, value: Any) -> None:
    """Previews ride inside described values (typed JSONValue): check each one found."""
    if isinstance(value, list):
        for item in value:
            _check_previews(checker, item)
    elif isinstance(value, dict):
        if "preview" in value:
            checker.check("Preview", value["preview"])
        for item in value.values():
            _check_previews(checker, item)
