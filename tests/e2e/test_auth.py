"""Who may do what, against a real `coflux server` and a `coflux worker` holding a worker token:
every route closed to strangers and to other projects' tokens, the two token scopes, the Jupyter
APIs closed to project tokens, and `coflux tokens create`."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from fractions import Fraction
from typing import Any

import pytest
from tornado import httpclient, web, websocket

import coflux as cf
from coflux.serialization import serialize
from jupyter_ext.app import _ROUTES
from jupyter_ext.auth import SCOPES
from jupyter_ext.handlers import UnknownRouteHandler
from tests.support.harness import Response, Server, Worker, environment, wait_for_run, wait_until

pytestmark = pytest.mark.e2e

RUNS = "api/projects/alpha/workspaces/main/runs"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("auth") / "data").start()
    for project in ("alpha", "beta"):
        assert server.request("POST", "api/projects", {"name": project}).status == 201
    yield server
    server.stop()


def mint(server: Server, project: str, scope: str) -> str:
    response = server.request("POST", f"api/projects/{project}/tokens", {"scope": scope})
    assert response.status == 201, response.body
    data = response.json()
    assert (data["project"], data["scope"]) == (project, scope)
    token: str = data["token"]
    assert token.startswith(f"cfx_{scope}_")
    return token


@pytest.fixture(scope="module")
def tokens(server: Server) -> dict[str, str]:
    return {
        "worker": mint(server, "alpha", "worker"),
        "submit": mint(server, "alpha", "submit"),
        "beta": mint(server, "beta", "worker"),
    }


@pytest.fixture(scope="module")
def worker(server: Server, tokens: dict[str, str]) -> Iterator[Worker]:
    worker = Worker(server, "e2e_auth_flows", project="alpha", token=tokens["worker"]).start()
    yield worker
    worker.stop()


def error(response: Response, status: int, code: str) -> str:
    assert response.status == status, (response.status, response.body)
    body = response.json()["error"]
    assert body["code"] == code
    message: str = body["message"]
    return message


def start(server: Server, token: str, workflow: str, *arguments: Any) -> Response:
    """Start a run of ``e2e_auth_flows:workflow`` once the worker has registered it."""
    body = {"module": "e2e_auth_flows", "target": workflow, "arguments": list(arguments)}

    def attempt() -> Response | None:
        response = server.request("POST", RUNS, body, token=token)
        return None if response.status == 404 else response

    started: Response = wait_until(attempt, 30, f"{workflow} to be registered")
    return started


# -- every route is closed ------------------------------------------------------------------------

_GROUP = re.compile(r"\(([^()]*)\)")
_METHODS = ("get", "post", "put", "delete", "patch")


def concrete(pattern: str, project: str) -> str:
    """A path matching ``pattern``: the first segment group is the project."""
    filled = [0]

    def fill(match: re.Match[str]) -> str:
        filled[0] += 1
        if "|" in match[1]:
            return match[1].split("|")[0]
        return project if filled[0] == 1 else "x"

    return _GROUP.sub(fill, pattern)


def methods(handler: type) -> list[str]:
    return [m for m in _METHODS if getattr(handler, m) is not getattr(web.RequestHandler, m)]


def test_every_route_declares_a_resource_and_refuses_strangers_and_other_projects(
    server: Server, tokens: dict[str, str]
) -> None:
    resources = {resource for resource, _ in SCOPES} | {"coflux:projects", "coflux:tokens", "coflux:workers"}
    walked = 0
    for pattern, handler in _ROUTES:
        if handler is UnknownRouteHandler:  # the one public answer: a JSON 404
            assert server.request("GET", "api/no/such/thing", token=None).status == 404
            continue
        assert handler.auth_resource in resources, f"{handler.__name__} declares no known resource"
        path = concrete(pattern, "alpha")
        is_socket = path.startswith("ws/")
        if is_socket:
            path += "?project=alpha"
        for method in methods(handler):
            verb = method.upper()
            body = {} if verb in ("POST", "PUT", "PATCH") else None
            anonymous = server.request(verb, path, body, token=None)
            assert "authentication required" in error(anonymous, 401, "unauthorized"), (verb, path)
            stranger = server.request(verb, path, body, token=tokens["beta"])
            if pattern.startswith("api/projects/(") or is_socket:
                assert "not valid for project 'alpha'" in error(stranger, 401, "unauthorized"), (verb, path)
            else:  # no project in the path: for the Jupyter server's own users only
                assert "that needs the Jupyter server's own token" in error(stranger, 403, "forbidden")
            walked += 1
    assert walked >= 17


def test_project_tokens_open_no_jupyter_api(server: Server, tokens: dict[str, str]) -> None:
    root = server.url.removesuffix("/coflux")

    def status(method: str, path: str, token: str) -> int:
        data = b"{}" if method == "POST" else None
        request = urllib.request.Request(f"{root}/{path}", data=data, method=method)
        request.add_header("Authorization", f"token {token}")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return int(response.status)
        except urllib.error.HTTPError as err:
            return err.code

    assert status("GET", "api/contents", server.token) == 200  # the server's own token does
    for scope in ("worker", "submit"):
        for method, path in (("GET", "api/contents"), ("POST", "api/kernels"), ("GET", "api/sessions")):
            assert status(method, path, tokens[scope]) == 403, (scope, method, path)  # Jupyter: not logged in
    kernels = json.loads(urllib.request.urlopen(_authorized(f"{root}/api/kernels", server.token)).read())
    assert kernels == []


def _authorized(url: str, token: str) -> urllib.request.Request:
    request = urllib.request.Request(url)
    request.add_header("Authorization", f"token {token}")
    return request


# -- the two scopes -------------------------------------------------------------------------------


def _pickled(value: Any) -> Any:
    return serialize(value, lambda data: pytest.fail("small values stay inline"))


def _json_blob_holding(server: Server, token: str, value: Any) -> dict[str, Any]:
    """``{"$c": "json", "blob": K}`` whose blob holds ``value``'s tagged JSON, uploaded with ``token``."""
    raw = json.dumps([_pickled(value)]).encode()
    key = hashlib.sha256(raw).hexdigest()
    assert server.request("PUT", f"api/projects/alpha/blobs/{key}", raw=raw, token=token).status == 201
    return {"$c": "json", "blob": key, "size": len(raw)}


