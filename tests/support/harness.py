"""Real processes for end-to-end tests: `coflux server` and `coflux worker`, on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
MODULES = ROOT / "tests" / "e2e" / "modules"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def environment(modules: Path = MODULES, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    for key in [k for k in env if k.startswith("COFLUX_")]:
        del env[key]
    env["PYTHONPATH"] = os.pathsep.join([str(modules), str(ROOT)])
    env.update(extra)
    return env


def wait_until(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


class Response:
    def __init__(self, status: int, body: bytes) -> None:
        self.status = status
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body)


class _Child:
    """A child process the test owns: stopped with SIGTERM (then SIGKILL), or killed outright."""

    process: subprocess.Popen[bytes] | None = None

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


class Server(_Child):
    def __init__(
        self,
        data_dir: Path,
        token: str = "test-token",
        extra: list[str] | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.token = token
        self.port = free_port()
        self.extra = extra or []
        self.env = env or {}
        self.process: subprocess.Popen[bytes] | None = None
        self.url = f"http://127.0.0.1:{self.port}/coflux"

    def start(self) -> Server:
        log = open(self.data_dir.parent / f"server-{self.port}.log", "ab")  # noqa: SIM115
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "coflux.cli",
                "server",
                "--port",
                str(self.port),
                "--data-dir",
                str(self.data_dir),
                *self.extra,
            ],
            env=environment(COFLUX_SERVER_TOKEN=self.token, **self.env),  # never on a command line
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        wait_until(self._ready, 30, "the server to answer")
        return self

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"server exited with {self.process.returncode}")
        try:
            return self.request("GET", "api/projects").status == 200
        except OSError:
            return False

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        token: str | None = "default",
        raw: bytes | None = None,
    ) -> Response:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        request = urllib.request.Request(f"{self.url}/{path}", data=data, method=method)
        used = self.token if token == "default" else token
        if used is not None:
            request.add_header("Authorization", f"token {used}")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return Response(response.status, response.read())
        except urllib.error.HTTPError as err:
            return Response(err.code, err.read())

    def worker_token(self, project: str) -> str:
        token: str = self.request("GET", f"api/projects/{project}/token").json()["token"]
        return token


class Worker(_Child):
    def __init__(
        self,
        server: Server,
        module: str = "e2e_flows",
        *args: str,
        project: str = "default",
        workspace: str = "main",
        token: str | None = None,
        modules: Path = MODULES,
    ) -> None:
        self.server = server
        self.modules = modules
        self.command = [
            sys.executable,
            "-m",
            "coflux.cli",
            "worker",
            module,
            "--url",
            server.url,
            "--project",
            project,
            "--workspace",
            workspace,
            "--register",
            *args,
        ]
        self.token = token or server.token
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Worker:
        log = open(self.server.data_dir.parent / f"worker-{id(self)}.log", "ab")  # noqa: SIM115
        env = environment(self.modules, COFLUX_TOKEN=self.token)  # never on a command line
        self.process = subprocess.Popen(self.command, env=env, stdout=log, stderr=subprocess.STDOUT)
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid


def start_run(
    server: Server,
    workflow: str,
    *arguments: Any,
    project: str = "default",
    workspace: str = "main",
) -> str:
    module, target = workflow.split(":")
    path = f"api/projects/{project}/workspaces/{workspace}/runs"
    response = wait_until(
        lambda: _try_start(server, path, module, target, list(arguments)),
        30,
        f"{workflow} to be registered",
    )
    run_id: str = response.json()["run_id"]
    return run_id


def _try_start(server: Server, path: str, module: str, target: str, arguments: list[Any]) -> Response | None:
    response = server.request("POST", path, {"module": module, "target": target, "arguments": arguments})
    if response.status == 404:
        return None
    assert response.status == 201, response.body
    return response


def run_data(server: Server, run_id: str, project: str = "default") -> dict[str, Any]:
    response = server.request("GET", f"api/projects/{project}/runs/{run_id}")
    assert response.status == 200, response.body
    data: dict[str, Any] = response.json()
    return data


def wait_for_run(
    server: Server, run_id: str, timeout: float = 60, project: str = "default"
) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        data = run_data(server, run_id, project)
        return data if data["status"] != "running" else None

    result: dict[str, Any] = wait_until(done, timeout, f"run {run_id} to finish")
    return result


def coflux_run(notebook: Path, *args: str, timeout: float = 110) -> subprocess.CompletedProcess[str]:
    """``coflux run FOLDER/NOTEBOOK ARGS...`` from the folder above the notebook's (as the README's
    ``coflux run notebooks/quickstart.ipynb``), its output captured as text."""
    relative = Path(notebook.parent.name) / notebook.name
    return subprocess.run(
        [sys.executable, "-m", "coflux.cli", "run", str(relative), *args],
        env=environment(),
        cwd=notebook.parent.parent,
        capture_output=True,
        timeout=timeout,
        check=False,
        text=True,
    )
