"""What `coflux worker` tells its user, read from its stdout and stderr (files, not a terminal):
where it is connected and what it serves, a server that is down (said once, retried), a refused
token and a URL that is not Coflux's (one line, exit 2), and a Jupyter URL without /coflux."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.harness import Server, environment, free_port, start_run, wait_for_run, wait_until

pytest_plugins = ("tests.support.foreign",)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

FLOWS = """import coflux as cf


@cf.task()
def double(n):
    return 2 * n


@cf.workflow()
def pipeline(n):
    return double(n) + 1
"""
SERVING = ["Serving 2 targets:", "  console_flows:double (task)", "  console_flows:pipeline (workflow)"]
SESSION = "[0-9a-f]{16}"
FIX = (
    "pass a worker token of project default with --token or COFLUX_TOKEN (`coflux tokens create "
    "--project default --scope worker` makes one, with the server's admin token)"
)


class WorkerProcess:
    """``coflux worker console_flows --url URL``, its stdout and stderr going to files."""

    def __init__(self, folder: Path, url: str, token: str | None) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "console_flows.py").write_text(FLOWS)
        self.out, self.err = folder / "stdout", folder / "stderr"
        extra = {"COFLUX_TOKEN": token} if token else {}
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "coflux.cli", "worker", "console_flows", "--url", url, "--register"],
                env=environment(folder, **extra),
                cwd=folder,
                stdout=out,
                stderr=err,
            )

    def stdout(self) -> list[str]:
        return self.out.read_text().splitlines()

    def stderr(self) -> list[str]:
        return self.err.read_text().splitlines()

    def wait_for(self, read: Callable[[], list[str]], pattern: str, what: str) -> list[str]:
        """The lines once one matches ``pattern`` in full."""
        return wait_until(
            lambda: (lines := read()) and any(re.fullmatch(pattern, line) for line in lines) and lines,
            30,
            what,
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    started: list[WorkerProcess] = []

    def start(url: str, token: str | None) -> WorkerProcess:
        worker = WorkerProcess(tmp_path / f"worker{len(started)}", url, token)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("console") / "data").start()
    yield server
    server.stop()


def mint(server: Server, project: str, scope: str) -> str:
    response = server.request("POST", f"api/projects/{project}/tokens", {"scope": scope})
    assert response.status == 201, response.body
    token: str = response.json()["token"]
    return token


def test_a_worker_says_where_it_is_and_what_it_serves(
    server: Server, workers: Callable[..., WorkerProcess]
) -> None:
    worker = workers(server.url, mint(server, "default", "worker"))
    lines = worker.wait_for(worker.stdout, re.escape(SERVING[-1]), "the targets")
    assert len(lines) == 4, lines
    assert re.fullmatch(
        rf"Connected to {re.escape(server.url)}: project default, workspace main, session {SESSION}",
        lines[0],
    ), lines[0]
    assert lines[1:] == SERVING
    assert worker.stderr() == []
    run_id = start_run(server, "console_flows:pipeline", 20)
    assert wait_for_run(server, run_id)["result"] == 41


@pytest.mark.parametrize("kind", ["none", "not a token", "other project", "submit"])
def test_a_refused_token_ends_the_worker_with_one_line_and_exit_2(
    server: Server, workers: Callable[..., WorkerProcess], kind: str
) -> None:
    token = {
        "none": None,
        "not a token": "wrong",
        "other project": mint(server, "elsewhere", "worker"),
        "submit": mint(server, "default", "submit"),
    }[kind]
    worker = workers(server.url, token)
    assert worker.process.wait(15) == 2
    said = {
        "none": f"{server.url} needs a token: {FIX}",
        "not a token": f"{server.url} did not accept the token: {FIX}",
        "other project": (
            f"{server.url} refused the worker (this token is not valid for project 'default': a "
            f"project token grants only the project it was made for, on the server that made it): {FIX}"
        ),
        "submit": (
            f"{server.url} refused the worker (a submit token can't open the worker socket: give "
            f"workers a worker token): {FIX}"
        ),
    }[kind]
    assert worker.stderr() == [f"error: {said}"]
    assert worker.stdout() == []


@pytest.mark.parametrize(
    "answer, said",
    [
        ((404, "text/html", b"<!DOCTYPE html><html>Not Found</html>"), "HTTP 404 with an HTML page"),
        ((200, "text/plain", b"hello"), "HTTP 200 with text/plain"),
    ],
)
def test_a_url_that_is_not_coflux_ends_the_worker_naming_the_url_to_use(
    workers: Callable[..., WorkerProcess],
    foreign: Callable[[int, str, bytes], str],
    answer: tuple[int, str, bytes],
    said: str,
) -> None:
    url = foreign(*answer)
    worker = workers(url, "cfx_worker_0_0")
    assert worker.process.wait(15) == 2
    given = url.rstrip("/")  # the settings are read without a trailing slash
    assert worker.stderr() == [
        f"error: {given} is not a Coflux server (it answers {said}); use the server's Coflux URL, "
        f"e.g. {given}/coflux"
    ]
    assert worker.stdout() == []


def test_a_503_is_waited_out_with_the_servers_message(
    workers: Callable[..., WorkerProcess], foreign: Callable[[int, str, bytes], str]
) -> None:
    error = {"error": {"code": "unavailable", "message": "Coflux is unavailable: the disk is gone"}}
    url = foreign(503, "application/json", json.dumps(error).encode()) + "coflux"
    worker = workers(url, "cfx_worker_0_0")
    said = f"Waiting for {url}: Coflux is unavailable: the disk is gone; retrying"
    worker.wait_for(worker.stderr, re.escape(said), "the 503's message")
    assert worker.process.poll() is None, "a 503 is waited out, not the end"


@pytest.mark.parametrize("path", ["", "lab", "lab/tree/report.ipynb"])
def test_a_jupyter_url_without_coflux_finds_the_api_under_it(
    server: Server, workers: Callable[..., WorkerProcess], path: str
) -> None:
    root = server.url.removesuffix("coflux")
    worker = workers(root + path, mint(server, "default", "worker"))
    lines = worker.wait_for(worker.stdout, re.escape(SERVING[-1]), "the targets")
    given = (root + path).rstrip("/")  # the settings are read without a trailing slash
    assert lines[0] == f"{given} is not Coflux's address; using {server.url} (set --url or COFLUX_URL to it)"
    assert re.fullmatch(rf"Connected to {re.escape(server.url)}: .* session {SESSION}", lines[1]), lines[1]
    assert lines[2:] == SERVING
    run_id = start_run(server, "console_flows:pipeline", 1)
    assert wait_for_run(server, run_id)["result"] == 3


@pytest.fixture
def later_server(tmp_path: Path) -> Iterator[Server]:
    """A server not started yet, on a port known in advance; stopped at the end."""
    server = Server(tmp_path / "data", token="console-token")
    server.port = free_port()
    server.url = f"http://127.0.0.1:{server.port}/coflux"
    yield server
    server.stop()


def test_a_server_that_is_down_is_said_once_per_outage_and_retried(
    later_server: Server, workers: Callable[..., WorkerProcess]
) -> None:
    server = later_server
    waiting = f"Waiting for {server.url}: connection refused; retrying"
    worker = workers(server.url, server.token)
    worker.wait_for(worker.stderr, re.escape(waiting), "the worker to say it waits")
    time.sleep(2.0)  # several attempts (the backoff starts at 0.1 s and doubles): still said once
    assert worker.stderr() == [waiting]
    assert worker.stdout() == []

    server.start()
    connected = rf"Connected to {re.escape(server.url)}: project default, workspace main, session {SESSION}"
    lines = worker.wait_for(worker.stdout, re.escape(SERVING[-1]), "the worker to connect")
    assert re.fullmatch(connected, lines[0]) and lines[1:] == SERVING, lines

    server.stop()
    lost = (
        rf"Waiting for {re.escape(server.url)}: (the server closed the connection \(1001: server "
        r"shutting down\)|the connection was lost); retrying"
    )
    outage = worker.wait_for(worker.stderr, lost, "the worker to say it lost the server")[1:]
    assert re.fullmatch(lost, outage[0]), outage
    server.start()
    reconnected = rf"Reconnected to {re.escape(server.url)}: session {SESSION}"
    lines = worker.wait_for(worker.stdout, reconnected, "the worker to say it reconnected")
    assert lines[4:] == [lines[-1]] and re.fullmatch(reconnected, lines[-1]), lines
    outage = worker.stderr()[1:]
    # The loss, then at most one line for the attempts that found nothing listening.
    assert outage[1:] in ([], [waiting]), outage
    assert worker.process.poll() is None


def test_a_worker_stops_cleanly_while_the_server_does_not_answer(
    workers: Callable[..., WorkerProcess],
) -> None:
    with socket.socket() as silent:  # accepts connections (the kernel's backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        worker = workers(f"http://127.0.0.1:{silent.getsockname()[1]}/coflux", "cfx_worker_0_0")
        time.sleep(2.0)  # connected, waiting for the upgrade's answer
        worker.process.terminate()
        assert worker.process.wait(10) == 0
    assert worker.stderr() == []
    assert worker.stdout() == []