def test_a_submit_token_runs_json_reads_everything_and_is_refused_the_rest(
    server: Server, tokens: dict[str, str], worker: Worker
) -> None:
    submit = tokens["submit"]
    started = start(server, submit, "double", 21)
    assert started.status == 201, started.body
    run_id = started.json()["run_id"]
    data = wait_for_run(server, run_id, project="alpha")
    assert data["status"] == "succeeded" and data["result"] == 42
    execution = data["steps"][0]["executions"][0]["execution_id"]
    step = data["steps"][0]["step_id"]
    reads = [
        f"api/projects/alpha/runs/{run_id}",
        f"api/projects/alpha/executions/{execution}/logs",
        "api/projects/alpha/workspaces",
        "api/projects/alpha/workspaces/main/workflows",
        RUNS,
    ]
    for path in reads:
        assert server.request("GET", path, token=submit).status == 200, path
    logs = server.request("GET", f"api/projects/alpha/executions/{execution}/logs", token=submit).json()
    assert [entry["message"] for entry in logs["logs"]] == ["doubling 21"]
    rerun = server.request("POST", f"api/projects/alpha/steps/{step}/rerun", {}, token=submit)
    assert rerun.status == 201, rerun.body
    cancel = server.request("POST", f"api/projects/alpha/executions/{execution}/cancel", {}, token=submit)
    assert cancel.status == 200

    # Nothing a worker would unpickle: inline, nor inside a JSON value kept as a blob.
    hidden = _json_blob_holding(server, tokens["worker"], Fraction(1, 3))
    for argument in (_pickled(Fraction(1, 3)), {"nested": [_pickled(Fraction(1, 3))]}, hidden):
        refused = server.request(
            "POST",
            RUNS,
            {"module": "e2e_auth_flows", "target": "kind", "arguments": [argument]},
            token=submit,
        )
        message = error(refused, 403, "forbidden")
        assert message.startswith("a submit token can't start runs with pickled arguments"), message
        assert "use JSON arguments, or a worker token" in message
    runs = server.request("GET", RUNS + "?workflow=e2e_auth_flows:kind", token=submit).json()["runs"]
    assert runs == [], "a refused run was not made"

    workspace = server.request("POST", "api/projects/alpha/workspaces", {"name": "ci"}, token=submit)
    assert "create or change workspaces" in error(workspace, 403, "forbidden")
    blob = server.request("PUT", f"api/projects/alpha/blobs/{'0' * 64}", raw=b"x", token=submit)
    assert "upload blobs" in error(blob, 403, "forbidden")
    assert server.request("GET", f"api/projects/alpha/blobs/{hidden['blob']}", token=submit).status == 200
    assert "make tokens" in error(
        server.request("POST", "api/projects/alpha/tokens", {"scope": "worker"}, token=submit),
        403,
        "forbidden",
    )
    assert "list projects" in error(server.request("GET", "api/projects", token=submit), 403, "forbidden")
    other = server.request("GET", "api/projects/beta/workspaces", token=submit)
    assert "not valid for project 'beta'" in error(other, 401, "unauthorized")

    async def sockets() -> None:
        with pytest.raises(httpclient.HTTPClientError) as refused:
            await _socket(server, "worker", "alpha", submit)
        assert refused.value.code == 403
        assert "a submit token can't open the worker socket: give workers a worker token" in str(
            refused.value
        )
        events = await _socket(server, "events", "alpha", submit)
        try:
            run = await asyncio.to_thread(start, server, submit, "double", 1)
            run_id = run.json()["run_id"]
            while True:
                event = json.loads(await asyncio.wait_for(events.read_message(), 30))  # type: ignore[arg-type]
                if event.get("run_id") == run_id and event.get("status") == "succeeded":
                    break
        finally:
            events.close()

    asyncio.run(sockets())


