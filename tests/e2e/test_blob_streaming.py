"""Blobs stream through a real `coflux server`: a 50 MB blob goes up and comes back byte for byte,
as a blob and as an asset's file, while the server's peak memory rises by a small part of its size
(never the whole of it); a server started with --blob-store keeps blobs there."""

from __future__ import annotations

import hashlib
import os
import re
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.harness import Server, Worker, start_run, wait_for_run, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

SIZE = 50 * 1024 * 1024
PIECE = 1024 * 1024


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    started = Server(tmp_path / "data", extra=["--blob-store", str(tmp_path / "elsewhere")]).start()
    try:
        yield started
    finally:
        started.stop()


def _memory(pid: int, field: str) -> int:
    """A ``/proc/PID/status`` figure (VmRSS, VmHWM) in bytes."""
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(rf"^{field}:\s+(\d+) kB$", status, re.MULTILINE)
    assert match is not None, status
    return int(match.group(1)) * 1024


def _reset_peak(pid: int) -> int:
    """Make the process's peak RSS its current RSS (Linux's clear_refs 5), and return that."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    return _memory(pid, "VmRSS")


def _body() -> bytes:
    """50 MB that don't compress or repeat in a way anything could exploit."""
    return b"".join(
        hashlib.sha256(i.to_bytes(4, "big")).digest() * (PIECE // 32) for i in range(SIZE // PIECE)
    )


def _download(server: Server, path: str) -> tuple[int, str]:
    """Size and SHA-256 of what ``path`` serves, read in pieces (the test holds none of it whole)."""
    request = urllib.request.Request(f"{server.url}/api/projects/default/{path}")
    request.add_header("Authorization", f"token {server.token}")
    digest, size = hashlib.sha256(), 0
    with urllib.request.urlopen(request, timeout=60) as response:
        assert response.headers["Content-Length"] == str(SIZE)
        while piece := response.read(PIECE):
            digest.update(piece)
            size += len(piece)
    return size, digest.hexdigest()


def _execution(server: Server) -> str:
    """An execution of project default: the root of a finished run on a real worker."""
    worker = Worker(server, "e2e_flows").start()
    try:
        run = wait_for_run(server, start_run(server, "e2e_flows:fanout", 1))
    finally:
        worker.stop()
    assert run["status"] == "succeeded", run
    execution_id: str = run["root_execution_id"]
    return execution_id


def test_a_50_mb_blob_streams_up_and_down_without_the_server_holding_it(
    server: Server, tmp_path: Path
) -> None:
    assert server.process is not None
    pid = server.process.pid
    execution_id = _execution(server)
    body = _body()
    key = hashlib.sha256(body).hexdigest()
    assert server.request("HEAD", f"api/projects/default/blobs/{key}").status == 404  # warms the route up
    before = _reset_peak(pid)

    put = server.request("PUT", f"api/projects/default/blobs/{key}", raw=body)
    assert put.status == 201, put.body
    del body
    assert _download(server, f"blobs/{key}") == (SIZE, key)
    entry = {"path": "big/data.bin", "blob_key": key, "size": SIZE, "media_type": "application/octet-stream"}
    asset = {"execution_id": execution_id, "name": "big", "entries": [entry]}
    persisted = server.request(
        "POST", "api/projects/default/assets", asset, token=server.worker_token("default")
    )
    assert persisted.status == 201, persisted.body
    assert _download(server, f"assets/{persisted.json()['asset_id']}/files/big/data.bin") == (SIZE, key)

    risen = _memory(pid, "VmHWM") - before
    assert risen < SIZE * 0.5, f"the server's peak memory rose by {risen / 2**20:.1f} MB for a 50 MB blob"
    stored = tmp_path / "elsewhere" / "default" / key[:2] / key
    assert stored.stat().st_size == SIZE
    assert not (tmp_path / "data" / "blobs").exists()  # --blob-store took the blobs elsewhere
    assert [p.name for p in stored.parent.parent.rglob("*") if p.is_file()] == [key]  # no temporary file left


def test_a_blob_that_does_not_match_its_key_is_refused_and_leaves_nothing(
    server: Server, tmp_path: Path
) -> None:
    body = os.urandom(3 * PIECE)
    wrong = hashlib.sha256(b"something else").hexdigest()
    refused = server.request("PUT", f"api/projects/default/blobs/{wrong}", raw=body)
    assert refused.status == 400 and "nothing was stored" in refused.json()["error"]["message"]
    assert server.request("HEAD", f"api/projects/default/blobs/{wrong}").status == 404
    leftovers = [p for p in (tmp_path / "elsewhere").rglob("*") if p.is_file()]
    assert leftovers == []


def test_an_upload_cut_off_midway_leaves_nothing(server: Server, tmp_path: Path) -> None:
    key = hashlib.sha256(b"never sent whole").hexdigest()
    head = (
        f"PUT /coflux/api/projects/default/blobs/{key} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
        f"Authorization: token {server.token}\r\nContent-Length: {10 * PIECE}\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as connection:
        connection.sendall(head.encode() + os.urandom(2 * PIECE))
        incoming = tmp_path / "elsewhere" / "default" / ".incoming"
        wait_until(lambda: any(incoming.glob(".upload-*")), 10, "the upload to be spooled")
    wait_until(lambda: not any(incoming.glob(".upload-*")), 10, "the cut-off upload to be deleted")
    assert server.request("HEAD", f"api/projects/default/blobs/{key}").status == 404


def test_a_50_mb_value_travels_between_tasks_as_a_blob_without_the_server_holding_it(
    server: Server, tmp_path: Path
) -> None:
    assert server.process is not None
    pid = server.process.pid
    worker = Worker(server, "big_values").start()
    try:
        warm = wait_for_run(server, start_run(server, "big_values:carry", 1))  # routes and imports
        assert warm["status"] == "succeeded", warm["error"]
        before = _reset_peak(pid)
        run = wait_for_run(server, start_run(server, "big_values:carry", SIZE // PIECE), timeout=90)
        risen = _memory(pid, "VmHWM") - before
    finally:
        worker.stop()
    assert run["status"] == "succeeded", run["error"]
    assert run["result"] == [SIZE, hashlib.sha256(_body()).hexdigest()]  # arrived whole in the next task
    [produced] = [s for s in run["steps"] if s["target"] == "produce"]
    value = produced["executions"][-1]["result"]
    assert value["type"] == "object" and value["size"] == SIZE  # it went as a blob, not in a message
    assert risen < SIZE * 0.5, f"the server's peak memory rose by {risen / 2**20:.1f} MB for a 50 MB value"
