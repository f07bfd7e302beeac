"""`coflux run`'s pure parts: papermill-style parameters, the run summary; and the client's record of
the runs a process started."""

from __future__ import annotations

import itertools
import json
import math
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from coflux.client import Client, started_runs
from coflux.headless import (
    CellFailure,
    HeadlessResult,
    format_summary,
    inject_parameters,
    parse_parameters,
    parse_value,
    summarize_run,
)
from tests.support.http import FakeHTTPServer, Reply, Request

# -- parameters -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("5", 5),
        ("-3", -3),
        ("1_000", 1000),
        ("2.5", 2.5),
        ("1e3", 1000.0),
        ("True", True),
        ("False", False),
        ("None", None),
        ("true", "true"),
        ("hello world", "hello world"),
        ("", ""),
        ("'quoted'", "'quoted'"),
        ("[1, 2]", "[1, 2]"),
    ],
)
def test_values_are_read_as_papermill_reads_them(text: str, value: object) -> None:
    parsed = parse_value(text)
    assert parsed == value and type(parsed) is type(value)


def test_parameters_split_at_the_first_equals_and_a_later_key_wins() -> None:
    assert parse_parameters(["n=5", "query=a=b", "n=7", "empty="]) == {"n": 7, "query": "a=b", "empty": ""}


@pytest.mark.parametrize("pair", ["n", "1n=2", "my-name=1", "class=3", "=4", "a b=1"])
def test_bad_keys_are_refused(pair: str) -> None:
    with pytest.raises(ValueError, match=r"KEY=VALUE|not a Python identifier"):
        parse_parameters([pair])


def _notebook(*cells: Any) -> Any:
    return new_notebook(cells=list(cells))


def _sources(notebook: Any) -> list[str]:
    return [cell.source for cell in notebook.cells]


def test_the_injected_cell_follows_the_parameters_cell() -> None:
    notebook = _notebook(
        new_markdown_cell("# Title"),
        new_code_cell("import math"),
        new_code_cell("n = 1\nname = 'x'", metadata={"tags": ["parameters"]}),
        new_code_cell("print(n)"),
    )
    index = inject_parameters(notebook, {"n": 5})
    assert index == 3
    cell = notebook.cells[3]
    assert cell.cell_type == "code" and cell.metadata["tags"] == ["injected-parameters"]
    assert cell.source == "# Parameters\nn = 5\n"
    assert _sources(notebook)[:3] == ["# Title", "import math", "n = 1\nname = 'x'"]
    assert _sources(notebook)[4] == "print(n)"


def test_without_a_parameters_cell_the_injected_cell_goes_first() -> None:
    notebook = _notebook(new_code_cell("print(n)"))
    assert inject_parameters(notebook, {"n": 5}) == 0
    assert _sources(notebook) == ["# Parameters\nn = 5\n", "print(n)"]


def test_only_the_first_parameters_cell_counts() -> None:
    tagged = {"tags": ["setup", "parameters"]}
    notebook = _notebook(new_code_cell("a = 1", metadata=tagged), new_code_cell("b = 1", metadata=tagged))
    assert inject_parameters(notebook, {"a": 2}) == 1


def test_an_earlier_injected_cell_is_replaced_in_place() -> None:
    notebook = _notebook(
        new_code_cell("n = 1", metadata={"tags": ["parameters"]}),
        new_code_cell("# Parameters\nn = 3\n", metadata={"tags": ["injected-parameters"]}),
        new_code_cell("print(n)"),
    )
    assert inject_parameters(notebook, {"n": 9}) == 1
    assert _sources(notebook) == ["n = 1", "# Parameters\nn = 9\n", "print(n)"]


def test_no_parameters_leave_the_notebook_alone() -> None:
    notebook = _notebook(new_code_cell("n = 1", metadata={"tags": ["parameters"]}))
    assert inject_parameters(notebook, {}) is None
    assert _sources(notebook) == ["n = 1"]


def test_the_injected_assignments_give_back_the_values() -> None:
    numbers = ["i=42", "f=0.5", "big=1e308", "inf=inf", "nan=nan", "flag=False", "none=None"]
    parameters = parse_parameters([*numbers, 'text=it\'s "quoted" \\ and\nlined', "unicode=Zürich"])
    notebook = _notebook()
    inject_parameters(notebook, parameters)
    namespace: dict[str, Any] = {}
    exec(notebook.cells[0].source, namespace)
    assert math.isnan(namespace.pop("nan")) and math.isnan(parameters.pop("nan"))  # type: ignore[arg-type]
    assert {k: namespace[k] for k in parameters} == parameters
    assert type(namespace["i"]) is int and namespace["inf"] == math.inf


# -- the summary ----------------------------------------------------------------------------------


def _execution(step_id: str, state: str, error: dict[str, str] | None = None, **extra: Any) -> dict[str, Any]:
    return {"execution_id": f"{step_id}:1", "attempt": 1, "state": state, "error": error, **extra}


def _step(step_id: str, target: str, parent: str | None, *executions: dict[str, Any]) -> dict[str, Any]:
    return {
        "step_id": step_id,
        "parent_step_id": parent,
        "parent_execution_id": f"{parent}:1" if parent else None,
        "module": "flows",
        "target": target,
        "arguments": [5],
        "executions": list(executions),
    }


