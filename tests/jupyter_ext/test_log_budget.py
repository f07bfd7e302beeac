"""``c.Coflux.log_budget`` inside a real Jupyter server (pytest-jupyter): an execution's log is kept
up to the budget, then one line says it was truncated and later lines are dropped."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

pytest_plugins = ("pytest_jupyter.jupyter_server",)

BUDGET = 1000
FLOW = {"module": "m", "name": "flow", "type": "workflow", "parameters": []}


@pytest.fixture
def jp_server_config(jp_server_config: dict[str, Any]) -> dict[str, Any]:
    return {**jp_server_config, "Coflux": {**jp_server_config["Coflux"], "log_budget": BUDGET}}


async def _next(ws: Any, kind: str) -> dict[str, Any]:
    while True:
        parsed = json.loads(await asyncio.wait_for(ws.read_message(), 10))
        for message in parsed if isinstance(parsed, list) else [parsed]:
            if message["type"] == kind:
                return dict(message)


async def _run_and_log(jp_fetch: Any, ws: Any, batches: list[list[str]]) -> list[dict[str, Any]]:
    """Start a run of ``m:flow``, log ``batches`` (one ``log`` message each) from its execution,
    complete it, and read its log back."""
    response = await jp_fetch(
        "coflux", "api", "projects", "default", "workspaces", "main", "runs",
        method="POST", body=json.dumps({"module": "m", "target": "flow", "arguments": []}),
    )  # fmt: skip
    assert response.code == 201
    execution_id = (await _next(ws, "execute"))["execution_id"]
    for lines in batches:
        entries = [{"level": "info", "message": line} for line in lines]
        await ws.write_message(json.dumps({"type": "log", "execution_id": execution_id, "entries": entries}))
    outcome = {"state": "succeeded", "value": None}
    await ws.write_message(
        json.dumps({"type": "complete", "seq": 1, "execution_id": execution_id, "outcome": outcome})
    )
    await _next(ws, "ack")
    logs = await jp_fetch("coflux", "api", "projects", "default", "executions", execution_id, "logs")
    return list(json.loads(logs.body)["logs"])


async def test_a_log_past_its_budget_is_truncated_with_one_line_saying_so(
    jp_fetch: Any, jp_ws_fetch: Any
) -> None:
    ws = await jp_ws_fetch("coflux", "ws", "worker", params={"project": "default"})
    hello = {"type": "hello", "protocol": 1, "workspace": "main", "concurrency": 1, "targets": [FLOW]}
    await ws.write_message(json.dumps({**hello, "register": True}))
    await _next(ws, "welcome")
    # each line costs 300 + 64: the third passes the budget of 1,000
    logs = await _run_and_log(jp_fetch, ws, [["a" * 300] * 5, ["later"]])
    messages = [entry["message"] for entry in logs]
    assert messages[:2] == ["a" * 300] * 2
    assert len(messages) == 3 and "truncated" in messages[2] and "1,000" in messages[2]
    assert logs[2]["level"] == "warning"
    # the budget is per execution: the next run's lines are kept
    assert [e["message"] for e in await _run_and_log(jp_fetch, ws, [["b"]])] == ["b"]
    ws.close()
