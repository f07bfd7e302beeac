"""A notebook renamed in JupyterLab (its session's path changed through Jupyter's sessions API, as
Lab does) names the module of the targets defined after the rename, and the kernel says so."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support.jupyter import Kernel

pytest_plugins = ("pytest_jupyter.jupyter_server",)

pytestmark = pytest.mark.e2e


async def test_renaming_a_notebook_changes_the_module_of_later_targets(
    jp_fetch: Any, jp_serverapp: Any
) -> None:
    body = {
        "path": "Untitled.ipynb",
        "name": "Untitled.ipynb",
        "type": "notebook",
        "kernel": {"name": "python3"},
    }
    session = json.loads((await jp_fetch("api", "sessions", method="POST", body=json.dumps(body))).body)
    kernel_id = session["kernel"]["id"]
    client = jp_serverapp.kernel_manager.get_kernel(kernel_id).client()
    client.start_channels()
    try:
        await client.wait_for_ready(timeout=60)
        kernel = Kernel(kernel_id, client)
        assert "module Untitled," in await kernel.run("%coflux status")
        await kernel.run("%%coflux_task\ndef first():\n    return 1\n")

        # What JupyterLab does when the notebook is renamed.
        rename = {"path": "reports/Weather report.ipynb", "name": "Weather report.ipynb"}
        await jp_fetch("api", "sessions", session["id"], method="PATCH", body=json.dumps(rename))
        told = await kernel.run("%%coflux_task\ndef second():\n    return 2\n")
        assert told.strip() == (
            "Coflux: this notebook is now Weather report.ipynb: targets defined from now on belong"
            " to module 'Weather_report'; those defined before (first) stay in 'Untitled' until"
            " their cells run again"
        )
        assert await kernel.run("%coflux module") == "Weather_report\n"  # said once, then quiet
        status = await kernel.run("%coflux status")
        assert "targets:\n  Untitled:first (task)\n  Weather_report:second (task)\n" in status

        # A module chosen with %coflux module stays, and the kernel says why.
        await kernel.run("%coflux module jobs")
        rename = {"path": "reports/Rain.ipynb", "name": "Rain.ipynb"}
        await jp_fetch("api", "sessions", session["id"], method="PATCH", body=json.dumps(rename))
        told = await kernel.run("%%coflux_task\ndef third():\n    return 3\n")
        assert told.strip() == (
            "Coflux: this notebook is now Rain.ipynb; targets stay in module 'jobs' (set by %coflux module)"
        )
        assert "jobs:third" in await kernel.run("%coflux status")
    finally:
        client.stop_channels()
        await jp_fetch("api", "sessions", session["id"], method="DELETE")


async def test_a_kernels_notebook_is_for_worker_tokens(jp_fetch: Any) -> None:
    path = ("coflux", "api", "projects", "default", "kernels", "0" * 36, "notebook")
    missing = await jp_fetch(*path, raise_error=False)
    assert missing.code == 404 and json.loads(missing.body)["error"]["code"] == "not_found"
    made = await jp_fetch(
        "coflux", "api", "projects", "default", "tokens", method="POST", body=json.dumps({"scope": "submit"})
    )
    submit = json.loads(made.body)["token"]
    refused = await jp_fetch(*path, headers={"Authorization": f"token {submit}"}, raise_error=False)
    assert refused.code == 403
    assert "look up a kernel's notebook" in json.loads(refused.body)["error"]["message"]
