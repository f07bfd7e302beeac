"""What a notebook user sees when a step fails or is cancelled, in real kernels started by a real
Jupyter server with the extension: tracebacks that name the cells (not the kernel's temporary
files, not the framework's frames), the cancelled state with its reason, and a failed run made to
succeed by fixing the failing cell and re-running that step with its parents."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.support.jupyter import Kernel, by_target, finished_run, rest

pytest_plugins = ("pytest_jupyter.jupyter_server",)

pytestmark = pytest.mark.e2e

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


async def cell(kernel: Kernel, code: str) -> tuple[int, str]:
    """Run a cell as a notebook does; its execution count and the error IPython showed (its
    traceback without colours), or "" if it succeeded."""
    shown: list[str] = []

    def collect(message: dict[str, Any]) -> None:
        if message["msg_type"] == "error":
            shown.append(_ANSI.sub("", "\n".join(message["content"]["traceback"])))

    reply = await kernel.client.execute_interactive(code, output_hook=collect, timeout=60)
    return int(reply["content"]["execution_count"]), "".join(shown)


LOAD = """%%coflux_task
def load(path):
    rows = path.split(",")
    return [100 // int(row) for row in rows]
"""

REPORT = """%%coflux_workflow
def report(path):
    values = load(path)
    return sum(values)
"""


def _framework_free(text: str) -> None:
    assert "ipykernel_" not in text, text
    for frame in ("coflux/worker", "coflux/client.py", "runtime.py", "threading.py"):
        assert frame not in text, text


async def test_a_failing_tasks_traceback_names_its_cell(start_kernel: Any, jp_fetch: Any) -> None:
    async with start_kernel() as kernel:
        load_cell, _ = await cell(kernel, LOAD)
        report_cell, _ = await cell(kernel, REPORT)
        run_id = await kernel.value("report.run('4,0').id")
        data = await finished_run(jp_fetch, run_id)
        assert data["status"] == "failed"
        [load] = by_target(data)["load"]
        [report] = by_target(data)["report"]
        load_tb = load["executions"][0]["error"]["traceback"]
        report_tb = report["executions"][0]["error"]["traceback"]
        # The cell, and its line as the notebook numbers it (the magic's line is line 1).
        assert (
            f"Cell In[{load_cell}], line 4, in load\n    return [100 // int(row) for row in rows]" in load_tb
        )
        assert load_tb.endswith("ZeroDivisionError: integer division or modulo by zero\n")
        _framework_free(load_tb)
        # The workflow's: the task's traceback first, then the workflow's own line.
        assert report_tb.index(f"Cell In[{load_cell}], line 4") < report_tb.index(
            f"Cell In[{report_cell}], line 3, in report\n    values = load(path)"
        )
        _framework_free(report_tb)
        # Run.result() in a cell: the run's own traceback, not the client's internals.
        _, shown = await cell(kernel, f"from coflux import Client\nClient().get_run({run_id!r}).result()")
        assert f"Cell In[{load_cell}], line 4" in shown and f"Cell In[{report_cell}], line 3" in shown
        assert "ZeroDivisionError: integer division or modulo by zero" in shown
        _framework_free(shown)
        assert "IPython" not in shown and "File " not in shown, shown


SLOW = """%%coflux_task
def wait_for(path):
    import pathlib, time
    while not pathlib.Path(path).exists():
        time.sleep(0.05)
    return 1
"""

PIPELINE = """%%coflux_workflow
def pipeline(path):
    return wait_for(path) + 1
"""


async def test_cancelled_steps_show_why_and_a_fixed_step_reruns_its_parents(
    start_kernel: Any, jp_fetch: Any, tmp_path: Any
) -> None:
    async with start_kernel() as kernel:
        await cell(kernel, SLOW)
        await cell(kernel, PIPELINE)
        await kernel.run(
            "import time\n"
            "from coflux.notebook.widgets import RunTree\n"
            f"run = pipeline.run({str(tmp_path / 'never')!r})\n"
            "tree = RunTree(run)\n"
            "def waiting():\n"
            "    return [e for s in run.steps()[1:] for e in s['executions'] if e['state'] == 'running']\n"
            "deadline = time.monotonic() + 30\n"
            "while not waiting() and time.monotonic() < deadline:\n"
            "    time.sleep(0.05)\n"
        )
        # Cancelled by the user, from the tree: the step and then the run are cancelled, with why.
        await kernel.run("tree.cancel(waiting()[0]['execution_id'])")
        _, shown = await cell(kernel, "run.result(timeout=30)")
        assert "ExecutionCancelled" in shown and "which was cancelled" in shown
        assert "in pipeline\n    return wait_for(path) + 1" in shown, shown  # where it waited
        tree = await kernel.value(
            "(tree.refresh(), [tree.run['status'], tree.run['error']['message'],"
            " [[s['target'], s['executions'][-1]['state'], s['executions'][-1]['error']['message']]"
            " for s in tree.run['steps']]])[1]"
        )
        status, reason, steps = tree
        view = await rest(jp_fetch, "runs", await kernel.value("run.id"))
        cancelled_id = view["steps"][1]["executions"][0]["execution_id"]
        assert status == "cancelled"
        assert reason == f"cancelled: it waited on {cancelled_id}, which was cancelled"
        assert steps == [
            ["pipeline", "cancelled", reason],
            ["wait_for", "cancelled", "cancelled by the user"],
        ]

        # A failed run: fix the failing cell, re-run that step with its parents; the run succeeds.
        await cell(kernel, LOAD)
        await cell(kernel, REPORT)
        run_id = await kernel.value("(failed := report.run('4,0')).id")
        assert (await finished_run(jp_fetch, run_id))["status"] == "failed"
        await cell(kernel, LOAD.replace("100 // int(row)", "100 // int(row) if int(row) else 0"))
        load_step = by_target(await rest(jp_fetch, "runs", run_id))["load"][0]["step_id"]
        assert (
            await kernel.value(f"failed.rerun({load_step!r}, parents=True) and failed.result(timeout=60)")
            == 25
        )
        data = await rest(jp_fetch, "runs", run_id)
        assert data["status"] == "succeeded" and data["result"] == 25
        [load] = by_target(data)["load"]  # reused by the workflow's re-run, not called anew
        assert [e["state"] for e in load["executions"]] == ["failed", "succeeded"]
        [report] = by_target(data)["report"]
        assert [e["state"] for e in report["executions"]] == ["failed", "succeeded"]