def test_a_worker_token_serves_its_project_with_pickles_and_nothing_more(
    server: Server, tokens: dict[str, str], worker: Worker
) -> None:
    token = tokens["worker"]  # the worker process connected with it: the runs below ran there
    hidden = _json_blob_holding(server, token, Fraction(2, 3))
    expectations = [
        (_pickled(Fraction(1, 3)), "fractions.Fraction: 1/3"),
        (hidden, "builtins.list: [Fraction(2, 3)]"),
    ]
    for argument, expected in expectations:
        started = start(server, token, "kind", argument)
        assert started.status == 201, started.body
        data = wait_for_run(server, started.json()["run_id"], project="alpha")
        assert (data["status"], data["result"]) == ("succeeded", expected), data
    created = server.request(
        "POST", "api/projects/alpha/workspaces", {"name": "dev", "base": "main"}, token=token
    )
    assert created.status == 201, created.body
    assert "list projects" in error(server.request("GET", "api/projects", token=token), 403, "forbidden")
    assert "make tokens" in error(
        server.request("GET", "api/projects/alpha/token", token=token), 403, "forbidden"
    )
    assert error(server.request("GET", "api/projects/beta/workspaces", token=token), 401, "unauthorized")

    async def sockets() -> None:
        with pytest.raises(httpclient.HTTPClientError) as refused:
            await _socket(server, "worker", "beta", token)
        assert refused.value.code == 401
        (await _socket(server, "events", "alpha", token)).close()

    asyncio.run(sockets())


async def _socket(server: Server, kind: str, project: str, token: str) -> websocket.WebSocketClientConnection:
    url = server.url.replace("http://", "ws://") + f"/ws/{kind}?project={project}"
    request = httpclient.HTTPRequest(url, headers={"Authorization": f"token {token}"})
    return await websocket.websocket_connect(request)


def test_a_query_token_is_for_reading_only(server: Server, tokens: dict[str, str]) -> None:
    query = f"?token={tokens['worker']}"
    assert server.request("GET", "api/projects/alpha/workspaces" + query, token=None).status == 200
    posted = server.request("POST", "api/projects/alpha/workspaces" + query, {"name": "q"}, token=None)
    assert "'Authorization: token T' header" in error(posted, 401, "unauthorized")


# -- the command line -----------------------------------------------------------------------------


def coflux(server: Server, *args: str, token: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "coflux.cli", *args, "--url", server.url, "--token", token]
    return subprocess.run(command, env=environment(), capture_output=True, text=True, timeout=60, check=False)


def test_coflux_tokens_create_makes_both_scopes(server: Server, tokens: dict[str, str]) -> None:
    made = coflux(server, "tokens", "create", "--project", "beta", "--scope", "submit", token=server.token)
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert token.startswith("cfx_submit_") and "\n" not in token
    assert server.request("GET", "api/projects/beta/workspaces", token=token).status == 200
    as_json = coflux(
        server, "tokens", "create", "--project", "beta", "--scope", "worker", "--json", token=server.token
    )
    assert as_json.returncode == 0, as_json.stderr
    data = json.loads(as_json.stdout)
    assert (data["project"], data["scope"]) == ("beta", "worker") and data["token"].startswith("cfx_worker_")
    refused = coflux(
        server, "tokens", "create", "--project", "alpha", "--scope", "worker", token=tokens["submit"]
    )
    assert refused.returncode == 1
    assert "error: a submit token can't make tokens" in refused.stderr
    bad = coflux(server, "tokens", "create", "--project", "alpha", "--scope", "admin", token=server.token)
    assert bad.returncode == 2 and "'admin' is not one of 'worker', 'submit'" in bad.stderr


def test_a_worker_holding_a_submit_token_is_told_why_it_is_refused(
    server: Server, tokens: dict[str, str]
) -> None:
    worker = cf.Worker([], url=server.url, token=tokens["submit"], project="alpha")
    worker.start()
    try:
        with pytest.raises(
            cf.Forbidden, match="a submit token can't open the worker socket: give workers a worker"
        ):
            worker.wait_connected(30)
    finally:
        worker.stop(timeout=1)
