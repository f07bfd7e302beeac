"""Notebook kernels as workers: real kernels started by a real Jupyter server (pytest-jupyter) with
the extension, defining targets with the magics (loaded automatically), seen through REST."""

from __future__ import annotations

import json
import os
import re
import signal
from pathlib import Path
from typing import Any

import pytest

from tests.support.harness import free_port
from tests.support.jupyter import by_target, finished_run, rest, wait_for

pytest_plugins = ("pytest_jupyter.jupyter_server",)

pytestmark = pytest.mark.e2e


TASK = """%%coflux_task
def square(x):
    import os, time
    time.sleep(0.3)
    print(f"squaring {x}")
    return [x * x, os.getpid()]
"""

WORKFLOW = """%%coflux_workflow
def squares(n):
    handles = [square.submit(i) for i in range(n)]
    return [h.result() for h in handles]
"""


async def test_magics_define_targets_that_kernels_run(start_kernel: Any, jp_fetch: Any) -> None:
    async with start_kernel() as first, start_kernel() as second:
        assert "module notebook" in await first.run("%coflux status")
        await first.run(TASK)
        await first.run(WORKFLOW)
        await second.run(TASK)
        pids = {
            await first.value("__import__('os').getpid()"),
            await second.value("__import__('os').getpid()"),
        }
        # The workflow's value through the kernel that defined it: Workflow.run from a cell.
        output = await first.run("run = squares.run(8)\nprint(run.result(timeout=60))")
        values = json.loads(output.strip())
        assert [v for v, _ in values] == [i * i for i in range(8)]
        assert {pid for _, pid in values} == pids, "both kernels of the workspace took steps"
        assert "squaring" not in output, "an execution's prints go to its logs, not the cell"
        run = await rest(jp_fetch, "runs", await first.value("run.id"))
        execution_id = by_target(run)["square"][3]["executions"][0]["execution_id"]
        logs = await rest(jp_fetch, "executions", execution_id, "logs")
        assert [entry["message"] for entry in logs["logs"]] == ["squaring 3"]
        # Mistakes are the cell's errors, with a clear message; the kernel carries on.
        with pytest.raises(AssertionError, match=r"UsageError.*unrecognized arguments: --bogus"):
            await first.run("%%coflux_task --bogus\ndef f():\n    pass\n")
        with pytest.raises(AssertionError, match=r"UsageError.*exactly one function \(found: none\)"):
            await first.run("%%coflux_task\nx = 1\n")
        with pytest.raises(AssertionError, match="SyntaxError"):
            await first.run("%%coflux_task\ndef f(:\n    pass\n")
        with pytest.raises(AssertionError, match="ZeroDivisionError"):
            await first.run("%%coflux_task\nboom = 1 / 0\ndef f():\n    pass\n")
        run_id = await first.value("run.id")
        assert f"{run_id}  succeeded  notebook:squares" in await first.run("%coflux runs squares")
        assert "no runs of notebook:square in main" in await first.run("%coflux runs square")
        listed = await rest(jp_fetch, "workspaces", "main", "runs")
        assert [r["target"] for r in listed["runs"]] == ["squares"]
        assert listed["runs"][0]["module"] == "notebook"
        assert listed["runs"][0]["status"] == "succeeded"


PIPELINE = [
    "%%coflux_task --cache\ndef count(n):\n    return n\n",
    "%%coflux_task --cache\ndef scale(n):\n    return n * 2\n",
    "%%coflux_task --cache\ndef total(n):\n    return sum(range(n))\n",
    "%%coflux_workflow\ndef pipeline(n):\n    return [count(n), scale(n), total(n)]\n",
]


def latest_states(data: dict[str, Any]) -> dict[str, str]:
    return {target: steps[0]["executions"][-1]["state"] for target, steps in by_target(data).items()}


async def test_editing_a_task_cell_reexecutes_only_that_task(start_kernel: Any, jp_fetch: Any) -> None:
    async with start_kernel() as kernel:
        for cell in PIPELINE:
            await kernel.run(cell)
        first = await finished_run(jp_fetch, await kernel.value("pipeline.run(4).id"))
        assert first["result"] == [4, 8, 6]
        # The same code reformatted and commented keeps its version: every task is a cache hit.
        await kernel.run("%%coflux_task --cache\ndef scale(n):  # doubles\n    return n*2\n")
        same = await finished_run(jp_fetch, await kernel.value("pipeline.run(4).id"))
        assert latest_states(same) == {
            "pipeline": "succeeded",
            "count": "cached",
            "scale": "cached",
            "total": "cached",
        }
        # An edited cell: only that task executes again; its neighbours come from the cache.
        await kernel.run("%%coflux_task --cache\ndef scale(n):\n    return n * 3\n")
        second = await finished_run(jp_fetch, await kernel.value("pipeline.run(4).id"))
        assert second["result"] == [4, 12, 6]
        assert latest_states(second) == {
            "pipeline": "succeeded",
            "count": "cached",
            "scale": "succeeded",
            "total": "cached",
        }
        first_ids = {t: s[0]["executions"][-1]["execution_id"] for t, s in by_target(first).items()}
        for name in ("count", "total"):
            assert by_target(second)[name][0]["executions"][-1]["cached_from"] == first_ids[name]


