"""No token on a command line: `coflux run` starts its embedded server and the notebook's kernel with
none in their arguments (every local user can read those), and the kernel holds a worker token of the
run's project, never the server's own token."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import nbformat
import psutil
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from tests.support.harness import Server, coflux_run, environment, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

WORKFLOW = "%%coflux_workflow\ndef double(n):\n    return 2 * n"
RUN = "print(double.run(21).result(timeout=30))"


def _notebook(folder: Path, *sources: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "secrets_check.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell(s) for s in sources]), path)
    return path


def _pause(ready: Path, release: Path) -> str:
    """A cell that says it is running, then waits for the test to look around."""
    return (
        "import pathlib, time\n"
        f"pathlib.Path({str(ready)!r}).write_text('ready')\n"
        "deadline = time.monotonic() + 60\n"
        f"while not pathlib.Path({str(release)!r}).exists() and time.monotonic() < deadline:\n"
        "    time.sleep(0.05)"
    )


def _admin_token(server: psutil.Process) -> str:
    """The embedded server's own token, wherever it was handed over."""
    arguments = server.cmdline()
    if "--token" in arguments:
        return arguments[arguments.index("--token") + 1]
    token: str = server.environ()["COFLUX_SERVER_TOKEN"]
    return token


def test_coflux_run_puts_no_token_on_a_command_line_and_gives_the_kernel_a_worker_token(
    tmp_path: Path,
) -> None:
    ready, release = tmp_path / "ready", tmp_path / "release"
    notebook = _notebook(tmp_path / "nb", _pause(ready, release), WORKFLOW, RUN)
    command = [sys.executable, "-m", "coflux.cli", "run", str(notebook), "--project", "secrets"]
    run = subprocess.Popen(
        command, env=environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_until(lambda: ready.exists() or run.poll() is not None, 90, "the notebook's first cell")
        assert run.poll() is None, run.communicate()
        processes = psutil.Process(run.pid).children(recursive=True)
        (server,) = [p for p in processes if "server" in p.cmdline() and "coflux.cli" in p.cmdline()]
        (kernel,) = [p for p in processes if any("ipykernel" in a for a in p.cmdline())]
        admin = _admin_token(server)
        for process in [psutil.Process(run.pid), *processes]:
            assert admin not in " ".join(process.cmdline()), process.cmdline()
        kernel_token = kernel.environ()["COFLUX_TOKEN"]
        assert kernel_token.startswith("cfx_worker_") and kernel_token != admin
        assert "COFLUX_SERVER_TOKEN" not in kernel.environ()
        release.write_text("go")
        stdout, stderr = run.communicate(timeout=90)
    finally:
        release.write_text("go")
        if run.poll() is None:
            run.kill()
            run.communicate()
    assert run.returncode == 0, stdout + stderr
    assert "in secrets/main: succeeded" in stdout and "result: 42" in stdout  # the token serves its project


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    server = Server(tmp_path / "data").start()
    yield server
    server.stop()


@pytest.mark.parametrize("given", ["admin", "project"])
def test_coflux_run_against_a_server_gives_the_kernel_a_project_token(
    server: Server, tmp_path: Path, given: str
) -> None:
    project_token = server.request("GET", "api/projects/shared/token").json()["token"]
    token = server.token if given == "admin" else project_token
    shown = "import os\nprint(os.environ['COFLUX_TOKEN'])"
    notebook = _notebook(tmp_path / "nb", shown, WORKFLOW, RUN)
    output = tmp_path / "out.ipynb"
    arguments = ["--url", server.url, "--token", token, "--project", "shared", "--output", str(output)]
    completed = coflux_run(notebook, *arguments)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    kernel_token = nbformat.read(output, as_version=4).cells[0].outputs[0]["text"].strip()
    assert kernel_token.startswith("cfx_worker_")
    if given == "project":
        assert kernel_token == project_token  # already a project token: passed on as it is
    assert "in shared/main: succeeded" in completed.stdout and "result: 42" in completed.stdout
