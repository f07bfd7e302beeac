"""The command line a new user meets, end to end and without a terminal (output goes to pipes and
files, as in CI or `coflux submit ... >log 2>&1`): a real `coflux server`, real `coflux worker`s, and
the text people read, not only `--json`."""

from __future__ import annotations

import datetime
import json
import os
import pty
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from tests.support.harness import (
    Server,
    Worker,
    environment,
    free_port,
    run_data,
    start_run,
    wait_for_run,
    wait_until,
)

pytest_plugins = ("tests.support.foreign",)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

LOCAL_TIME = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"
DURATION = r"(\d+ ms|\d+\.\d s)"  # under load a step may take a second or more


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("cli") / "data").start()
    yield server
    server.stop()


AB_DESCRIPTOR = {"type": "object", "class": "builtins.bytes", "size": 2}


def _serve(server: Server, module: str, workspace: str = "main") -> Worker:
    worker = Worker(server, module, workspace=workspace).start()

    def registered() -> bool:
        response = server.request("GET", f"api/projects/default/workspaces/{workspace}/workflows")
        return response.status == 200 and module in json.dumps(response.json())

    if module == "e2e_cli_flows":
        wait_until(registered, 30, f"{module} to be registered in {workspace}")
    return worker


@pytest.fixture(scope="module")
def worker(server: Server) -> Iterator[Worker]:
    worker = _serve(server, "e2e_cli_flows")
    yield worker
    worker.stop()