@pytest.mark.parametrize("ending", ["killed", "shut down"])
async def test_a_kernel_lost_mid_run_has_its_execution_abandoned_and_retried(
    start_kernel: Any, jp_fetch: Any, tmp_path: Path, ending: str
) -> None:
    marker = tmp_path / "first-attempt"
    task = (
        "%%coflux_task --retries 1\n"
        "def slow(x):\n"
        "    import os, pathlib, time\n"
        f"    marker = pathlib.Path({str(marker)!r})\n"
        "    if not marker.exists():\n"
        "        marker.write_text(str(os.getpid()))\n"
        "        time.sleep(120)\n"
        "    return x + 1\n"
    )
    async with start_kernel() as doomed, start_kernel() as survivor:
        await doomed.run("%coflux module jobs")
        await survivor.run("%coflux module jobs")
        await doomed.run(task)  # only the doomed kernel serves the task at first
        # The survivor's workflow calls the task (with its options) without serving it yet.
        await survivor.run(
            "import coflux as cf\n"
            "slow = cf.Task(lambda x: None, name='slow', module='jobs').with_options(retries=1)"
        )
        await survivor.run("%%coflux_workflow\ndef job(x):\n    return slow(x)\n")
        started = await rest(
            jp_fetch,
            "workspaces",
            "main",
            "runs",
            method="POST",
            body=json.dumps({"module": "jobs", "target": "job", "arguments": [41]}),
        )
        run_id = started["run_id"]

        async def marked() -> bool:
            return marker.exists() and marker.read_text() != ""

        await wait_for(marked, 30, "the first attempt to start")
        assert int(marker.read_text()) == await doomed.value("__import__('os').getpid()")
        await survivor.run(task)
        if ending == "killed":
            os.kill(int(marker.read_text()), signal.SIGKILL)
        else:  # what the notebook's "Shut Down Kernel" does: the worker closes its connection
            await jp_fetch("api", "kernels", doomed.id, method="DELETE")
        data = await finished_run(jp_fetch, run_id, timeout=60)
        assert data["status"] == "succeeded" and data["result"] == 42, json.dumps(data, indent=1)
        slow = by_target(data)["slow"][0]["executions"]
        assert [e["state"] for e in slow] == ["abandoned", "succeeded"]
        assert slow[1]["retry"] is True


FRAME = """class Frame:
    \"\"\"A data frame's stand-in: defined in the notebook, so only a pickle can carry it.\"\"\"

    def __init__(self, rows):
        self.rows = rows
"""


async def test_a_kernel_needs_nothing_but_its_worker_token(start_kernel: Any, jp_fetch: Any) -> None:
    async with start_kernel() as kernel:
        token = await kernel.value("__import__('os').environ['COFLUX_TOKEN']")
        assert token.startswith("cfx_worker_"), "the server gives its kernels a worker token"
        await kernel.run(FRAME)
        await kernel.run(
            "%%coflux_workflow\ndef total(frame):\n    return sum(sum(row) for row in frame.rows)\n"
        )
        # Pickled arguments: one inline, one large enough to travel as a blob.
        assert await kernel.value("total.run(Frame([[1, 2], [3, 4]])).result(timeout=60)") == 10
        big = "Frame([[i, i] for i in range(20000)])"
        assert await kernel.value(f"total.run({big}).result(timeout=60)") == 2 * sum(range(20000))
        # The run tree widget follows the run over the events socket.
        await kernel.run(
            "import time\n"
            "from coflux.notebook import live\n"
            "from coflux.notebook.widgets import RunTree\n"
            "run = total.run(Frame([[5]]))\n"
            "tree = RunTree(run)\n"
            "endpoint = live.Endpoint.of(run.client)\n"
            "deadline = time.monotonic() + 30\n"
            "while time.monotonic() < deadline:\n"
            "    if live.watcher().connected(endpoint) and tree.finished:\n"
            "        break\n"
            "    time.sleep(0.05)\n"
        )
        assert await kernel.value("[live.watcher().connected(endpoint), tree.run['status']]") == [
            True,
            "succeeded",
        ]
        # A workspace of its own, based on main, made and served with the same token.
        assert "now serves and runs in workspace 'feature'" in await kernel.run(
            "%coflux workspace feature --base main"
        )
        assert await kernel.value("total.run(Frame([[7]])).result(timeout=60)") == 7
    workspaces = (await rest(jp_fetch, "workspaces"))["workspaces"]
    assert {"name": "feature", "base": "main", "state": "active"} in workspaces


