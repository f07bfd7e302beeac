"""``GET coflux/api/kernels/{kernel_id}``: the server knows which worker session is which notebook
kernel (the kernel's ``hello`` says), which workspace it serves, and tells the project's events
feed when that changes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.support.jupyter import wait_for
from tests.support.labtypes import Checker

pytest_plugins = ("pytest_jupyter.jupyter_server",)

pytestmark = pytest.mark.e2e


async def _kernel_worker(jp_fetch: Any, kernel_id: str, **kwargs: Any) -> Any:
    return await jp_fetch("coflux", "api", "kernels", kernel_id, raise_error=False, **kwargs)


async def _answer(jp_fetch: Any, kernel_id: str) -> dict[str, Any] | None:
    response = await _kernel_worker(jp_fetch, kernel_id)
    return json.loads(response.body) if response.code == 200 else None


async def test_the_server_knows_which_workspace_a_kernel_serves(
    jp_fetch: Any, jp_ws_fetch: Any, start_kernel: Callable[[], Any]
) -> None:
    types = Checker()  # the JupyterLab extension's types.ts must agree with these answers and events
    async with start_kernel() as kernel:

        async def connected() -> dict[str, Any] | None:
            answer = await _answer(jp_fetch, kernel.id)
            return answer if answer and answer["connected"] else None

        first = await wait_for(connected, 60, "the kernel's worker session")
        status = await kernel.value("__import__('coflux.notebook.kernel').notebook.kernel.current().status()")
        assert first == {
            "kernel_id": kernel.id,
            "project": "default",
            "workspace": "main",
            "connected": True,
            "session": status["session_id"],
        }
        types.check("KernelWorker", first)

        events = await jp_ws_fetch("coflux", "ws", "events", params={"project": "default"})
        try:
            assert "now serves and runs in workspace 'dev'" in await kernel.run(
                "%coflux workspace dev --base main"
            )
            after = await _answer(jp_fetch, kernel.id)
            assert after is not None
            assert (after["workspace"], after["connected"]) == ("dev", True)
            assert after["session"] != first["session"]  # the worker restarted in the new workspace

            # The feed said so: the old session left main, the new one joined dev.
            seen: list[tuple[str, bool]] = []
            while ("dev", True) not in seen:
                event = json.loads(await asyncio.wait_for(events.read_message(), 30))
                if event["type"] == "worker":
                    types.check("CofluxEvent", event)
                    types.check("WorkerEvent", event)
                    assert event["kernel_id"] == kernel.id
                    seen.append((event["workspace"], event["connected"]))
            assert seen == [("main", False), ("dev", True)]
            assert not types.unseen({"KernelWorker", "WorkerEvent"})
        finally:
            events.close()

    # The kernel is gone: its session is away (until the reconnect timeout, then forgotten).
    async def forgotten() -> bool:
        response = await _kernel_worker(jp_fetch, kernel.id)
        return bool(response.code == 404)

    await wait_for(forgotten, 60, "the kernel's session to be forgotten")


async def test_unknown_kernels_and_project_tokens(jp_fetch: Any) -> None:
    missing = await _kernel_worker(jp_fetch, "0" * 8 + "-0000-0000-0000-" + "0" * 12)
    assert missing.code == 404
    error = json.loads(missing.body)["error"]
    assert error["code"] == "not_found" and "never connected" in error["message"]

    for scope in ("worker", "submit"):
        made = await jp_fetch(
            "coflux", "api", "projects", "default", "tokens", method="POST", body=json.dumps({"scope": scope})
        )
        token = json.loads(made.body)["token"]
        refused = await _kernel_worker(jp_fetch, "0" * 36, headers={"Authorization": f"token {token}"})
        assert refused.code == 403
        assert "see which workspace a kernel serves" in json.loads(refused.body)["error"]["message"]
