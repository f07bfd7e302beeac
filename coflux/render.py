"""Runs, steps and logs as text: what ``coflux runs``, ``coflux submit``, ``coflux run`` and a run's
plain-text display print.

Pure functions over the REST API's views (docs/server.md, "Reading a run"): no I/O,
nothing of ours but the leaves. ``now`` (epoch seconds) is a parameter wherever a duration still
grows, so that tests can pin it.
"""

from __future__ import annotations

import datetime
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from coflux.models import JSON

LIVE_STATES = ("queued", "assigned", "running")
FAILED_STATES = ("failed", "timed_out", "abandoned")
ARGUMENTS_WIDTH = 60
"""Characters of a step's arguments shown in its line; the rest is cut with ``…``."""
RESULT_WIDTH = 1000
"""Characters of a run's result shown in a report (``--json`` has it whole)."""
_BLOCKED_SHORT = {
    "no_worker": "no worker",
    "no_worker_with_tags": "no worker with its tags",
    "workspace_paused": "workspace paused",
    "workspace_archived": "workspace archived",
}
"""How a queued execution's ``blocked.reason`` reads inline; the run's ``blocked`` says it in full."""

_TERMINATED_TYPES = {"timed_out": "coflux.ExecutionTimeout", "abandoned": "coflux.ExecutionAbandoned"}
"""The error type of a step the orchestrator ended, as the run's ``error`` names it."""

Data = Mapping[str, Any]


# -- values and durations -------------------------------------------------------------------------


def format_duration(seconds: float | None) -> str:
    """``12 ms``, ``3.4 s``, ``2m 05s``, ``1h 02m`` (as the run tree widget shows them)."""
    if seconds is None:
        return ""
    seconds = max(seconds, 0.0)
    if seconds < 1:
        return f"{round(seconds * 1000)} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes}m {int(seconds % 60):02d}s"
    return f"{minutes // 60}h {minutes % 60:02d}m"


def format_time(timestamp: float | None) -> str:
    """Epoch seconds as local time: ``2026-11-27 14:03:05``."""
    if timestamp is None:
        return ""
    return datetime.datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S")


def describe_value(value: JSON) -> str:
    """A value as the REST API describes it, as one line: JSON, or ``<asset NAME>``,
    ``<execution ID>``, ``<pandas.DataFrame, 1234 bytes>`` for descriptors."""
    if isinstance(value, dict) and isinstance(value.get("type"), str):
        kind = value["type"]
        if kind == "execution":
            return f"<execution {value.get('execution_id')}>"
        if kind == "asset":
            return f"<asset {value.get('name') or value.get('asset_id')}>"
        shown = value.get("preview")
        if isinstance(shown, dict) and isinstance(shown.get("text"), str):  # the worker's, checked
            return str(shown["text"])
        if kind == "object":
            return f"<{value.get('class')}, {value.get('size')} bytes>"
    return json.dumps(value, ensure_ascii=False)


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def call(step: Data, width: int = ARGUMENTS_WIDTH) -> str:
    """``module:target(arguments)``, the arguments (their previews: ``{3: 5}``, ``b'abc'``) cut to
    ``width`` characters."""
    previews = step.get("arguments_preview")
    if previews is None:  # a view from a server that sends no previews
        previews = [describe_value(a) for a in step.get("arguments") or []]
    arguments = ", ".join(previews)
    return f"{step.get('module')}:{step.get('target')}({_cut(arguments, width)})"


# -- the tree -------------------------------------------------------------------------------------


def run_title(data: Data, now: float | None = None) -> str:
    """``Run R… flows:main(5) in main: succeeded in 0.42 s, 4 steps``."""
    steps = data.get("steps") or []
    workflow = f" {call(steps[0])}" if steps else ""
    own, view = data.get("run_workspace") or data.get("workspace"), data.get("workspace")
    where = f"{own}, seen from {view}" if view and own != view else f"{own}"
    status = str(data.get("status"))
    created = data.get("created_at")
    if status == "running":
        if created is not None:
            status += f" for {format_duration((now or time.time()) - created)}"
    else:
        ended = _root_completed_at(steps)
        if ended is not None and created is not None:
            status += f" in {format_duration(ended - created)}"
    if steps:
        status += f", {_count(len(steps), 'step')}"
    still = data.get("still_running") or 0
    if still:
        status += f"; {_count(still, 'step')} still running after it ended"
    return f"Run {data.get('run_id')}{workflow} in {where}: {status}"