async def test_a_kernel_reads_coflux_toml_from_its_notebooks_folder(
    start_kernel: Any, jp_fetch: Any, jp_root_dir: Path
) -> None:
    """The server gives kernels its URL and a worker token; the project folder's coflux.toml says
    which workspace (and concurrency) its notebooks' kernels use, as it does for every command."""
    (jp_root_dir / "analysis").mkdir()
    (jp_root_dir / "coflux.toml").write_text('[coflux]\nworkspace = "from-toml"\nconcurrency = 2\n')
    async with start_kernel("analysis") as kernel:
        assert await kernel.value("__import__('os').getcwd()") == str(jp_root_dir / "analysis")
        session = "__import__('coflux.notebook.kernel', fromlist=['current']).current()"
        assert await kernel.value(f"[{session}.workspace, {session}.concurrency]") == ["from-toml", 2]
        await kernel.run("%%coflux_workflow\ndef twice(x):\n    return 2 * x\n")
        workflows = await rest(jp_fetch, "workspaces", "from-toml", "workflows")
        assert [w["name"] for w in workflows["workflows"]] == ["twice"]  # served from that workspace


NOT_DECLARED = "targets: none yet (%%coflux_task, %%coflux_workflow)\n"


async def test_status_says_where_the_kernel_is_connected_or_why_it_waits(start_kernel: Any) -> None:
    async with start_kernel() as kernel:
        await kernel.run(TASK)
        await kernel.run(WORKFLOW)
        url = await kernel.value("__import__('os').environ['COFLUX_URL']")
        session = await kernel.value(
            "__import__('coflux.notebook').notebook.current().connection().session_id"
        )
        targets = "targets:\n  notebook:square (task)\n  notebook:squares (workflow)\n"
        assert await kernel.run("%coflux status") == (
            f"Coflux: connected to {url}: project default, workspace main, session {session}\n"
            f"module notebook, concurrency 4\n{targets}"
        )
        # Given the Jupyter server's page (what the browser shows): the API under it.
        page = url.removesuffix("coflux") + "lab/tree/report.ipynb"
        said = (await kernel.run(f"%coflux connect {page}")).splitlines()
        assert said[0] == f"Coflux: {page} is not Coflux's address; using {url}"
        connected = rf"Coflux: connected to {re.escape(url)}: project default, workspace main, session \w+"
        assert re.fullmatch(connected, said[1]), said
        assert await kernel.value("__import__('os').environ['COFLUX_URL']") == url
        # Pointed at a port where nothing listens: it says it waits, and why.
        nowhere = f"http://127.0.0.1:{free_port()}/coflux"
        await kernel.run(f"from coflux.notebook import current\ncurrent().connect({nowhere!r})")

        async def waiting() -> bool:
            return bool(await kernel.value("current().connection().state == 'waiting'"))

        await wait_for(waiting, 30, "the kernel's worker to wait for the server")
        assert await kernel.run("%coflux status") == (
            f"Coflux: waiting for {nowhere}: connection refused; retrying\n"
            f"module notebook, concurrency 4\n{targets}"
        )


async def test_a_refused_token_is_said_by_connect_status_and_a_target_cell(
    start_kernel: Any, jp_fetch: Any
) -> None:
    other = json.loads((await jp_fetch("coflux", "api", "projects", "other", "token")).body)["token"]
    async with start_kernel() as kernel:
        url = await kernel.value("__import__('os').environ['COFLUX_URL']")
        refused = (
            f"{url} refused this kernel (this token is not valid for project 'default': a project "
            "token grants only the project it was made for, on the server that made it): pass a "
            "worker token of project default with %coflux connect --token T (`coflux tokens create "
            "--project default --scope worker` makes one, with the server's admin token)"
        )
        with pytest.raises(AssertionError) as failed:
            await kernel.run(f"%coflux connect --token {other}")
        assert f"UsageError: %coflux connect: {refused}" in str(failed.value)
        assert await kernel.run("%coflux status") == (
            f"Coflux: {refused}\nmodule notebook, concurrency 4\n{NOT_DECLARED}"
        )
        assert await kernel.run(TASK) == (
            f"Coflux: <task notebook:square> is defined in this kernel but not declared: {refused}\n"
        )
