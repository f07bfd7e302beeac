"""Workspace administration over REST inside a real Jupyter server (pytest-jupyter)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from jupyter_server.utils import url_path_join
from tornado.httpclient import HTTPClientError

pytest_plugins = ("pytest_jupyter.jupyter_server",)


async def _post(jp_fetch: Any, *path: str, body: dict[str, Any] | None = None) -> Any:
    response = await jp_fetch(
        "coflux", "api", "projects", "demo", *path, method="POST", body=json.dumps(body or {})
    )
    assert response.code in (200, 201)
    return json.loads(response.body)


async def _refused(jp_fetch: Any, *path: str, body: dict[str, Any] | None = None) -> tuple[int, str]:
    with pytest.raises(HTTPClientError) as info:
        await _post(jp_fetch, *path, body=body)
    assert info.value.response is not None
    return info.value.code, json.loads(info.value.response.body)["error"]["code"]


async def _listed(jp_fetch: Any) -> dict[str, dict[str, Any]]:
    response = await jp_fetch("coflux", "api", "projects", "demo", "workspaces")
    return {w["name"]: w for w in json.loads(response.body)["workspaces"]}


async def test_rename_rebase_pause_resume_archive(jp_fetch: Any) -> None:
    await _post(jp_fetch, "workspaces", body={"name": "prod"})
    await _post(jp_fetch, "workspaces", body={"name": "dev", "base": "prod"})
    await _post(jp_fetch, "workspaces", body={"name": "other"})

    renamed = await _post(jp_fetch, "workspaces", "dev", "rename", body={"name": "staging"})
    assert renamed == {"name": "staging", "base": "prod", "state": "active"}
    assert await _refused(jp_fetch, "workspaces", "staging", "rename", body={"name": "other"}) == (
        409,
        "conflict",
    )
    assert await _refused(jp_fetch, "workspaces", "staging", "rename", body={"name": "no good"}) == (
        400,
        "bad_request",
    )
    assert await _refused(jp_fetch, "workspaces", "staging", "rename", body={}) == (400, "bad_request")
    assert await _refused(jp_fetch, "workspaces", "dev", "pause") == (404, "not_found")

    assert await _refused(jp_fetch, "workspaces", "prod", "rebase", body={"base": "staging"}) == (
        400,
        "bad_request",
    )
    assert await _refused(jp_fetch, "workspaces", "prod", "rebase", body={}) == (400, "bad_request")
    rebased = await _post(jp_fetch, "workspaces", "staging", "rebase", body={"base": None})
    assert rebased == {"name": "staging", "base": None, "state": "active"}
    assert (await _post(jp_fetch, "workspaces", "staging", "rebase", body={"base": "other"}))[
        "base"
    ] == "other"

    assert (await _post(jp_fetch, "workspaces", "prod", "pause"))["state"] == "paused"
    assert (await _listed(jp_fetch))["prod"]["state"] == "paused"
    assert (await _post(jp_fetch, "workspaces", "prod", "resume"))["state"] == "active"

    assert await _refused(jp_fetch, "workspaces", "other", "archive") == (409, "conflict")  # staging's base
    assert (await _post(jp_fetch, "workspaces", "prod", "archive"))["state"] == "archived"
    assert await _refused(jp_fetch, "workspaces", "prod", "resume") == (409, "conflict")
    run = {"module": "m", "target": "flow", "arguments": []}
    assert await _refused(jp_fetch, "workspaces", "prod", "runs", body=run) == (409, "conflict")
    assert (await _listed(jp_fetch))["prod"] == {"name": "prod", "base": None, "state": "archived"}


async def test_workspace_names_with_a_slash_travel_encoded(
    jp_fetch: Any, http_server_client: Any, jp_auth_header: dict[str, str], jp_base_url: str
) -> None:
    await _post(jp_fetch, "workspaces", body={"name": "dev/ana"})
    # jp_fetch escapes each path part but not "/": send the encoded path by hand, as cf.Client does.
    path = url_path_join(jp_base_url, "coflux/api/projects/demo/workspaces/dev%2Fana/pause")
    response = await http_server_client.fetch(path, method="POST", body="{}", headers=jp_auth_header)
    assert json.loads(response.body) == {"name": "dev/ana", "base": None, "state": "paused"}


async def test_actions_answer_only_post(jp_fetch: Any) -> None:
    await _post(jp_fetch, "workspaces", body={"name": "prod"})
    with pytest.raises(HTTPClientError) as info:
        await jp_fetch("coflux", "api", "projects", "demo", "workspaces", "prod", "pause")
    assert info.value.code == 405 and info.value.response is not None
    assert json.loads(info.value.response.body)["error"]["code"] == "method_not_allowed"


async def test_run_listing_checks_its_query(jp_fetch: Any) -> None:
    await _post(jp_fetch, "workspaces", body={"name": "prod"})
    response = await jp_fetch("coflux", "api", "projects", "demo", "workspaces", "prod", "runs")
    assert json.loads(response.body) == {"runs": []}
    for query, status in (
        ({"limit": "0"}, 400),
        ({"limit": "many"}, 400),
        ({"workflow": "no-colon"}, 400),
    ):
        with pytest.raises(HTTPClientError) as info:
            await jp_fetch("coflux", "api", "projects", "demo", "workspaces", "prod", "runs", params=query)
        assert info.value.code == status, query
    with pytest.raises(HTTPClientError) as info:
        await jp_fetch("coflux", "api", "projects", "demo", "workspaces", "nowhere", "runs")
    assert info.value.code == 404