def _root_completed_at(steps: Sequence[Data]) -> float | None:
    executions = steps[0].get("executions") or [] if steps else []
    ended = executions[-1].get("completed_at") if executions else None
    return float(ended) if ended is not None else None


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def blocked_lines(data: Data) -> list[str]:
    """Why the run can't progress, one line per reason: ``2 steps queued: no worker serves
    report:parse in workspace main``."""
    return [
        f"{_count(int(item.get('steps') or 1), 'step')} {item.get('message')}"
        for item in data.get("blocked") or []
    ]


def tree_lines(data: Data, now: float | None = None) -> list[str]:
    """One line per step, nested under the execution that called it. A step whose executions
    called steps more than once (a re-run, a retry) groups them under ``from #N (workspace):``,
    as the run tree widget does. Steps called by executions the view doesn't show are left out."""
    run_id = str(data.get("run_id"))
    steps = list(data.get("steps") or [])
    children: dict[str, list[Data]] = {}
    top: list[Data] = []
    for step in steps:
        parent = step.get("parent_execution_id")
        if parent and str(parent).startswith(f"{run_id}:"):
            children.setdefault(str(parent), []).append(step)
        else:
            top.append(step)
    lines: list[str] = []
    pending: list[tuple[int, Data | str]] = [(1, step) for step in reversed(top)]
    seen: set[str] = set()
    while pending:  # not recursive: a chain of steps nests as deep as it is long
        depth, item = pending.pop()
        if isinstance(item, str):
            lines.append("  " * depth + item)
            continue
        if item["step_id"] in seen:
            continue
        seen.add(item["step_id"])
        lines.append("  " * depth + step_line(item, data.get("workspace"), now))
        pending.extend(reversed(_nested(item, children, depth)))
    return lines


def _nested(step: Data, children: dict[str, list[Data]], depth: int) -> list[tuple[int, Data | str]]:
    groups = [(e, children.get(str(e.get("execution_id")), [])) for e in step.get("executions") or []]
    groups = [(execution, kids) for execution, kids in groups if kids]
    if len(groups) <= 1:
        return [(depth + 1, kid) for _, kids in groups for kid in kids]
    nested: list[tuple[int, Data | str]] = []
    for execution, kids in groups:
        nested.append((depth + 1, f"from #{execution.get('attempt')} ({execution.get('workspace')}):"))
        nested.extend((depth + 2, kid) for kid in kids)
    return nested


def step_line(step: Data, view: str | None, now: float | None = None) -> str:
    """``flows:load("a.csv") [R…:2] #1 failed 3 ms, #2 succeeded 2 ms (re-run)``."""
    attempts = ", ".join(_execution_text(e, view, now) for e in step.get("executions") or [])
    memo = " (memo)" if step.get("memoised") else ""
    return f"{call(step)} [{step.get('step_id')}]{memo} {attempts or 'no execution in this view'}"


def _execution_text(execution: Data, view: str | None, now: float | None) -> str:
    state = str(execution.get("state"))
    text = f"#{execution.get('attempt')} {state.replace('_', ' ')}"
    blocked = execution.get("blocked")
    if isinstance(blocked, dict):
        text += f" ({_BLOCKED_SHORT.get(str(blocked.get('reason')), 'blocked')})"
    started = execution.get("assigned_at") or execution.get("created_at")
    if execution.get("completed_at") is not None and started is not None:
        text += f" {format_duration(execution['completed_at'] - started)}"
    elif state in ("assigned", "running") and started is not None:
        text += f" {format_duration((now or time.time()) - started)}"
    marks = [
        (f"from {execution.get('cached_from')}", state == "cached" and execution.get("cached_from")),
        ("retry", execution.get("retry")),
        ("re-run", execution.get("rerun")),
        ("after the run ended", execution.get("after_run_ended")),
    ]
    text += "".join(f" ({mark})" for mark, shown in marks if shown)
    if execution.get("workspace") not in (None, view):
        text += f" @{execution['workspace']}"
    return text


def text_tree(data: Data, now: float | None = None) -> str:
    """The run's title, why it can't progress (if so), and its tree of steps."""
    lines = [run_title(data, now)]
    lines += ["  " + line for line in blocked_lines(data)]
    lines += tree_lines(data, now)
    return "\n".join(lines)


# -- outcomes -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Failure:
    """Where a failed run's error began: the deepest step that failed with it."""

    step: Data
    execution: Data
    state: str
    error_type: str
    message: str
    traceback: str


