"""The server extension inside a real Jupyter server (pytest-jupyter), with a real kernel."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPClientError

pytest_plugins = ("pytest_jupyter.jupyter_server",)


async def _json(jp_fetch: Any, *path: str, **kwargs: Any) -> Any:
    response = await jp_fetch("coflux", "api", *path, **kwargs)
    return json.loads(response.body)


async def test_rest_through_jupyter_auth(jp_fetch: Any) -> None:
    created = await _json(jp_fetch, "projects", method="POST", body=json.dumps({"name": "demo"}))
    assert created == {"name": "demo"}
    assert {"name": "demo"} in (await _json(jp_fetch, "projects"))["projects"]
    workspace = await _json(
        jp_fetch, "projects", "demo", "workspaces", method="POST", body=json.dumps({"name": "prod"})
    )
    assert workspace == {"name": "prod", "base": None, "state": "active"}
    child = {"name": "dev/ana", "base": "prod"}
    await _json(jp_fetch, "projects", "demo", "workspaces", method="POST", body=json.dumps(child))
    listed = (await _json(jp_fetch, "projects", "demo", "workspaces"))["workspaces"]
    assert {"name": "dev/ana", "base": "prod", "state": "active"} in listed
    workflows = await _json(jp_fetch, "projects", "demo", "workspaces", "prod", "workflows")
    assert workflows == {"workflows": []}


async def test_errors_are_json_with_a_code(jp_fetch: Any) -> None:
    with pytest.raises(HTTPClientError) as info:
        await jp_fetch("coflux", "api", "projects", "nope", "runs", "R1")
    assert info.value.code == 404
    assert info.value.response is not None
    assert json.loads(info.value.response.body)["error"]["code"] == "not_found"
    with pytest.raises(HTTPClientError) as info:
        await jp_fetch("coflux", "api", "projects", headers={"Authorization": ""})
    assert info.value.code in (401, 403)
    with pytest.raises(HTTPClientError) as info:
        await jp_fetch("coflux", "api", "no", "such", "endpoint")
    assert info.value.code == 404 and info.value.response is not None
    assert json.loads(info.value.response.body)["error"]["code"] == "not_found"


async def test_kernels_inherit_url_and_token_and_reach_the_server(jp_fetch: Any, jp_serverapp: Any) -> None:
    assert os.environ["COFLUX_URL"] == f"http://127.0.0.1:{jp_serverapp.port}{jp_serverapp.base_url}coflux"
    response = await jp_fetch("api", "kernels", method="POST", body=json.dumps({"name": "python3"}))
    kernel_id = json.loads(response.body)["id"]
    client = jp_serverapp.kernel_manager.get_kernel(kernel_id).client()
    client.start_channels()
    try:
        await client.wait_for_ready(timeout=60)
        outputs: list[str] = []

        def collect(message: dict[str, Any]) -> None:
            if message["msg_type"] == "stream":
                outputs.append(message["content"]["text"])

        code = (
            "import coflux as cf\n"
            "client = cf.Client()\n"
            "client.create_workspace('from-kernel')\n"
            "print(sorted(w['name'] for w in client.workspaces()))\n"
        )
        reply = await client.execute_interactive(code, output_hook=collect, timeout=60)
        assert reply["content"]["status"] == "ok", reply["content"]
        assert "from-kernel" in "".join(outputs)
    finally:
        client.stop_channels()
        await jp_serverapp.kernel_manager.shutdown_kernel(kernel_id, now=True)
    listed = (await _json(jp_fetch, "projects", "default", "workspaces"))["workspaces"]
    assert any(w["name"] == "from-kernel" for w in listed)


async def _login_cookie(base: str, token: str) -> str:
    response = await AsyncHTTPClient().fetch(f"{base}api/status?token={token}")
    cookies = [c.split(";", 1)[0] for c in response.headers.get_list("Set-Cookie")]
    assert any(c.startswith("username-") for c in cookies), cookies
    return "; ".join(cookies)


async def test_a_cookie_session_needs_xsrf_even_with_a_token_header_that_authenticates_nothing(
    jp_fetch: Any, jp_serverapp: Any, jp_http_port: int, jp_base_url: str
) -> None:
    """Only a request the token authenticated skips the XSRF check, as in Jupyter itself: a
    request that the browser's login cookie authenticates needs ``_xsrf`` whatever its
    ``Authorization`` header says (a forged cross-site request could add one)."""
    # jp_fetch: starts the HTTP server on jp_http_port
    base = f"http://localhost:{jp_http_port}{jp_base_url}"
    cookie = await _login_cookie(base, jp_serverapp.identity_provider.token)
    url = f"{base}coflux/api/projects"
    client = AsyncHTTPClient()

    # The cookie alone, without _xsrf, is refused.
    with pytest.raises(HTTPClientError) as refused:
        await client.fetch(url, method="POST", body=json.dumps({"name": "a"}), headers={"Cookie": cookie})
    assert refused.value.code == 403

    # So is the same forged request with a meaningless 'Authorization: token x'.
    headers = {"Cookie": cookie, "Authorization": "token not-a-real-token"}
    with pytest.raises(HTTPClientError) as forged:
        await client.fetch(url, method="POST", body=json.dumps({"name": "b"}), headers=headers)
    assert forged.value.code == 403
    projects = json.loads((await jp_fetch("coflux", "api", "projects")).body)["projects"]
    assert not {"a", "b"} & {p["name"] for p in projects}