def _failed_run() -> dict[str, Any]:
    boom = {"type": "builtins.ValueError", "message": "boom", "traceback": "..."}
    return {
        "run_id": "R1",
        "workspace": "main",
        "status": "failed",
        "created_at": 100.0,
        "result": None,
        "error": {"type": "builtins.ValueError", "message": "boom"},
        "steps": [
            _step("R1:1", "pipeline", None, _execution("R1:1", "failed", boom, completed_at=101.5)),
            _step("R1:2", "load", "R1:1", _execution("R1:2", "succeeded")),
            _step("R1:3", "parse", "R1:1", _execution("R1:3", "failed", boom)),
            _step("R1:4", "check", "R1:3", _execution("R1:4", "failed", boom)),
        ],
    }


def test_a_failed_run_names_the_step_its_error_started_in() -> None:
    run = summarize_run("default", _failed_run())
    assert (run.workflow, run.status, run.steps, run.arguments) == ("flows:pipeline", "failed", 4, [5])
    assert run.duration == pytest.approx(1.5)
    assert run.failed_step is not None
    assert (run.failed_step.step_id, run.failed_step.target) == ("R1:4", "check")
    assert (run.failed_step.error_type, run.failed_step.message) == ("builtins.ValueError", "boom")


def test_a_workflow_raising_its_own_error_is_where_it_started() -> None:
    data = _failed_run()
    data["steps"][0]["executions"][0]["error"] = {"type": "builtins.RuntimeError", "message": "gave up"}
    run = summarize_run("default", data)
    assert run.failed_step is not None and run.failed_step.step_id == "R1:1"
    assert run.failed_step.message == "gave up"


def test_a_timed_out_workflow_is_named_without_an_error_message() -> None:
    data = _failed_run()
    data["steps"][0]["executions"][0] = _execution("R1:1", "timed_out")
    for step in data["steps"][2:]:
        step["executions"][0] = _execution(step["step_id"], "cancelled")
    run = summarize_run("default", data)
    assert run.failed_step is not None
    assert (run.failed_step.step_id, run.failed_step.state) == ("R1:1", "timed_out")
    assert run.failed_step.message == "the step's execution timed out"
    assert run.duration is None


def test_the_text_summary_and_the_exit_status() -> None:
    succeeded = {
        "run_id": "R2",
        "workspace": "dev",
        "status": "succeeded",
        "created_at": 10.0,
        "result": 30,
        "steps": [_step("R2:1", "fanout", None, _execution("R2:1", "succeeded", completed_at=10.25))],
    }
    good = HeadlessResult(Path("nb.ipynb"), None, {"n": 5}, None, runs=[summarize_run("p", succeeded)])
    assert good.exit_code == 0
    text = format_summary(good)
    assert "Run R2 flows:fanout(5) in p/dev: succeeded in 0.25 s, 1 step" in text
    assert "result: 30" in text

    failure = CellFailure(2, 3, "KeyError", "'b'", "total = rows['b']\nprint(total)")
    bad = HeadlessResult(Path("nb.ipynb"), Path("out.ipynb"), {}, "http://h/coflux", failure, [])
    bad_run = HeadlessResult(Path("nb.ipynb"), None, {}, None, runs=[summarize_run("p", _failed_run())])
    assert bad.exit_code == 1 and bad_run.exit_code == 1
    text = format_summary(bad)
    assert "cell 2 (In [3]) failed: KeyError: 'b'" in text and "total = rows['b']" in text
    assert "No runs were started." in text and "out.ipynb" in text
    text = format_summary(bad_run)
    assert "  error: builtins.ValueError: boom\n    began in step R1:4 flows:check(5)" in text

    data = bad_run.to_json()
    assert json.loads(json.dumps(data))["runs"][0]["failed_step"]["target"] == "check"
    assert data["embedded"] is True and data["ok"] is False


# -- the client's record of started runs ----------------------------------------------------------


@pytest.fixture
def runs_server() -> Iterator[str]:
    """Answers every ``POST`` as a new run ``R1``, ``R2``, ... (counted across threads)."""
    count = itertools.count(1)

    def respond(request: Request) -> Reply:
        assert request.method == "POST", request
        return Reply(201, json.dumps({"run_id": f"R{next(count)}"}).encode(), "application/json")

    with FakeHTTPServer(respond) as server:
        yield server.url + "coflux"


def test_every_started_run_is_recorded_in_order(runs_server: str) -> None:
    before = len(started_runs())
    first = Client(url=runs_server, project="alpha").start_run("m:w", 1)
    second = Client(url=runs_server, project="beta").start_run("m:w", 2)
    assert started_runs()[before:] == [("alpha", first.id), ("beta", second.id)]

    threads = [
        threading.Thread(target=lambda: Client(url=runs_server, project="p").start_run("m:w"))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    recorded = started_runs()[before + 2 :]
    assert len(recorded) == 8 and len(set(recorded)) == 8
    started_runs().clear()  # a copy: the record itself is untouched
    assert len(started_runs()) == before + 10


def test_a_run_left_waiting_says_why_in_the_summary() -> None:
    blocked = {"reason": "no_worker", "message": "queued: no worker serves flows:load in workspace main"}
    data = {
        "run_id": "R3",
        "workspace": "main",
        "status": "running",
        "created_at": 10.0,
        "blocked": [{**blocked, "steps": 1}],
        "steps": [
            _step("R3:1", "pipeline", None, _execution("R3:1", "running")),
            _step("R3:2", "load", "R3:1", _execution("R3:2", "queued", blocked=blocked)),
        ],
    }
    run = summarize_run("p", data)
    assert run.tree[0] == "  1 step queued: no worker serves flows:load in workspace main"
    assert run.tree[2] == "    flows:load(5) [R3:2] #1 queued (no worker)"
    text = format_summary(HeadlessResult(Path("nb.ipynb"), None, {}, None, runs=[run]))
    assert "in p/main: running, 2 steps\n  1 step queued: no worker serves flows:load" in text
