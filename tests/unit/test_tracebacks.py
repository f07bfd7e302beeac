"""What a failed execution's traceback shows: the user's frames, file and line (or the names a
notebook gives its cells), never the framework's; a child's traceback first, as the cause; and an
awaited execution's cancellation spreading to the caller that doesn't catch it. Real workers
against the scripted fake server of ``tests.support.worker_server``."""

from __future__ import annotations

import inspect
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import coflux.worker as cf
from coflux import tracebacks
from coflux.errors import ExecutionCancelled, ExecutionError, RemoteTraceback, execution_error_from_data
from tests.support.worker_server import FakeServer

PACKAGE = Path(tracebacks.__file__).resolve().parent


def _check_rows(rows: list[int]) -> int:
    return sum(100 // row for row in rows)  # a zero row divides by zero here


@cf.task()
def totals(rows: list[int]) -> int:
    return _check_rows(rows)


@cf.task()
async def fetch_later(rows: list[int]) -> int:
    return _check_rows(rows)


@cf.workflow()
def report(rows: list[int]) -> int:
    return totals(rows) + 1


@cf.workflow()
def careless() -> int:
    return totals([1])


@cf.workflow()
def careful() -> str:
    try:
        return str(totals([1]))
    except ExecutionCancelled as err:
        return str(err)


def _line_of(function: Callable[..., Any], text: str) -> int:
    lines, first = inspect.getsourcelines(function)
    return first + next(i for i, line in enumerate(lines) if text in line)


def _no_framework_frames(text: str) -> None:
    assert str(PACKAGE) not in text, text
    for name in ("runtime.py", "targets.py", "threading.py", "asyncio"):
        assert name not in text, text


def test_a_failed_task_shows_the_users_frames_not_the_workers(
    server: FakeServer, worker: Callable[..., cf.Worker]
) -> None:
    worker([totals, fetch_later])
    for execution_id, target in (("Rt:1:1", totals), ("Rt:2:1", fetch_later)):
        server.execute(execution_id, target, [4, 0])
        error = server.expect("complete")["outcome"]["error"]
        text = error["traceback"]
        assert error["type"] == "builtins.ZeroDivisionError"
        assert f'File "{__file__}", line {_line_of(_check_rows, "100 // row")}, in _check_rows' in text
        assert f"in {target.name}" in text
        assert text.endswith("ZeroDivisionError: integer division or modulo by zero\n")
        _no_framework_frames(text)


def test_cells_are_named_as_the_notebook_names_them(
    server: FakeServer, worker: Callable[..., cf.Worker]
) -> None:
    unname = tracebacks.name_files(lambda filename: "Cell In[7]" if filename == __file__ else None)
    try:
        worker([totals])
        server.execute("Rn:1:1", totals, [0])
        text = server.expect("complete")["outcome"]["error"]["traceback"]
    finally:
        unname()
    assert f"  Cell In[7], line {_line_of(_check_rows, '100 // row')}, in _check_rows\n" in text
    assert __file__ not in text


def test_a_childs_traceback_comes_first_then_the_callers_frames(
    server: FakeServer, worker: Callable[..., cf.Worker]
) -> None:
    worker([report])
    server.execute("Rp:1:1", report, [0])
    submit = server.expect("submit")
    child_text = (
        "Traceback (most recent call last):\n"
        "  Cell In[3], line 2, in totals\n"
        "ZeroDivisionError: division by zero\n"
    )
    failed = {
        "state": "failed",
        "error": {
            "type": "builtins.ZeroDivisionError",
            "message": "division by zero",
            "traceback": child_text,
        },
    }
    server.send(
        {"type": "resolved", "request_id": submit["request_id"], "execution_id": "Rp:2:1", "outcome": failed}
    )
    error = server.expect("complete")["outcome"]["error"]
    text = error["traceback"]
    assert (error["type"], error["message"]) == ("builtins.ZeroDivisionError", "division by zero")
    cause, _, caller = text.partition("The above exception was the direct cause of the following exception:")
    assert "execution Rp:2:1 raised:" in cause and child_text.strip() in cause
    assert f"line {_line_of(report, 'totals(rows)')}, in report" in caller
    _no_framework_frames(text)


def test_an_uncaught_cancellation_of_an_awaited_step_cancels_its_caller(
    server: FakeServer, worker: Callable[..., cf.Worker]
) -> None:
    worker([careless, careful])
    cancelled = {
        "state": "cancelled",
        "error": {"type": "coflux.ExecutionCancelled", "message": "cancelled by the user"},
    }

    def outcome_of(execution_id: str, target: cf.Target[..., Any]) -> dict[str, Any]:
        server.execute(execution_id, target)
        submit = server.expect("submit")
        child = f"{execution_id.split(':')[0]}:2:1"
        server.send(
            {
                "type": "resolved",
                "request_id": submit["request_id"],
                "execution_id": child,
                "outcome": cancelled,
            }
        )
        outcome: dict[str, Any] = server.expect("complete")["outcome"]
        return outcome

    outcome = outcome_of("Rc:1:1", careless)
    assert outcome["state"] == "cancelled"  # not failed: it only waited on what was cancelled
    assert outcome["error"]["message"] == "cancelled: it waited on Rc:2:1, which was cancelled"
    assert f"line {_line_of(careless, 'totals([1])')}, in careless" in outcome["error"]["traceback"]
    # A caller that catches it goes on, and can tell why.
    assert outcome_of("Rk:1:1", careful) == {"state": "succeeded", "value": "Rk:2:1 cancelled by the user"}


def test_a_rebuilt_error_carries_the_remote_traceback_as_its_cause() -> None:
    data = {"type": "builtins.KeyError", "message": "'k'", "traceback": "Traceback ...\nKeyError: 'k'\n"}
    error = execution_error_from_data(data, "Rx:2:1")
    assert isinstance(error, KeyError) and isinstance(error, ExecutionError)
    assert isinstance(error.__cause__, RemoteTraceback)
    printed = "".join(traceback.format_exception(error))
    assert printed.index("execution Rx:2:1 raised:\nTraceback ...\nKeyError: 'k'") < printed.index(
        "The above exception was the direct cause"
    )


def test_a_fault_of_ours_keeps_its_frames() -> None:
    source = (
        "def boom():\n"
        "    try:\n"
        "        raise RuntimeError('ours')\n"
        "    except RuntimeError as err:\n"
        "        return err\n"
    )
    namespace: dict[str, Any] = {}
    exec(compile(source, str(PACKAGE / "worker" / "imaginary.py"), "exec"), namespace)
    text = tracebacks.format_exception(namespace["boom"]())
    assert "imaginary.py" in text and "RuntimeError: ours" in text