def coflux(server: Server, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``coflux ARGS`` with the server in COFLUX_URL/COFLUX_TOKEN, its output in pipes."""
    settings = {"COFLUX_URL": server.url, "COFLUX_TOKEN": server.token, **env}
    command = [sys.executable, "-m", "coflux.cli", *args]
    return subprocess.run(
        command, env=environment(**settings), capture_output=True, text=True, timeout=60, check=False
    )


def _failed_pipeline(server: Server, tmp_path: Path) -> tuple[str, Path]:
    fixed = tmp_path / "fixed"
    run_id = start_run(server, "e2e_cli_flows:pipeline", "a.csv", str(fixed))
    assert wait_for_run(server, run_id)["status"] == "failed"
    return run_id, fixed


# -- submit ---------------------------------------------------------------------------------------


def test_submit_into_a_file_ends_every_line_and_puts_the_bare_result_last(
    server: Server, worker: Worker, tmp_path: Path
) -> None:
    log = tmp_path / "submit.log"
    with log.open("w") as out:  # `coflux submit ... >log 2>&1`
        command = [sys.executable, "-m", "coflux.cli", "submit", "e2e_cli_flows:quiet", "41"]
        env = environment(COFLUX_URL=server.url, COFLUX_TOKEN=server.token)
        status = subprocess.run(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=60, check=False
        )
    assert status.returncode == 0
    text = log.read_text()
    assert text.endswith("\n41\n")  # the tree's last line ends before the result starts
    lines = text.splitlines()
    assert re.fullmatch(r"Run R\w+ e2e_cli_flows:quiet\(41\) in main: succeeded in .+, 1 step", lines[-3])
    assert re.fullmatch(r"  e2e_cli_flows:quiet\(41\) \[R\w+:1\] #1 succeeded .+", lines[-2])

    alone = coflux(server, "submit", "e2e_cli_flows:quiet", "42")
    assert alone.stdout == "42\n"  # bare JSON on stdout, for `x=$(coflux submit ...)`
    assert "succeeded" in alone.stderr


def test_submit_on_a_terminal_shows_the_result_as_python_does_and_in_a_pipe_as_json(
    server: Server, worker: Worker
) -> None:
    leader, follower = pty.openpty()  # stdout is a terminal, as for a person typing the command
    try:
        command = [sys.executable, "-m", "coflux.cli", "submit", "e2e_cli_flows:keyed", "3"]
        env = environment(COFLUX_URL=server.url, COFLUX_TOKEN=server.token)
        status = subprocess.run(
            command, env=env, stdout=follower, stderr=subprocess.PIPE, timeout=60, check=False
        )
        os.close(follower)
        shown = b""
        while chunk := _read_terminal(leader):
            shown += chunk
    finally:
        os.close(leader)
    assert status.returncode == 0, status.stderr
    assert shown.decode().replace("\r\n", "\n") == "{3: {(3, 3): b'ab'}}\n"

    piped = coflux(server, "submit", "e2e_cli_flows:keyed", "3")
    assert json.loads(piped.stdout) == {
        "type": "dict",
        "items": [
            [
                3,
                {
                    "type": "dict",
                    "items": [[[3, 3], {"type": "object", "class": "builtins.bytes", "size": 2}]],
                },
            ]
        ],
    }


def _read_terminal(fd: int) -> bytes:
    """What the terminal holds; b"" once the writer closed it (Linux raises EIO then)."""
    try:
        return os.read(fd, 4096)
    except OSError:
        return b""


def test_submit_of_a_failing_run_names_the_error_and_the_step_where_it_began(
    server: Server, worker: Worker, tmp_path: Path
) -> None:
    failed = coflux(server, "submit", "e2e_cli_flows:pipeline", '"a.csv"', json.dumps(str(tmp_path / "no")))
    assert failed.returncode == 1 and failed.stdout == ""
    run_id = re.search(r"Run (R\w+)", failed.stderr)[1]  # type: ignore[index]
    assert (
        f"  error: builtins.ValueError: bad row 3\n    began in step {run_id}:5 e2e_cli_flows:check(3, "
        in (failed.stderr)
    )
    assert f"(coflux runs show {run_id} --verbose shows its traceback)" in failed.stderr
    assert failed.stderr.endswith("\n")


# -- runs -----------------------------------------------------------------------------------------


def test_runs_list_shows_status_workflow_start_and_duration(server: Server, tmp_path: Path) -> None:
    lister = _serve(server, "e2e_cli_flows", workspace="listing")
    try:
        empty = coflux(server, "runs", "list", "--workspace", "listing")
        assert empty.returncode == 0 and empty.stdout == "no runs in workspace listing of project default\n"
        quiet = [start_run(server, "e2e_cli_flows:quiet", n, workspace="listing") for n in (1, 2)]
        fixed = str(tmp_path / "absent")
        failed = start_run(server, "e2e_cli_flows:pipeline", "b.csv", fixed, workspace="listing")
        for run_id in [*quiet, failed]:
            wait_for_run(server, run_id)
        listed = coflux(server, "runs", "list", "--workspace", "listing")
        assert listed.returncode == 0, listed.stderr
        header, *rows = listed.stdout.splitlines()
        assert header.split() == ["RUN", "STATUS", "WORKFLOW", "STARTED", "DURATION"]
        assert [row.split()[0] for row in rows] == [failed, *reversed(quiet)]  # newest first
        assert re.fullmatch(
            rf"{failed}  failed     e2e_cli_flows:pipeline  {LOCAL_TIME}  {DURATION}", rows[0]
        )
        assert re.fullmatch(
            rf"{quiet[1]}  succeeded  e2e_cli_flows:quiet     {LOCAL_TIME}  {DURATION}", rows[1]
        )

        one = coflux(server, "runs", "list", "--workspace", "listing", "--workflow", "e2e_cli_flows:quiet")
        assert [row.split()[0] for row in one.stdout.splitlines()[1:]] == [*reversed(quiet)]
        limited = coflux(server, "runs", "list", "--workspace", "listing", "--limit", "1", "--json")
        assert [run["run_id"] for run in json.loads(limited.stdout)] == [failed]
    finally:
        lister.stop()


def test_runs_show_gives_arguments_the_failure_and_on_demand_its_traceback(
    server: Server, worker: Worker, tmp_path: Path
) -> None:
    run_id, fixed = _failed_pipeline(server, tmp_path)
    shown = coflux(server, "runs", "show", run_id)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    call = r'e2e_cli_flows:pipeline\("a.csv", "/.{40,60}…\)'  # a long argument is cut short
    title = rf"Run {run_id} {call} in main: failed in {DURATION}, 5 steps"
    assert re.fullmatch(title, lines[0])
    assert re.fullmatch(
        rf'    e2e_cli_flows:load\("a.csv"\) \[{run_id}:2\] #1 succeeded {DURATION}', lines[2]
    )
    assert lines[-3] == "  error: builtins.ValueError: bad row 3"
    assert lines[-2].startswith(f'    began in step {run_id}:5 e2e_cli_flows:check(3, "{str(fixed)[:20]}')
    assert lines[-1] == "    (--verbose shows its traceback)"
    verbose = coflux(server, "runs", "show", run_id, "--verbose")
    assert "Traceback (most recent call last):" in verbose.stdout
    assert 'e2e_cli_flows.py", line' in verbose.stdout and verbose.stdout.endswith(
        "    ValueError: bad row 3\n"
    )


def test_values_that_are_not_json_read_as_python_in_runs_show_and_the_run_view(
    server: Server, worker: Worker
) -> None:
    run_id = start_run(server, "e2e_cli_flows:keyed", 3)
    assert wait_for_run(server, run_id)["status"] == "succeeded"
    shown = coflux(server, "runs", "show", run_id)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert re.fullmatch(
        rf"    e2e_cli_flows:pair\(\(3, 3\)\) \[{run_id}:2\] #1 succeeded {DURATION}", lines[2]
    )
    assert lines[-1] == "  result: {3: {(3, 3): b'ab'}}"

    view = server.request("GET", f"api/projects/default/runs/{run_id}").json()
    root, step = view["steps"]
    assert view["result_preview"] == "{3: {(3, 3): b'ab'}}"
    assert view["result"] == {
        "type": "dict",
        "items": [[3, {"type": "dict", "items": [[[3, 3], AB_DESCRIPTOR]]}]],
    }
    assert root["arguments_preview"] == ["3"] and step["arguments_preview"] == ["(3, 3)"]
    assert step["arguments"] == [[3, 3]]  # the descriptors are as they were, beside the previews
    assert step["executions"][0]["result_preview"] == "{(3, 3): b'ab'}"


def test_a_rerun_waited_for_shows_its_outcome_and_the_tree_groups_attempts(
    server: Server, worker: Worker, tmp_path: Path
) -> None:
    run_id, fixed = _failed_pipeline(server, tmp_path)
    fixed.write_text("fixed")
    rerun = coflux(server, "runs", "rerun", f"{run_id}:1", "--wait")
    assert rerun.returncode == 0, rerun.stderr
    assert rerun.stdout == f"{run_id}:1:2 succeeded: 60\n"
    assert f"Run {run_id} e2e_cli_flows:pipeline" in rerun.stderr  # the tree it followed

    shown = coflux(server, "runs", "show", run_id).stdout.splitlines()
    assert re.fullmatch(
        rf".* \[{run_id}:1\] #1 failed {DURATION}, #2 succeeded {DURATION} \(re-run\)", shown[1]
    )
    assert shown[2] == "    from #1 (main):"
    assert shown[3].startswith('      e2e_cli_flows:load("a.csv") ')
    assert re.fullmatch(rf"      e2e_cli_flows:check\(3, .+\) \[{run_id}:5\] #1 failed {DURATION}", shown[6])
    assert shown[7] == "    from #2 (main):"
    assert re.fullmatch(
        rf"      e2e_cli_flows:check\(3, .+\) \[{run_id}:9\] #1 succeeded {DURATION}", shown[11]
    )
    assert shown[-1] == "  result: 60"

    fixed.unlink()
    again = coflux(server, "runs", "rerun", f"{run_id}:5", "--wait")  # #1's failed child, broken again
    assert again.returncode == 1 and again.stdout == ""
    assert again.stderr.endswith(f"\n{run_id}:5:2 failed: builtins.ValueError: bad row 3\n")
    assert run_data(server, run_id)["status"] == "succeeded"  # a child's re-run leaves the run's outcome


def test_runs_logs_reads_in_local_time_and_says_when_there_are_none(
    server: Server, worker: Worker, tmp_path: Path
) -> None:
    run_id, _ = _failed_pipeline(server, tmp_path)
    entries = server.request("GET", f"api/projects/default/executions/{run_id}:2:1/logs").json()["logs"]
    assert [e["message"] for e in entries] == ["loading a.csv", "three rows"]

    def local(timestamp: float) -> str:  # TZ below: five and a half hours east of UTC
        zone = datetime.timezone(datetime.timedelta(hours=5, minutes=30))
        return datetime.datetime.fromtimestamp(timestamp, zone).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]

    logs = coflux(server, "runs", "logs", f"{run_id}:2:1", TZ="IST-5:30")
    assert logs.returncode == 0, logs.stderr
    assert logs.stdout.splitlines() == [
        f"{local(entries[0]['timestamp'])} info    loading a.csv",
        f"{local(entries[1]['timestamp'])} stdout  three rows",
    ]
    none = coflux(server, "runs", "logs", f"{run_id}:3:1")
    assert none.returncode == 0 and none.stdout == f"no logs for {run_id}:3:1\n"
    whole = coflux(server, "runs", "logs", run_id, TZ="IST-5:30")
    assert whole.stdout.splitlines()[:2] == [
        f'{run_id}:2:1 e2e_cli_flows:load("a.csv")',
        f"  {local(entries[0]['timestamp'])} info    loading a.csv",
    ]


# -- why a run can't progress ---------------------------------------------------------------------


def test_a_run_waiting_for_a_worker_says_which_target_nobody_serves(server: Server, worker: Worker) -> None:
    command = [sys.executable, "-m", "coflux.cli", "submit", "e2e_cli_flows:report", '"x"']
    env = environment(COFLUX_URL=server.url, COFLUX_TOKEN=server.token)
    submit = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    parser: Worker | None = None
    try:
        assert submit.stderr is not None
        first = submit.stderr.readline()
        run_id = re.match(r"Run (R\w+) e2e_cli_flows:report\(\"x\"\) in main: running", first)[1]  # type: ignore[index]
        hint = "queued: no worker serves e2e_cli_parse:parse in workspace main"
        assert submit.stderr.readline() == f"  1 step {hint}\n"  # said while it waits, in a log

        shown = coflux(server, "runs", "show", run_id)
        assert f"\n  1 step {hint}\n" in shown.stdout
        assert f'e2e_cli_parse:parse("x") [{run_id}:2] #1 queued (no worker)' in shown.stdout
        view = run_data(server, run_id)
        assert view["blocked"] == [{"reason": "no_worker", "message": hint, "steps": 1}]

        parser = _serve(server, "e2e_cli_parse")
        stdout, stderr = submit.communicate(timeout=60)
        assert submit.returncode == 0, stderr
        assert stdout == '"X"\n'
        assert hint not in stderr  # said once (read above), not at every poll
    finally:
        if submit.poll() is None:
            submit.kill()
            submit.communicate()
        if parser is not None:
            parser.stop()


def test_a_run_in_a_paused_workspace_says_so(server: Server) -> None:
    held = _serve(server, "e2e_cli_flows", workspace="held")
    try:
        assert coflux(server, "workspaces", "pause", "held").returncode == 0
        run_id = start_run(server, "e2e_cli_flows:quiet", 5, workspace="held")
        shown = coflux(server, "runs", "show", run_id)
        assert "\n  1 step queued: workspace held is paused\n" in shown.stdout
        assert f"e2e_cli_flows:quiet(5) [{run_id}:1] #1 queued (workspace paused)" in shown.stdout
        assert coflux(server, "workspaces", "resume", "held").returncode == 0
        assert wait_for_run(server, run_id)["status"] == "succeeded"
        assert "paused" not in coflux(server, "runs", "show", run_id).stdout
    finally:
        held.stop()


# -- errors a new user meets ----------------------------------------------------------------------


def _one_line(completed: subprocess.CompletedProcess[str], status: int) -> str:
    assert completed.returncode == status, completed.stdout + completed.stderr
    assert completed.stdout == "" and "Traceback" not in completed.stderr
    (line,) = completed.stderr.splitlines()
    return line


def test_errors_are_one_line_that_says_what_to_do(
    server: Server, foreign: Callable[[int, str, bytes], str]
) -> None:
    elsewhere = foreign(404, "text/html", b"<!DOCTYPE html><html>Not Found</html>").rstrip("/")
    wrong = _one_line(coflux(server, "runs", "show", "Rx", COFLUX_URL=f"{elsewhere}/nowhere"), 1)
    assert wrong == (
        f"error: {elsewhere}/nowhere is not a Coflux server (it answers HTTP 404 with an HTML page); "
        f"use the server's Coflux URL, e.g. {elsewhere}/nowhere/coflux"
    )
    # On Coflux's own server, a wrong path finds the API (and says so): nothing to fix.
    root = server.url.removesuffix("/coflux")
    found = coflux(server, "projects", "list", COFLUX_URL=f"{root}/nowhere")
    assert found.returncode == 0, found.stderr
    assert found.stderr == f"coflux: {root}/nowhere is not Coflux's address; using {server.url}\n"

    down = f"http://127.0.0.1:{free_port()}/coflux"
    refused = _one_line(coflux(server, "runs", "list", COFLUX_URL=down), 1)
    assert (
        refused.startswith(f"error: cannot reach the Coflux server at {down}: ")
        and "Connection refused" in refused
    )

    for token in ({"COFLUX_TOKEN": ""}, {"COFLUX_TOKEN": "not-a-token"}):
        line = _one_line(coflux(server, "runs", "list", **token), 1)
        assert "--token" in line and "COFLUX_TOKEN" in line and "coflux tokens create" in line

    no_scheme = coflux(server, "runs", "list", COFLUX_URL=server.url.removeprefix("http://"))
    assert no_scheme.returncode == 2
    assert "must be http(s)://" in no_scheme.stderr and "(from COFLUX_URL)" in no_scheme.stderr
    assert "Traceback" not in no_scheme.stderr


# -- coflux run NOTEBOOK --url ... ----------------------------------------------------------------


def _marking_notebook(folder: Path) -> tuple[Path, Path]:
    """A notebook whose first cell leaves a file behind: proof that a kernel ran it."""
    marker = folder / "ran"
    notebook = folder / "nb" / "marking.ipynb"
    notebook.parent.mkdir()
    cell = new_code_cell(f"open({str(marker)!r}, 'w').close()")
    nbformat.write(new_notebook(cells=[cell]), notebook)
    return notebook, marker


def test_coflux_run_checks_the_server_and_the_token_before_a_kernel_starts(
    server: Server, tmp_path: Path, foreign: Callable[[int, str, bytes], str]
) -> None:
    notebook, marker = _marking_notebook(tmp_path)
    submit = server.request("POST", "api/projects/default/tokens", {"scope": "submit"}).json()["token"]
    down = f"http://127.0.0.1:{free_port()}/coflux"
    elsewhere = foreign(404, "text/html", b"<html>Not Found</html>").rstrip("/")
    cases = {
        "wrong token": (server.url, "not-a-token", "error: the token was not accepted"),
        "other project": (server.url, server.worker_token("elsewhere"), "not valid for project 'default'"),
        "submit token": (server.url, submit, "error: a submit token can't run a notebook"),
        "not Coflux": (f"{elsewhere}/x", server.token, f"error: {elsewhere}/x is not a Coflux server"),
        "nobody there": (down, server.token, f"error: cannot reach the Coflux server at {down}: "),
    }
    for case, (url, token, expected) in cases.items():
        completed = coflux(server, "run", str(notebook), "--url", url, COFLUX_TOKEN=token)
        line = _one_line(completed, 1)
        assert expected in line, (case, line)
        assert not marker.exists(), case  # no kernel ran the notebook
    unreachable = _one_line(coflux(server, "run", str(notebook), "--url", down), 1)
    assert unreachable.endswith(
        "(is it running? `coflux run` connects to --url only, whatever COFLUX_URL says)"
    )
