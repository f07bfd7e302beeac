"""CofluxHandler.check_xsrf_cookie (jupyter_ext/handlers.py:48-52) skips the XSRF check whenever
*any* token is present in an Authorization header, even one that authenticates nothing. A request
that is really authenticated by the browser's login cookie then needs no _xsrf: the only thing left
between it and a cross-site forgery is the browser's CORS preflight for the Authorization header
(gone wherever allow_origin/credentials are configured). Jupyter itself skips XSRF only when the
request was token-*authenticated* (self.token_authenticated)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPClientError

pytest_plugins = ("pytest_jupyter.jupyter_server",)


@pytest.fixture
def jp_server_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    for name in ("COFLUX_URL", "COFLUX_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return {
        "ServerApp": {"jpserver_extensions": {"jupyter_ext": True}},
        "Coflux": {"data_dir": str(tmp_path / "coflux-data")},
    }


async def _login_cookie(base: str, token: str) -> str:
    response = await AsyncHTTPClient().fetch(f"{base}api/status?token={token}")
    cookies = [c.split(";", 1)[0] for c in response.headers.get_list("Set-Cookie")]
    assert any(c.startswith("username-") for c in cookies), cookies
    return "; ".join(cookies)


async def test_a_bogus_token_header_switches_off_xsrf_for_cookie_sessions(
    jp_fetch: Any, jp_serverapp: Any, jp_http_port: int, jp_base_url: str
) -> None:
    # jp_fetch: starts the HTTP server on jp_http_port
    base = f"http://localhost:{jp_http_port}{jp_base_url}"
    cookie = await _login_cookie(base, jp_serverapp.identity_provider.token)
    url = f"{base}coflux/api/projects"
    client = AsyncHTTPClient()

    # Control: the cookie alone, without _xsrf, is refused.
    with pytest.raises(HTTPClientError) as refused:
        await client.fetch(url, method="POST", body=json.dumps({"name": "a"}), headers={"Cookie": cookie})
    assert refused.value.code == 403

    # The same forged request plus a meaningless 'Authorization: token x' must be refused too.
    headers = {"Cookie": cookie, "Authorization": "token not-a-real-token"}
    try:
        response = await client.fetch(url, method="POST", body=json.dumps({"name": "b"}), headers=headers)
    except HTTPClientError as err:
        assert err.code == 403
        return
    pytest.fail(f"cookie-authenticated POST without _xsrf succeeded: {response.code} {response.body!r}")
