"""Fixtures of the end-to-end tests that run a Jupyter server in the test process (pytest-jupyter)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.support.jupyter import Kernel, server_config


@pytest.fixture
def jp_server_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    return server_config(tmp_path, monkeypatch, reconnect_timeout=2.0)


@pytest.fixture
def start_kernel(jp_fetch: Any, jp_serverapp: Any) -> Callable[[], Any]:
    @asynccontextmanager
    async def start(path: str = "") -> AsyncIterator[Kernel]:
        """A kernel started in the server's folder ``path`` (its root by default), as for a
        notebook there."""
        body = json.dumps({"name": "python3", "path": path})
        response = await jp_fetch("api", "kernels", method="POST", body=body)
        kernel_id = json.loads(response.body)["id"]
        client = jp_serverapp.kernel_manager.get_kernel(kernel_id).client()
        client.start_channels()
        try:
            await client.wait_for_ready(timeout=60)
            yield Kernel(kernel_id, client)
        finally:
            client.stop_channels()
            if kernel_id in jp_serverapp.kernel_manager:
                await jp_serverapp.kernel_manager.shutdown_kernel(kernel_id, now=True)

    return start