def failure(data: Data) -> Failure | None:
    """From the root's latest execution, follow the children it called that failed with the same
    error (type and message: the error re-raised up the tree) as deep as they go. None unless the
    run failed."""
    steps = list(data.get("steps") or [])
    if data.get("status") != "failed" or not steps:
        return None
    children: dict[str, list[Data]] = {}
    for step in steps:
        children.setdefault(str(step.get("parent_execution_id")), []).append(step)
    found = _failed(steps[0])
    if found is None:
        return None
    error = data.get("error")
    if found.state == "failed" and not found.execution.get("error") and isinstance(error, dict):
        found = replace(found, error_type=str(error.get("type")), message=str(error.get("message")))
    while True:
        called = children.get(str(found.execution.get("execution_id")), [])
        deeper = (f for f in map(_failed, called) if f and f.error_type == found.error_type)
        child = next((f for f in deeper if f.message == found.message), None)
        if child is None:
            return found
        found = child


def _failed(step: Data) -> Failure | None:
    executions = step.get("executions") or []
    if not executions or executions[-1].get("state") not in FAILED_STATES:
        return None
    execution = executions[-1]
    state = str(execution["state"])
    error = execution.get("error") or {}
    message = error.get("message") or f"the step's execution {state.replace('_', ' ')}"
    error_type = str(error.get("type") or _TERMINATED_TYPES.get(state, state))
    return Failure(step, execution, state, error_type, str(message), str(error.get("traceback") or ""))


def outcome_lines(data: Data, *, traceback: bool = False, hint: str | None = None) -> list[str]:
    """A finished run's result, or its error and the step where it began (with that step's
    traceback if ``traceback``, else ``hint`` on how to see it)."""
    status = data.get("status")
    if status == "succeeded":
        shown = data.get("result_preview")
        if shown is None:  # a view from a server that sends no previews
            shown = describe_value(data.get("result"))
        return [f"  result: {_cut(shown, RESULT_WIDTH)}"]
    if status not in ("failed", "cancelled"):
        return []
    found = failure(data)
    if found is None:
        error = data.get("error") or {}
        return [f"  error: {error.get('type', 'error')}: {error.get('message', '')}"]
    lines = [
        f"  error: {found.error_type}: {found.message}",
        f"    began in step {found.step.get('step_id')} {call(found.step)}"
        + (f" ({found.state.replace('_', ' ')})" if found.state != "failed" else ""),
    ]
    if traceback and found.traceback:
        lines += ["    " + line for line in found.traceback.rstrip().splitlines()]
    elif hint and found.traceback:
        lines.append(f"    ({hint})")
    return lines


def run_report(
    data: Data, *, verbose: bool = False, hint: str | None = None, now: float | None = None
) -> str:
    """``text_tree`` and the outcome: what ``coflux runs show`` prints."""
    return "\n".join([text_tree(data, now), *outcome_lines(data, traceback=verbose, hint=hint)])


# -- lists and logs -------------------------------------------------------------------------------


def runs_table(runs: Sequence[Data], now: float | None = None) -> list[str]:
    """``coflux runs list``: one aligned row per run, newest first, with a header."""
    rows = [("RUN", "STATUS", "WORKFLOW", "STARTED", "DURATION")]
    for run in runs:
        created, ended = run.get("created_at"), run.get("completed_at")
        if created is not None and ended is not None:
            duration = format_duration(ended - created)
        elif created is not None and run.get("status") == "running":
            duration = f"{format_duration((now or time.time()) - created)} so far"
        else:
            duration = ""
        workflow = f"{run.get('module')}:{run.get('target')}"
        rows.append(
            (str(run.get("run_id")), str(run.get("status")), workflow, format_time(created), duration)
        )
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return ["  ".join([*(row[i].ljust(widths[i]) for i in range(4)), row[4]]).rstrip() for row in rows]


def log_lines(entries: Sequence[Data]) -> list[str]:
    """``2026-11-27 14:03:05.123 info    message``, in local time; a message's further lines are
    indented under its first."""
    lines = []
    for entry in entries:
        timestamp = entry.get("timestamp")
        when = (
            datetime.datetime.fromtimestamp(float(timestamp)).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
            if isinstance(timestamp, (int, float))
            else str(timestamp)
        )
        head = f"{when} {entry.get('level')!s:<7} "
        first, *rest = str(entry.get("message", "")).splitlines() or [""]
        lines.append(head + first)
        lines.extend(" " * len(head) + line for line in rest)
    return lines
