"""Read models: a run as seen from a workspace, in the shapes of the HTTP API (docs/server.md)."""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from coflux import serialization
from coflux.errors import NotFound
from coflux.models import ExecutionId, ExecutionState, split_execution_id
from coflux.orchestrator.engine import Engine
from coflux.orchestrator.progress import Progress, summarize
from coflux.orchestrator.workspaces import Workspaces
from coflux.preview import preview
from coflux.storage import SqlStore

Row = dict[str, Any]
_LIVE = frozenset({ExecutionState.QUEUED.value, ExecutionState.ASSIGNED.value, ExecutionState.RUNNING.value})


def run_view(
    store: SqlStore,
    workspaces: Workspaces,
    engine: Engine,
    run_id: str,
    workspace: str | None,
    with_steps: bool = True,
) -> dict[str, Any]:
    """The run's tree; without ``with_steps`` only its root step is read (status and result)."""
    run = store.run(run_id)
    if run is None:
        raise NotFound(f"no run {run_id}")
    view_id = workspaces.get(workspace).id if workspace else run["workspace_id"]
    visible = set(workspaces.ancestry(view_id))
    steps, executions, results, assignments = store.run_history(run_id, only_root=not with_steps)
    by_result = {r["execution_id"]: r for r in results}
    per_step = _visible_executions(executions, by_result, assignments, visible, engine, workspaces)
    if with_steps:
        _add_assets(store, per_step)
    shown = [_step(s, per_step.get(s["step_id"], [])) for s in steps]
    root = shown[0] if shown else None
    status, result, error = _status(root, by_result)
    if status != "running" and redoing(engine, store, run_id, visible):
        status, result, error = "running", None, None  # a fix is on its way up to the root
    still_running = _mark_after_end(shown) if status != "running" else 0
    return {
        "run_id": run_id,
        "workspace": workspaces.by_id[view_id].name,
        "run_workspace": workspaces.by_id[run["workspace_id"]].name,
        "parent_execution_id": run["parent_execution_id"],
        "spawned_runs": [
            {"run_id": r["run_id"], "parent_execution_id": r["parent_execution_id"]}
            for r in store.spawned_by(run_id)
        ]
        if with_steps
        else None,
        "created_at": run["created_at"],
        "completed_at": root["executions"][-1]["completed_at"]
        if root and root["executions"] and status != "running"
        else None,
        "status": status,
        "result": serialization.describe(result) if result is not None else None,
        "result_preview": preview(result) if result is not None else None,
        "result_value": result,
        "error": error,
        "root_execution_id": root["executions"][-1]["execution_id"] if root and root["executions"] else None,
        "still_running": still_running,
        "blocked": summarize(
            (step["step_id"], e["blocked"]) for step in shown for e in step["executions"] if e.get("blocked")
        ),
        "steps": shown if with_steps else None,
    }


def _visible_executions(
    executions: list[Row],
    by_result: dict[str, Row],
    assignments: list[Row],
    visible: set[int],
    engine: Engine,
    workspaces: Workspaces,
) -> dict[str, list[dict[str, Any]]]:
    """The executions a view sees (those of its workspace and its ancestors), by step, each with
    why it waits if it is queued and can't be dispatched (``blocked``)."""
    assigned = {a["execution_id"]: a for a in assignments}
    per_step: dict[str, list[dict[str, Any]]] = {}
    progress = Progress(engine.sessions.values(), workspaces)
    for row in executions:
        if row["workspace_id"] not in visible:
            continue
        execution = _execution(row, by_result.get(row["execution_id"]), assigned, engine, workspaces)
        live = engine.executions.get(ExecutionId(row["execution_id"]))
        execution["blocked"] = None
        if live is not None and live.state is ExecutionState.QUEUED:
            execution["blocked"] = progress.blocked(live)
        per_step.setdefault(row["step_id"], []).append(execution)
    return per_step


def _add_assets(store: SqlStore, per_step: dict[str, list[dict[str, Any]]]) -> None:
    """Each execution's ``assets``: those it persisted, oldest first."""
    executions = {e["execution_id"]: e for shown in per_step.values() for e in shown}
    for execution in executions.values():
        execution["assets"] = []
    for row in store.assets_of(list(executions)):
        executions[row["execution_id"]]["assets"].append(
            {"asset_id": row["asset_id"], "name": row["name"], "entries": row["entries"]}
        )


def _mark_after_end(steps: list[dict[str, Any]]) -> int:
    """The run has ended, yet steps it started may still be queued or running: they go on (their
    results can serve a re-run) until they finish or the run is cancelled. Marks their live
    executions ``after_run_ended`` and returns how many steps have one."""
    count = 0
    for step in steps:
        live = [e for e in step["executions"] if e["state"] in _LIVE]
        for execution in live:
            execution["after_run_ended"] = True
        count += bool(live)
    return count


