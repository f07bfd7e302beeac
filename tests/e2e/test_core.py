"""End to end with real processes: `coflux server`, two `coflux worker`s, REST and `coflux submit`."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.harness import (
    Server,
    Worker,
    environment,
    run_data,
    start_run,
    wait_for_run,
    wait_until,
)

pytestmark = pytest.mark.e2e


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    server = Server(tmp_path / "data").start()
    yield server
    server.stop()


@pytest.fixture
def quick_server(tmp_path: Path) -> Iterator[Server]:
    """A server that abandons a disconnected worker's executions after 2 s (instead of 10 s)."""
    server = Server(tmp_path / "data", env={"COFLUX_RECONNECT_TIMEOUT": str(QUICK_RECONNECT)}).start()
    yield server
    server.stop()


QUICK_RECONNECT = 2.0


@pytest.fixture
def workers(server: Server) -> Iterator[list[Worker]]:
    started = [Worker(server).start(), Worker(server).start()]
    yield started
    for worker in started:
        worker.stop()


def _sessions_used(data: dict[str, object]) -> set[str]:
    return {e["execution_id"] for s in data["steps"] for e in s["executions"]}  # type: ignore[index, union-attr]


def test_fanout_over_rest_and_submit(server: Server, workers: list[Worker]) -> None:
    run_id = start_run(server, "e2e_flows:fanout", 20)
    data = wait_for_run(server, run_id)
    assert data["status"] == "succeeded"
    assert data["result"] == sum(i * i for i in range(20))
    assert data["error"] is None
    assert len(data["steps"]) == 21
    root, children = data["steps"][0], data["steps"][1:]
    assert root["step_id"] == f"{run_id}:1" and root["parent_step_id"] is None
    assert root["module"] == "e2e_flows" and root["target"] == "fanout"
    for step in children:
        assert step["parent_step_id"] == root["step_id"]
        assert step["target"] == "square"
        [execution] = step["executions"]
        assert execution["execution_id"] == f"{step['step_id']}:1"
        assert execution["attempt"] == 1
        assert execution["workspace"] == "main"
        assert execution["state"] == "succeeded"
        assert execution["cached"] is False

    completed = subprocess.run(
        [sys.executable, "-m", "coflux.cli", "submit", "e2e_flows:fanout", "7", "--json"],
        env=environment(COFLUX_URL=server.url, COFLUX_TOKEN=server.token),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr.decode()
    report = json.loads(completed.stdout)
    assert report["status"] == "succeeded"
    assert report["result"] == sum(i * i for i in range(7))


def test_remote_value_error_is_caught_as_value_error(server: Server, workers: list[Worker]) -> None:
    data = wait_for_run(server, start_run(server, "e2e_flows:catches", "kaput"))
    assert data["status"] == "succeeded"
    assert data["result"] == "caught ValueError: kaput"
    failed = data["steps"][1]["executions"][0]
    assert failed["state"] == "failed"
    assert failed["error"]["type"] == "builtins.ValueError"
    assert "kaput" in failed["error"]["message"]
    assert "Traceback" in failed["error"]["traceback"]


def test_a_workers_traceback_shows_the_modules_file_and_line_not_the_framework(
    server: Server, workers: list[Worker]
) -> None:
    data = wait_for_run(server, start_run(server, "e2e_flows:catches", "kaput"))
    text = data["steps"][1]["executions"][0]["error"]["traceback"]
    module = Path(__file__).resolve().parent / "modules" / "e2e_flows.py"
    assert text == (
        "Traceback (most recent call last):\n"
        f'  File "{module}", line 22, in explode\n'
        "    raise ValueError(message)\n"
        "ValueError: kaput\n"
    )


def test_retry_after_one_failure_has_two_executions(
    server: Server, workers: list[Worker], tmp_path: Path
) -> None:
    data = wait_for_run(server, start_run(server, "e2e_flows:flaky_flow", str(tmp_path / "marker")))
    assert data["status"] == "succeeded"
    assert data["result"] == "second time lucky"
    executions = data["steps"][1]["executions"]
    assert [e["state"] for e in executions] == ["failed", "succeeded"]
    assert [e["attempt"] for e in executions] == [1, 2]


def test_failed_run_reports_error_and_submit_exits_1(server: Server, workers: list[Worker]) -> None:
    wait_for_run(server, start_run(server, "e2e_flows:add", 1, 2))  # the workers have registered
    completed = subprocess.run(
        [sys.executable, "-m", "coflux.cli", "submit", "e2e_flows:add", "1", '"x"'],
        env=environment(COFLUX_URL=server.url, COFLUX_TOKEN=server.token),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 1
    assert b"TypeError" in completed.stdout + completed.stderr


def test_killed_worker_is_abandoned_and_retried_elsewhere(quick_server: Server, tmp_path: Path) -> None:
    server = quick_server
    # The workflow runs on its own worker, so that only the task's worker dies.
    flows = Worker(server, "e2e_flows", "--provides", "role=flow").start()
    first = Worker(server, "e2e_flows", "--provides", "role=task").start()
    second = Worker(server, "e2e_flows", "--provides", "role=task").start()
    try:
        marker = tmp_path / "pid"
        run_id = start_run(server, "e2e_flows:slow_flow", str(marker), 60.0)
        pid = int(wait_until(lambda: marker.exists() and marker.read_text(), 30, "the task to start"))
        victim = first if first.pid == pid else second
        assert victim.pid == pid
        victim.kill()
        data = wait_for_run(server, run_id, timeout=30)
        executions = data["steps"][1]["executions"]
        assert [e["state"] for e in executions] == ["abandoned", "succeeded"]
        assert data["status"] == "succeeded"
        assert data["result"] != pid  # the retry ran in the other worker
        abandoned_at = executions[0]["completed_at"] - executions[0]["assigned_at"]
        assert abandoned_at >= QUICK_RECONNECT  # it was given the time to come back
        assert abandoned_at < QUICK_RECONNECT + 5
    finally:
        for worker in (flows, first, second):
            worker.stop()


def test_killed_worker_without_retries_fails_the_run(quick_server: Server, tmp_path: Path) -> None:
    server = quick_server
    worker = Worker(server).start()
    marker = tmp_path / "pid"
    run_id = start_run(server, "e2e_flows:slow_no_retry_flow", str(marker), 60.0)
    wait_until(lambda: marker.exists() and marker.read_text(), 30, "the task to start")
    worker.kill()
    replacement = Worker(server).start()
    try:
        data = wait_for_run(server, run_id, timeout=30)
        task = data["steps"][1]["executions"]
        assert [e["state"] for e in task] == ["abandoned"]
        root = data["steps"][0]["executions"]
        assert root[-1]["state"] == "abandoned", root
        assert data["status"] == "failed"
    finally:
        replacement.stop()


def test_server_killed_mid_run_resumes_on_restart(tmp_path: Path) -> None:
    server = Server(tmp_path / "data").start()
    worker = Worker(server).start()
    try:
        run_id = start_run(server, "e2e_flows:chain", 12, 0.15)
        wait_until(lambda: len(run_data(server, run_id)["steps"]) >= 8, 30, "a few steps to finish")
        before = run_data(server, run_id)
        done_before = {
            e["execution_id"]: e["state"]
            for s in before["steps"]
            for e in s["executions"]
            if e["state"] == "succeeded"
        }
        server.kill()
        server.start()
        after = wait_for_run(server, run_id, timeout=60)
        assert after["status"] == "succeeded"
        assert after["result"] == 12
        states = {e["execution_id"]: e["state"] for s in after["steps"] for e in s["executions"]}
        for execution_id, state in done_before.items():
            assert states[execution_id] == state
    finally:
        worker.stop()
        server.stop()


def test_a_fast_chain_killed_mid_run_keeps_one_history(tmp_path: Path) -> None:
    """Each step's value reaches its caller on the worker before the server has committed it;
    the server is killed mid-chain. Every step must still be recorded once, with the value its
    successor was called with: a step the server lost is made again from the value the worker
    used, never run again (a re-run would show as a new random value)."""
    server = Server(tmp_path / "data").start()
    worker = Worker(server).start()
    try:
        n = 2000
        run_id = start_run(server, "e2e_flows:tokens", n)
        wait_until(lambda: len(run_data(server, run_id)["steps"]) >= 100, 30, "some steps")
        server.kill()
        server.start()
        data = wait_for_run(server, run_id, timeout=120)
        assert data["status"] == "succeeded"
        children = data["steps"][1:]
        assert len(children) == n  # none lost, none doubled
        values = []
        for step in children:
            [execution] = step["executions"]  # each ran once
            assert execution["state"] == "succeeded"
            values.append(execution["result"])
        assert [step["arguments"][0] for step in children] == ["", *values[:-1]]
        assert data["result"] == values[-1]
    finally:
        worker.stop()
        server.stop()


def test_steps_a_failed_run_left_running_are_shown_and_cancelled_with_the_run(
    server: Server, workers: list[Worker]
) -> None:
    run_id = start_run(server, "e2e_flows:leaves_behind", 6, 30.0)
    data = wait_for_run(server, run_id)
    assert data["status"] == "failed"
    assert data["still_running"] == 6  # the rule: a failure doesn't cancel what the run started
    left = [e for s in data["steps"][1:] for e in s["executions"]]
    assert {e["state"] for e in left} <= {"queued", "assigned", "running"}
    assert all(e["after_run_ended"] for e in left)

    shown = subprocess.run(
        [sys.executable, "-m", "coflux.cli", "runs", "show", run_id],
        env=environment(COFLUX_URL=server.url, COFLUX_TOKEN=server.token),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "6 steps still running after it ended" in shown.stdout
    assert shown.stdout.count("(after the run ended)") == 6

    cancelled = subprocess.run(
        [sys.executable, "-m", "coflux.cli", "runs", "cancel", run_id],
        env=environment(COFLUX_URL=server.url, COFLUX_TOKEN=server.token),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert cancelled.returncode == 0, cancelled.stderr
    assert cancelled.stdout.strip() == f"cancelled 6 executions of run {run_id}"
    data = run_data(server, run_id)
    assert data["status"] == "failed" and data["still_running"] == 0
    assert [s["executions"][-1]["state"] for s in data["steps"][1:]] == ["cancelled"] * 6

    again = server.request("POST", f"api/projects/default/runs/{run_id}/cancel")
    assert again.status == 200 and again.json() == {"run_id": run_id, "cancelled": 0}
    unknown = server.request("POST", "api/projects/default/runs/Rnope/cancel")
    assert unknown.status == 404
