"""Starting the server, for real: `coflux server`'s banner hands workers a project token, not the admin
token; a server that can't start Coflux (a bad secret) says why and exits, and a `jupyter server`
whose Coflux failed answers every `coflux/` route with a JSON 503 and still stops on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

from tests.support.harness import Response, environment, free_port, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]


def _get(url: str, token: str | None = None) -> Response:
    request = urllib.request.Request(url)
    if token is not None:
        request.add_header("Authorization", f"token {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return Response(response.status, response.read())
    except urllib.error.HTTPError as err:
        return Response(err.code, err.read())


def _websocket(url: str, token: str) -> Response:
    """Open a websocket (then close it): 101 if it opened, else the refusal's status and body."""

    async def attempt() -> Response:
        request = HTTPRequest(url.replace("http://", "ws://"), headers={"Authorization": f"token {token}"})
        try:
            connection = await websocket_connect(request)
        except HTTPClientError as err:
            body = err.response.body if err.response is not None else b""
            return Response(err.code, body)
        connection.close()
        return Response(101, b"")

    return asyncio.run(attempt())


def _coflux_server(data_dir: Path, port: int, token: str, output: Path) -> subprocess.Popen[bytes]:
    with open(output, "wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "coflux.cli", "server", "--port", str(port), "--data-dir", str(data_dir)],
            env=environment(COFLUX_SERVER_TOKEN=token),
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def test_the_banner_gives_workers_a_worker_token_of_default_not_the_admin_token(tmp_path: Path) -> None:
    port, admin, output = free_port(), "the-admin-token", tmp_path / "server.out"
    url = f"http://127.0.0.1:{port}/coflux"
    server = _coflux_server(tmp_path / "data", port, admin, output)
    try:
        wait_until(lambda: "COFLUX_TOKEN=" in output.read_text(), 30, "the banner")
        wait_until(lambda: _get(f"{url}/api/projects", admin).status == 200, 30, "the server to answer")
        banner = output.read_text()
        assert f"admin token: {admin}\n" in banner
        match = re.search(r"workers of project default: COFLUX_URL=(\S+) COFLUX_TOKEN=(\S+)", banner)
        assert match, banner
        assert match[1] == url and match[2].startswith("cfx_worker_")
        assert "coflux tokens create --project P --scope worker" in banner
        worker_token = match[2]

        assert _websocket(f"{url}/ws/worker?project=default", worker_token).status == 101
        assert _websocket(f"{url}/ws/worker?project=other", worker_token).status == 401
        assert _get(f"{url}/api/projects", worker_token).status in (401, 403)  # listing is the admin's
        assert _get(f"{url}/api/projects", admin).status == 200
    finally:
        _stop(server)


def test_the_banner_comes_once_the_server_answers(tmp_path: Path) -> None:
    """Scripts (and people) take the banner as the sign that the server is up: whoever connects
    the moment its first line appears is answered, never refused."""
    for attempt in range(3):
        port, data = free_port(), tmp_path / f"data{attempt}"
        server = subprocess.Popen(
            [sys.executable, "-m", "coflux.cli", "server", "--port", str(port), "--data-dir", str(data)],
            env=environment(COFLUX_SERVER_TOKEN="admin"),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        try:
            assert server.stdout is not None
            assert server.stdout.readline().startswith(b"Coflux server at ")
            assert _get(f"http://127.0.0.1:{port}/coflux/api/projects", "admin").status == 200
        finally:
            _stop(server)


def test_coflux_server_with_an_empty_secret_exits_with_the_reason_and_no_banner(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "secret").write_bytes(b"")  # what a full disk left behind
    completed = subprocess.run(
        [sys.executable, "-m", "coflux.cli", "server", "--port", str(free_port()), "--data-dir", str(data)],
        env=environment(COFLUX_SERVER_TOKEN="admin"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 1
    assert completed.stdout == ""
    assert completed.stderr == (
        f"error: the secret {data / 'secret'} holds 0 bytes; at least 32 are needed, or anyone could forge "
        "project tokens. Delete the file to have a new one made (tokens signed by the old secret stop "
        "working)\n"
    )


class JupyterServer:
    """`jupyter server` as a user runs it (every installed extension), isolated in ``folder``."""

    def __init__(self, folder: Path, *args: str) -> None:
        self.port = free_port()
        self.token = "jupyter-token"
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = folder / "jupyter.log"
        homes = {
            name: str(folder / name.lower())
            for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "IPYTHONDIR")
        }
        env = environment(
            COFLUX_DATA_DIR=str(folder / "coflux"), JUPYTER_TOKEN=self.token, JUPYTER_PLATFORM_DIRS="1"
        )
        env.update(homes)
        command = [sys.executable, "-m", "jupyter_server", "--no-browser", "--ServerApp.allow_root=True"]
        command += [f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0", *args]
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)

    def ready(self) -> bool:
        if self.process.poll() is not None:
            return True
        try:
            return _get(f"{self.url}/api/status", self.token).status == 200
        except OSError:
            return False

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def broken_jupyter(tmp_path: Path) -> Iterator[JupyterServer]:
    (tmp_path / "coflux").mkdir()
    (tmp_path / "coflux" / "secret").write_bytes(b"")
    server = JupyterServer(tmp_path)
    try:
        wait_until(server.ready, 60, "jupyter server to answer")
        assert server.process.poll() is None, server.output()
        yield server
    finally:
        _stop(server.process)


def test_jupyter_server_whose_coflux_failed_answers_503_with_the_reason(
    broken_jupyter: JupyterServer, tmp_path: Path
) -> None:
    server = broken_jupyter
    reason = f"the secret {tmp_path / 'coflux' / 'secret'} holds 0 bytes"
    assert f"Coflux is unavailable: {reason}" in server.output()
    assert _get(f"{server.url}/api/status", server.token).status == 200  # Jupyter itself goes on

    for path in ("coflux/api/projects", "coflux/api/projects/default/workspaces", "coflux/anything"):
        response = _get(f"{server.url}/{path}", server.token)
        assert response.status == 503, (path, response.body)
        error = response.json()["error"]
        assert error["code"] == "unavailable" and error["message"].startswith(
            f"Coflux is unavailable: {reason}"
        )
    refused = _websocket(f"{server.url}/coflux/ws/worker?project=default", server.token)
    assert refused.status == 503 and reason in json.loads(refused.body)["error"]["message"]
    anonymous = _get(f"{server.url}/coflux/api/projects")
    assert anonymous.status == 503 and "secret" not in anonymous.json()["error"]["message"]


def test_jupyter_server_whose_coflux_failed_stops_on_sigterm(broken_jupyter: JupyterServer) -> None:
    broken_jupyter.process.send_signal(signal.SIGTERM)
    try:
        broken_jupyter.process.wait(15)
    except subprocess.TimeoutExpired:
        pytest.fail(f"SIGTERM was ignored:\n{broken_jupyter.output()[-3000:]}")


def test_jupyter_server_told_to_reraise_exits_with_the_reason(tmp_path: Path) -> None:
    (tmp_path / "coflux").mkdir()
    (tmp_path / "coflux" / "secret").write_bytes(b"short")
    server = JupyterServer(tmp_path, "--ServerApp.reraise_server_extension_failures=True")
    try:
        assert server.process.wait(60) != 0
    finally:
        _stop(server.process)
    assert f"the secret {tmp_path / 'coflux' / 'secret'} holds 5 bytes" in server.output()