def _execution(
    row: Row, result: Row | None, assigned: dict[str, Row], engine: Engine, workspaces: Workspaces
) -> dict[str, Any]:
    execution_id = row["execution_id"]
    live = engine.executions.get(ExecutionId(execution_id))
    if result is not None:
        state = result["state"]
    elif live is not None:
        state = live.state.value
    else:
        state = (ExecutionState.ASSIGNED if execution_id in assigned else ExecutionState.QUEUED).value
    data: dict[str, Any] = {
        "execution_id": execution_id,
        "attempt": row["attempt"],
        "workspace": workspaces.by_id[row["workspace_id"]].name,
        "state": state,
        "cached": state == ExecutionState.CACHED.value,
        "cached_from": result["cached_from"] if result is not None and state == "cached" else None,
        "deferred_to": result["cached_from"] if result is not None and state == "deferred" else None,
        "created_at": row["created_at"],
        "execute_after": row["execute_after"],
        "assigned_at": assigned[execution_id]["assigned_at"] if execution_id in assigned else None,
        "completed_at": result["created_at"] if result is not None else None,
        "retries": row.get("retry"),  # read (and removed) by _mark_attempts
        "rerun_parents": bool(row.get("rerun_parents")),
        "fixed_step": row.get("fixed_step"),
    }
    if result is not None and result["value"] is not None:
        value = json.loads(result["value"])
        data["result"] = serialization.describe(value)
        data["result_preview"] = preview(value)
    if result is not None and result["error"] is not None:
        data["error"] = json.loads(result["error"])
    return data


def _mark_attempts(executions: list[dict[str, Any]]) -> None:
    """``retry``: the orchestrator tried again after a failed, timed-out or abandoned attempt;
    ``rerun``: a later attempt someone asked for. Executions recorded before storage kept this
    (``retries`` is None) are judged by the attempt before them in their workspace."""
    previous: dict[str, str] = {}
    for execution in executions:
        recorded = execution.pop("retries")
        if recorded is not None:
            execution["retry"] = recorded > 0
        else:
            before = previous.get(execution["workspace"])
            execution["retry"] = before in ("failed", "timed_out", "abandoned") and execution["attempt"] > 1
        execution["rerun"] = execution["attempt"] > 1 and not execution["retry"]
        previous[execution["workspace"]] = execution["state"]


def _step(row: Row, executions: list[dict[str, Any]]) -> dict[str, Any]:
    parent = row["parent_execution_id"]
    _mark_attempts(executions)
    options = json.loads(row["options"])
    arguments = json.loads(row["arguments"])
    return {
        "step_id": row["step_id"],
        "parent_step_id": split_execution_id(parent)[1] if parent else None,
        "parent_execution_id": parent,
        "module": row["module"],
        "target": row["target"],
        "type": row["type"],
        "arguments": [serialization.describe(a) for a in arguments],
        "arguments_preview": [preview(a) for a in arguments],
        "group": options.get("group"),
        "options": options,
        "cache_key": row.get("cache_key"),
        "memoised": row.get("memo_key") is not None,
        "executions": executions,
    }


def redoing(engine: Engine, store: SqlStore, run_id: str, visible: Collection[int]) -> bool:
    """A re-run made with ``parents`` is live in the run, or in a run it spawned, in a workspace
    the view sees: once it succeeds its chain re-runs the steps above it up to the root (and on
    into the spawning run), so the run is not over yet. It reads ``running`` until the chain
    reaches its root or stops."""
    chains = {
        e.step.run.run_id for e in engine.executions.values() if e.rerun_parents and e.workspace_id in visible
    }
    for chain_run in chains:
        current: str | None = chain_run
        seen: set[str] = set()
        while current is not None and current not in seen:
            if current == run_id:
                return True
            seen.add(current)
            row = store.run(current)
            spawner = row["parent_execution_id"] if row else None
            current = split_execution_id(spawner)[0] if spawner else None
    return False


def _status(root: dict[str, Any] | None, results: dict[str, Row]) -> tuple[str, Any, Any]:
    if root is None or not root["executions"]:
        return "running", None, None
    latest = root["executions"][-1]
    state = latest["state"]
    row = results.get(latest["execution_id"])
    if state in ("succeeded", "cached") and row is not None:
        return "succeeded", json.loads(row["value"]) if row["value"] is not None else None, None
    if state == "cancelled":
        reason = latest.get("error") or {}
        message = reason.get("message") or "the run was cancelled"
        shown = {"type": "coflux.ExecutionCancelled", "message": message}
        return "cancelled", None, {**shown, "traceback": reason.get("traceback") or ""}
    if state == "failed" and row is not None and row["error"] is not None:
        error = json.loads(row["error"])
        shown = {"type": error.get("type"), "message": error.get("message")}
        return "failed", None, {**shown, "traceback": error.get("traceback") or ""}
    if state in ("timed_out", "abandoned"):
        kind = "ExecutionTimeout" if state == "timed_out" else "ExecutionAbandoned"
        return (
            "failed",
            None,
            {
                "type": f"coflux.{kind}",
                "message": f"the workflow's execution {state.replace('_', ' ')}",
            },
        )
    return "running", None, None
