"""Runs, steps and logs as the command line prints them (coflux.render), from REST-shaped views."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from coflux import render

NOW = 1_000_100.0


def execution(step_id: str, attempt: int, state: str, workspace: str = "dev", **extra: Any) -> dict[str, Any]:
    return {
        "execution_id": f"{step_id}:{attempt}",
        "attempt": attempt,
        "workspace": workspace,
        "state": state,
        "created_at": 1_000_000.0,
        **extra,
    }


def step(
    step_id: str, parent: str | None, target: str, *executions: dict[str, Any], arguments: Any = ()
) -> dict[str, Any]:
    return {
        "step_id": step_id,
        "parent_step_id": parent.rpartition(":")[0] if parent else None,
        "parent_execution_id": parent,
        "module": "flows",
        "target": target,
        "arguments": list(arguments),
        "executions": list(executions),
    }


def test_a_tree_shows_arguments_states_durations_and_marks() -> None:
    data = {
        "run_id": "Rx",
        "workspace": "dev",
        "run_workspace": "dev",
        "status": "running",
        "created_at": 1_000_000.0,
        "steps": [
            step("Rx:1", None, "main", execution("Rx:1", 1, "running", assigned_at=1_000_000.0)),
            step(
                "Rx:2",
                "Rx:1:1",
                "load",
                execution("Rx:2", 1, "failed", assigned_at=1_000_001.0, completed_at=1_000_001.25),
                execution("Rx:2", 2, "succeeded", retry=True, assigned_at=1_000_002, completed_at=1_000_005),
                arguments=["data/" + "x" * 80 + ".csv", {"type": "asset", "asset_id": "A1", "name": "raw"}],
            ),
            step(
                "Rx:3",
                "Rx:2:2",
                "parse",
                execution("Rx:3", 1, "cached", cached_from="Rq:4:1"),
                arguments=[{"type": "object", "class": "pandas.DataFrame", "size": 2048}],
            ),
            step("Rx:4", "Rx:1:1", "save", execution("Rx:4", 1, "queued", workspace="dev/ana")),
        ],
    }
    long_argument = '"data/' + "x" * 53 + "…"
    assert render.text_tree(data, now=NOW).splitlines() == [
        "Run Rx flows:main() in dev: running for 1m 40s, 4 steps",
        "  flows:main() [Rx:1] #1 running 1m 40s",
        f"    flows:load({long_argument}) [Rx:2] #1 failed 250 ms, #2 succeeded 3.0 s (retry)",
        "      flows:parse(<pandas.DataFrame, 2048 bytes>) [Rx:3] #1 cached (from Rq:4:1)",
        "    flows:save() [Rx:4] #1 queued @dev/ana",
    ]


def _rerun_run() -> dict[str, Any]:
    """A failed run whose root was re-run: each attempt called its own children."""
    boom = {"type": "builtins.ValueError", "message": "bad row 3", "traceback": "Traceback...\n  line 3"}
    fine = {"completed_at": 1_000_010.0}
    return {
        "run_id": "Rx",
        "workspace": "dev",
        "status": "failed",
        "created_at": 1_000_000.0,
        "error": {"type": "builtins.ValueError", "message": "bad row 3"},
        "steps": [
            step(
                "Rx:1",
                None,
                "main",
                execution("Rx:1", 1, "failed", error=boom, **fine),
                execution("Rx:1", 2, "failed", rerun=True, error=boom, completed_at=1_000_020.0),
                arguments=[3],
            ),
            step(
                "Rx:2", "Rx:1:1", "parse", execution("Rx:2", 1, "failed", error=boom, **fine), arguments=[1]
            ),
            step("Rx:3", "Rx:1:2", "parse", execution("Rx:3", 1, "succeeded", **fine), arguments=[2]),
            step(
                "Rx:4", "Rx:1:2", "check", execution("Rx:4", 1, "failed", error=boom, **fine), arguments=[2]
            ),
        ],
    }


def test_rerun_attempts_are_grouped_under_the_attempt_that_made_them() -> None:
    assert render.tree_lines(_rerun_run(), now=NOW) == [
        "  flows:main(3) [Rx:1] #1 failed 10.0 s, #2 failed 20.0 s (re-run)",
        "    from #1 (dev):",
        "      flows:parse(1) [Rx:2] #1 failed 10.0 s",
        "    from #2 (dev):",
        "      flows:parse(2) [Rx:3] #1 succeeded 10.0 s",
        "      flows:check(2) [Rx:4] #1 failed 10.0 s",
    ]


def test_a_failure_names_where_it_began_in_the_latest_attempt_and_its_traceback_on_demand() -> None:
    data = _rerun_run()
    found = render.failure(data)
    assert found is not None and found.step["step_id"] == "Rx:4"  # the re-run's child, not #1's
    assert render.outcome_lines(data, hint="--verbose shows its traceback") == [
        "  error: builtins.ValueError: bad row 3",
        "    began in step Rx:4 flows:check(2)",
        "    (--verbose shows its traceback)",
    ]
    verbose = render.outcome_lines(data, traceback=True)
    assert verbose[2:] == ["    Traceback...", "      line 3"]


def test_a_timed_out_root_is_where_it_began() -> None:
    data = _rerun_run()
    data["steps"][0]["executions"][-1] = execution("Rx:1", 2, "timed_out")
    data["error"] = {"type": "coflux.ExecutionTimeout", "message": "the workflow's execution timed out"}
    assert render.outcome_lines(data) == [
        "  error: coflux.ExecutionTimeout: the step's execution timed out",
        "    began in step Rx:1 flows:main(3) (timed out)",
    ]


def test_a_succeeded_run_shows_its_result_cut_to_a_readable_length() -> None:
    data = {"run_id": "Ry", "workspace": "main", "status": "succeeded", "result": {"total": 30}}
    assert render.outcome_lines(data) == ['  result: {"total": 30}']
    data["result"] = "x" * 5000
    (line,) = render.outcome_lines(data)
    assert len(line) == len("  result: ") + render.RESULT_WIDTH and line.endswith("…")


def test_the_text_tree_and_the_result_read_as_the_server_previews_them() -> None:
    keyed = step("Rk:1", None, "keyed", execution("Rk:1", 1, "succeeded", "main", completed_at=1_000_001.0))
    keyed["arguments"] = [{"type": "dict", "items": [[3, 5]]}]
    keyed["arguments_preview"] = ["{3: 5}"]
    data = {
        "run_id": "Rk",
        "workspace": "main",
        "run_workspace": "main",
        "status": "succeeded",
        "created_at": 1_000_000.0,
        "result": {"type": "object", "class": "builtins.bytes", "size": 3},
        "result_preview": "b'abc'",
        "steps": [keyed],
    }
    assert render.text_tree(data).splitlines() == [
        "Run Rk flows:keyed({3: 5}) in main: succeeded in 1.0 s, 1 step",
        "  flows:keyed({3: 5}) [Rk:1] #1 succeeded 1.0 s",
    ]
    assert render.outcome_lines(data) == ["  result: b'abc'"]


def test_why_a_run_cannot_progress_is_said_first_and_on_the_step() -> None:
    blocked = {"reason": "no_worker", "message": "queued: no worker serves report:parse in workspace main"}
    data = {
        "run_id": "Rz",
        "workspace": "main",
        "status": "running",
        "blocked": [{**blocked, "steps": 2}],
        "steps": [
            step("Rz:1", None, "main", execution("Rz:1", 1, "running", workspace="main")),
            step(
                "Rz:2", "Rz:1:1", "parse", execution("Rz:2", 1, "queued", workspace="main", blocked=blocked)
            ),
        ],
    }
    lines = render.text_tree(data, now=NOW).splitlines()
    assert lines[1] == "  2 steps queued: no worker serves report:parse in workspace main"
    assert lines[3] == "    flows:parse() [Rz:2] #1 queued (no worker)"


@pytest.fixture
def utc_plus_two(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "EET-2")  # two hours east of UTC, no daylight saving
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_logs_read_in_local_time_with_continued_lines_indented(utc_plus_two: None) -> None:
    entries = [
        {"timestamp": 0.25, "level": "info", "message": "loading"},
        {"timestamp": 61.0, "level": "stderr", "message": "Traceback:\n  boom"},
    ]
    assert render.log_lines(entries) == [
        "1970-01-01 02:00:00.250 info    loading",
        "1970-01-01 02:01:01.000 stderr  Traceback:",
        "                                  boom",
    ]


def test_runs_table_aligns_status_workflow_start_and_duration(utc_plus_two: None) -> None:
    runs = [
        {"run_id": "Rb", "module": "m", "target": "long_name", "status": "running", "created_at": 3600.0},
        {
            "run_id": "Ra",
            "module": "m",
            "target": "w",
            "status": "succeeded",
            "created_at": 0.0,
            "completed_at": 2.5,
        },
    ]
    assert render.runs_table(runs, now=3630.0) == [
        "RUN  STATUS     WORKFLOW     STARTED              DURATION",
        "Rb   running    m:long_name  1970-01-01 03:00:00  30.0 s so far",
        "Ra   succeeded  m:w          1970-01-01 02:00:00  2.5 s",
    ]
