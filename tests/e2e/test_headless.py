"""`coflux run NOTEBOOK` end to end: a real CLI process, real kernels through nbclient, a real server
(a harness `coflux server` with `coflux worker`s, or the embedded one)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from tests.support.harness import Server, Worker, coflux_run, run_data, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    server = Server(tmp_path / "data").start()
    yield server
    server.stop()


def _serve(server: Server, module: str, workflow: str) -> Worker:
    """A `coflux worker` for ``module``, once ``workflow`` is registered in default/main."""
    worker = Worker(server, module).start()

    def registered() -> bool:
        response = server.request("GET", "api/projects/default/workspaces/main/workflows")
        return response.status == 200 and workflow in json.dumps(response.json())

    wait_until(registered, 30, f"{module}:{workflow} to be registered")
    return worker


def _notebook(folder: Path, *cells: Any) -> Path:
    path = folder / "analysis.ipynb"
    nbformat.write(new_notebook(cells=list(cells)), path)
    return path


def _connect(server: Server) -> list[str]:
    return ["--url", server.url, "--token", server.token]


def test_a_parameterized_notebook_starts_a_run_that_succeeds(server: Server, tmp_path: Path) -> None:
    worker = _serve(server, "e2e_flows", "fanout")
    notebook = _notebook(
        tmp_path,
        new_markdown_cell("# Fan-out"),
        new_code_cell("n = 2", metadata={"tags": ["parameters"]}),
        new_code_cell(
            "import coflux as cf\nrun = cf.Client().start_run('e2e_flows:fanout', n)\nprint(run.id)"
        ),
    )
    output = tmp_path / "out.ipynb"
    try:
        completed = coflux_run(notebook, "--param", "n=5", "--output", str(output), *_connect(server))
    finally:
        worker.stop()

    assert completed.returncode == 0, completed.stdout + completed.stderr
    match = re.search(
        r"Run (R\w+) e2e_flows:fanout\(5\) in default/main: succeeded in [\d.]+ s, 6 steps", completed.stdout
    )
    assert match, completed.stdout
    assert "result: 30" in completed.stdout
    data = run_data(server, match.group(1))
    assert data["steps"][0]["arguments"] == [5] and data["result"] == 30
    executed = nbformat.read(output, as_version=4)
    injected = executed.cells[2]
    assert injected.metadata["tags"] == ["injected-parameters"] and "n = 5" in injected.source
    assert executed.cells[3].outputs[0]["text"].strip() == match.group(1)


def test_a_failing_workflow_names_the_step_and_the_error(server: Server, tmp_path: Path) -> None:
    worker = _serve(server, "e2e_headless", "fails")
    notebook = _notebook(
        tmp_path,
        new_code_cell("message = 'default'", metadata={"tags": ["parameters"]}),
        new_code_cell("import coflux as cf\nrun = cf.Client().start_run('e2e_headless:fails', message)"),
    )
    try:
        completed = coflux_run(notebook, "-p", "message=disk on fire", "--json", *_connect(server))
    finally:
        worker.stop()

    assert completed.returncode == 1, completed.stdout + completed.stderr
    report = json.loads(completed.stdout)
    assert report["ok"] is False and report["cell_error"] is None
    [run] = report["runs"]
    assert run["workflow"] == "e2e_headless:fails" and run["status"] == "failed"
    step = run["failed_step"]
    assert step["step_id"] == f"{run['run_id']}:2" and step["target"] == "explode"
    assert step["error_type"].endswith("ValueError") and step["message"] == "disk on fire"


def test_a_failing_cell_is_reported_and_the_notebook_saved(server: Server, tmp_path: Path) -> None:
    notebook = _notebook(
        tmp_path,
        new_code_cell("rows = {'a': 1}"),
        new_code_cell("total = rows['b']"),
        new_code_cell("print('not reached')"),
    )
    output = tmp_path / "out.ipynb"
    completed = coflux_run(notebook, "--output", str(output), *_connect(server))

    assert completed.returncode == 1, completed.stdout + completed.stderr
    assert "cell 1 (In [2]) failed: KeyError: 'b'" in completed.stdout
    assert "total = rows['b']" in completed.stdout
    assert "Traceback" not in completed.stdout + completed.stderr.replace("[IPKernelApp]", "")
    executed = nbformat.read(output, as_version=4)
    [error] = executed.cells[1].outputs
    assert error["output_type"] == "error" and error["ename"] == "KeyError"
    assert executed.cells[2].outputs == []


def test_without_a_url_an_embedded_server_serves_the_notebook_s_own_worker(tmp_path: Path) -> None:
    notebook = _notebook(
        tmp_path,
        new_code_cell("n = 3", metadata={"tags": ["parameters"]}),
        new_code_cell(
            "import coflux as cf\n\n"
            "@cf.task()\n"
            "def double(x: int) -> int:\n"
            "    return 2 * x\n\n"
            "@cf.workflow()\n"
            "def total(n: int) -> int:\n"
            "    return sum(double(i) for i in range(n))\n"
        ),
        new_code_cell(
            "with cf.Worker([double, total], register=True) as worker:\n"
            "    worker.wait_connected(10)\n"
            "    print(total.run(n).result(timeout=20))\n"
        ),
    )
    completed = coflux_run(notebook, "--param", "n=4", "--json")

    assert completed.returncode == 0, completed.stdout + completed.stderr
    report = json.loads(completed.stdout)
    assert report["embedded"] is True and report["url"] is None
    assert report["parameters"] == {"n": 4}
    [run] = report["runs"]
    assert run["workflow"] == "__main__:total" and run["arguments"] == [4]
    assert run["status"] == "succeeded" and run["result"] == 12 and run["steps"] == 5


def test_runs_left_running_are_awaited_while_the_kernel_serves_them(server: Server, tmp_path: Path) -> None:
    notebook = _notebook(
        tmp_path,
        new_code_cell(
            "import time\nimport coflux as cf\n\n"
            "@cf.workflow()\n"
            "def sleepy(seconds: float) -> float:\n"
            "    time.sleep(seconds)\n"
            "    return seconds\n\n"
            "worker = cf.Worker([sleepy], register=True)\n"
            "worker.start()\n"
            "worker.wait_connected(10)\n"
            "run = sleepy.run(1.0)  # not awaited: the cells end first\n"
        ),
    )
    completed = coflux_run(notebook, "--json", *_connect(server))

    assert completed.returncode == 0, completed.stdout + completed.stderr
    [run] = json.loads(completed.stdout)["runs"]
    assert run["status"] == "succeeded" and run["result"] == 1.0 and run["duration"] >= 1.0


def test_a_cell_running_past_the_timeout_is_interrupted(server: Server, tmp_path: Path) -> None:
    notebook = _notebook(
        tmp_path,
        new_code_cell("import time\ntime.sleep(60)"),
        new_code_cell("print('not reached')"),
    )
    output = tmp_path / "out.ipynb"
    completed = coflux_run(notebook, "--timeout", "2", "--output", str(output), *_connect(server))

    assert completed.returncode == 1, completed.stdout + completed.stderr
    assert "cell 0 (In [1]) failed: CellTimeoutError: the cell ran longer than 2 s" in completed.stdout
    executed = nbformat.read(output, as_version=4)
    assert executed.cells[1].outputs == []


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    notebook = _notebook(tmp_path, new_code_cell("x = 1"))
    missing = coflux_run(tmp_path / "missing.ipynb")
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    bad_key = coflux_run(notebook, "--param", "not-a-name=1")
    assert bad_key.returncode == 2 and "not a Python identifier" in bad_key.stderr
    assert "Traceback" not in missing.stderr + bad_key.stderr
