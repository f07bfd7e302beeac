"""A slow blob store stalls only the blob requests waiting on it: the loop that serves Jupyter and
every project answers meanwhile. The store is an fsspec filesystem whose reads or writes wait at a
gate the test opens only after another request has been answered."""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from collections.abc import Iterator
from typing import Any

import fsspec
import pytest
from fsspec.implementations.memory import MemoryFileSystem

pytest_plugins = ("pytest_jupyter.jupyter_server",)

GATE_LIMIT = 30.0
"""Seconds a gated call waits at most: only reached when the loop itself is stuck in that call."""


class Gate:
    """Where a gated store call waits: ``entered`` once it waits, until the test ``opens`` it."""

    def __init__(self) -> None:
        self.armed = ""
        self.entered = threading.Event()
        self.opened = threading.Event()
        self.forced = False  # the call gave up waiting: the test never got to open the gate

    def pass_through(self, call: str) -> None:
        if self.armed != call:
            return
        self.entered.set()
        self.forced = not self.opened.wait(GATE_LIMIT)


class GatedFileSystem(MemoryFileSystem):
    """An in-memory store (its own files) whose reads and writes wait at the gate."""

    protocol = "gated"
    store: dict[str, Any] = {}
    pseudo_dirs = [""]
    gate = Gate()

    @classmethod
    def _strip_protocol(cls, path: Any) -> Any:
        return super()._strip_protocol(str(path).removeprefix("gated://"))

    def cat_file(self, path: Any, start: Any = None, end: Any = None, **kwargs: Any) -> Any:
        self.gate.pass_through("read")
        return super().cat_file(path, start, end, **kwargs)

    def pipe_file(self, path: Any, value: Any, *args: Any, **kwargs: Any) -> Any:
        self.gate.pass_through("write")
        return super().pipe_file(path, value, *args, **kwargs)

    def _open(self, path: Any, mode: str = "rb", *args: Any, **kwargs: Any) -> Any:
        """Where blobs are streamed from and filed into."""
        self.gate.pass_through("read" if "r" in mode else "write")
        return super()._open(path, mode, *args, **kwargs)


@pytest.fixture
def gate() -> Iterator[Gate]:
    fsspec.register_implementation("gated", GatedFileSystem, clobber=True)
    GatedFileSystem.gate = Gate()
    GatedFileSystem.store.clear()
    yield GatedFileSystem.gate
    GatedFileSystem.gate.opened.set()


@pytest.fixture
def jp_server_config(jp_server_config: dict[str, Any], gate: Gate) -> dict[str, Any]:
    return {**jp_server_config, "Coflux": {**jp_server_config["Coflux"], "blob_store": "gated://blobs"}}


def _blob_path(data: bytes) -> tuple[str, ...]:
    return ("coflux", "api", "projects", "default", "blobs", hashlib.sha256(data).hexdigest())


async def _answered_while_gated(jp_fetch: Any, gate: Gate, gated: asyncio.Future[Any]) -> None:
    """Once the gated request waits in the store, another request is answered, and only then is
    the gate opened: the gated request then completes as usual."""
    await asyncio.to_thread(gate.entered.wait, GATE_LIMIT)
    assert gate.entered.is_set()
    other = await jp_fetch("coflux", "api", "projects")
    assert "projects" in json.loads(other.body)
    assert not gated.done() and not gate.forced  # answered while the store call still waited
    gate.opened.set()
    await gated
    assert not gate.forced


async def test_a_slow_blob_read_leaves_the_loop_serving(jp_fetch: Any, gate: Gate) -> None:
    data = b"slow to read"
    await jp_fetch(*_blob_path(data), method="PUT", body=data)
    gate.armed = "read"
    read = asyncio.ensure_future(jp_fetch(*_blob_path(data)))
    await _answered_while_gated(jp_fetch, gate, read)
    assert read.result().body == data


async def test_a_slow_blob_write_leaves_the_loop_serving(jp_fetch: Any, gate: Gate) -> None:
    data = b"slow to write"
    gate.armed = "write"
    write = asyncio.ensure_future(jp_fetch(*_blob_path(data), method="PUT", body=data))
    await _answered_while_gated(jp_fetch, gate, write)
    assert write.result().code == 201
    gate.armed = ""
    assert (await jp_fetch(*_blob_path(data))).body == data
