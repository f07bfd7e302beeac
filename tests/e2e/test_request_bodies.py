"""Request bodies against a real `coflux server`: refused before they are read unless the request is
authorized, capped, and parsed as strict JSON with a depth limit."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest

from tests.support.harness import Server, Worker, start_run

pytestmark = pytest.mark.e2e

MiB = 1024 * 1024
WORKSPACES = "/coflux/api/projects/default/workspaces"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    server = Server(tmp_path / "data").start()
    yield server
    server.stop()


def _head(server: Server, path: str, length: int, token: str | None) -> bytes:
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: 127.0.0.1:{server.port}",
        "Content-Type: application/json",
        f"Content-Length: {length}",
    ]
    if token:
        lines.append(f"Authorization: token {token}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _answer_to_a_partial_body(server: Server, length: int, token: str | None) -> bytes:
    """Send the head of a ``length``-byte POST and 64 KiB of its body, then read the answer: the
    server must answer while nearly all of the body is still unsent."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=20) as sock:
        sock.sendall(_head(server, WORKSPACES, length, token) + b"x" * 65536)
        try:
            return sock.recv(65536)
        except TimeoutError:
            return b"(no answer while the body was unsent)"


def _post_without_credentials(server: Server, length: int) -> int:
    """Try to send a whole ``length``-byte body; the bytes sent before the server hung up."""
    chunk = b"x" * MiB
    sent = 0
    with socket.create_connection(("127.0.0.1", server.port), timeout=60) as sock:
        sock.sendall(_head(server, WORKSPACES, length, None))
        with contextlib.suppress(OSError):  # the server closes the connection after its answer
            while sent < length:
                sock.sendall(chunk)
                sent += len(chunk)
    return sent


def test_an_unauthenticated_body_is_refused_before_it_is_read(server: Server) -> None:
    answer = _answer_to_a_partial_body(server, 500 * MiB, None)
    assert answer.startswith(b"HTTP/1.1 401 "), answer[:200]
    assert b'"code": "unauthorized"' in answer
    # Authorized, but longer than the server takes at all: 413 at once, not a dropped connection.
    answer = _answer_to_a_partial_body(server, 600 * MiB, server.token)
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert b'"code": "too_large"' in answer

    assert server.process is not None
    before = _peak_rss(server.process.pid)
    with ThreadPoolExecutor(4) as pool:  # four at once, as in the report
        sent = list(pool.map(lambda _: _post_without_credentials(server, 500 * MiB), range(4)))
    grown = _peak_rss(server.process.pid) - before
    assert grown < 64 * MiB, f"peak RSS grew by {grown / MiB:.0f} MiB over four 500 MiB POSTs (sent {sent})"
    assert server.request("GET", "api/projects").status == 200


def _peak_rss(pid: int) -> int:
    """The process's peak resident memory so far (Linux's VmHWM), else its current one."""
    status = Path(f"/proc/{pid}/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return int(psutil.Process(pid).memory_info().rss)


def test_json_bodies_are_strict_and_parsed_only_once_authorized(server: Server, tmp_path: Path) -> None:
    worker = Worker(server).start()
    try:
        start_run(server, "e2e_flows:add", 1, 2)  # the workflow is registered: arguments are what's left
        log = tmp_path / f"server-{server.port}.log"
        logged = log.stat().st_size
        runs = "api/projects/default/workspaces/main/runs"
        deep = b"[" * 100_000 + b"]" * 100_000
        anonymous = server.request("POST", runs, raw=deep, token=None)
        assert anonymous.status == 401 and anonymous.json()["error"]["code"] == "unauthorized"
        nested = server.request("POST", runs, raw=deep)
        assert nested.status == 400, nested.body
        assert "nested more than 128 levels deep" in nested.json()["error"]["message"]
        for number in (b"NaN", b"Infinity", b"-Infinity", b"1e999"):
            body = b'{"module": "e2e_flows", "target": "add", "arguments": [1, ' + number + b"]}"
            refused = server.request("POST", runs, raw=body)
            assert refused.status == 400, (number, refused.body)
            assert refused.json()["error"]["code"] == "bad_request"
        fine = server.request(
            "POST", runs, raw=b'{"module": "e2e_flows", "target": "add", "arguments": [1, 2]}'
        )
        assert fine.status == 201, fine.body
        assert "Traceback" not in log.read_text()[logged:]
    finally:
        worker.stop()
