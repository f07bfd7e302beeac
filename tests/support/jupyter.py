"""A real Jupyter server (pytest-jupyter) with the extension: its configuration, and kernels it
started driven as a notebook frontend drives them."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


def server_config(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    server_app: dict[str, Any] | None = None,
    **coflux: Any,
) -> dict[str, Any]:
    """``jp_server_config`` for a server with only this extension, its data under ``tmp_path``;
    ``server_app`` and ``coflux`` add to the ``ServerApp`` and ``Coflux`` sections.

    The test process's own Coflux settings are taken out of its environment (restored afterwards):
    the extension publishes ``COFLUX_URL`` and ``COFLUX_TOKEN`` for its kernels, and kernels
    inherit the environment. ``COFLUX_TEST_PG_URL`` stays: it belongs to the tests."""
    for name in [n for n in os.environ if n.startswith("COFLUX_") and n != "COFLUX_TEST_PG_URL"]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    return {
        "ServerApp": {"jpserver_extensions": {"jupyter_ext": True}, **(server_app or {})},
        "Coflux": {"data_dir": str(tmp_path / "coflux-data"), **coflux},
    }


class Kernel:
    """A kernel the server started, driven like a notebook frontend drives it."""

    def __init__(self, kernel_id: str, client: Any) -> None:
        self.id = kernel_id
        self.client = client

    async def run(self, code: str, timeout: float = 60) -> str:
        """Run a cell; its printed output, or an AssertionError with the cell's error."""
        outputs: list[str] = []
        errors: list[str] = []

        def collect(message: dict[str, Any]) -> None:
            content = message["content"]
            if message["msg_type"] == "stream":
                outputs.append(content["text"])
            elif message["msg_type"] == "error":
                errors.append(f"{content['ename']}: {content['evalue']}")

        reply = await self.client.execute_interactive(code, output_hook=collect, timeout=timeout)
        if reply["content"]["status"] != "ok":
            raise AssertionError(f"cell failed: {errors or reply['content']}\n{''.join(outputs)}")
        return "".join(outputs)

    async def value(self, expression: str) -> Any:
        return json.loads((await self.run(f"import json as _j; print(_j.dumps({expression}))")).strip())


async def rest(jp_fetch: Any, *path: str, **kwargs: Any) -> Any:
    response = await jp_fetch("coflux", "api", "projects", "default", *path, **kwargs)
    return json.loads(response.body)


async def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.1)


async def finished_run(jp_fetch: Any, run_id: str, timeout: float = 60) -> dict[str, Any]:
    async def done() -> dict[str, Any] | None:
        data: dict[str, Any] = await rest(jp_fetch, "runs", run_id)
        return data if data["status"] != "running" else None

    result: dict[str, Any] = await wait_for(done, timeout, f"run {run_id} to finish")
    return result


def by_target(data: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for step in data["steps"]:
        found.setdefault(step["target"], []).append(step)
    return found
