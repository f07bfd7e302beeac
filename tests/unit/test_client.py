"""The REST client and the command line against a tiny real HTTP server serving canned answers."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from coflux.cli import main
from coflux.client import (
    _REFUSALS,
    Client,
    ExecutionReference,
)
from coflux.errors import (
    BadRequest,
    Conflict,
    ExecutionCancelled,
    ExecutionError,
    ExecutionTimeout,
    Forbidden,
    NotCoflux,
    NotFound,
    RequestError,
    ServerUnavailable,
    Unauthorized,
)
from coflux.serialization import serialize
from tests.support.http import FakeHTTPServer, Reply, Request

Answer = tuple[int, Any]  # status, JSON body (bytes are sent raw)


@dataclass
class CannedAPI:
    """Coflux's REST API as canned answers per route, and a blob store."""

    url: str = ""
    routes: dict[tuple[str, str], list[Answer]] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    blobs: dict[str, bytes] = field(default_factory=dict)

    def on(self, method: str, path: str, *answers: Answer) -> None:
        """Answer ``method path`` with ``answers`` in turn, repeating the last one."""
        self.routes[(method, "/coflux/api/" + path)] = list(answers)

    def respond(self, request: Request) -> Reply:
        status, payload = self.answer(request)
        raw = payload if isinstance(payload, bytes) else b""
        if payload is not None and not isinstance(payload, bytes):
            raw = json.dumps(payload).encode()
        return Reply(status, raw)

    def answer(self, request: Request) -> Answer:
        if "/blobs/" in request.path:
            key = request.path.rsplit("/", 1)[1]
            if request.method == "PUT":
                self.blobs[key] = request.body
                return 204, None
            return (200, self.blobs[key]) if key in self.blobs else (404, None)
        # A long poll (``wait=S``) or a summary (``steps=false``) is answered like the plain
        # request: the fake neither holds requests nor trims its canned runs.
        path = re.sub(r"[?&](wait|steps)=[^&]*", "", request.path)
        answers = self.routes.get((request.method, path))
        if not answers:
            return 404, {"error": {"code": "not_found", "message": f"no route {request.path}"}}
        return answers.pop(0) if len(answers) > 1 else answers[0]


@pytest.fixture
def fake() -> Iterator[CannedAPI]:
    api = CannedAPI()
    with FakeHTTPServer(api.respond) as server:
        api.url = server.url + "coflux"
        api.requests = server.requests
        yield api


@pytest.fixture(autouse=True)
def isolated_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("URL", "TOKEN", "PROJECT", "WORKSPACE"):
        monkeypatch.delenv(f"COFLUX_{name}", raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def client(fake: CannedAPI) -> Client:
    return Client(fake.url, token="secret", project="proj", workspace="dev")


def run_json(status: str, **extra: Any) -> dict[str, Any]:
    steps = [
        {
            "step_id": "Rx:1",
            "parent_step_id": None,
            "module": "flows",
            "target": "main",
            "executions": [{"execution_id": "Rx:1:1", "attempt": 1, "workspace": "dev", "state": status}],
        }
    ]
    return {"run_id": "Rx", "workspace": "dev", "status": status, "steps": steps, **extra}


# -- requests and error mapping -------------------------------------------------------------------


def test_requests_carry_token_and_json(fake: CannedAPI, client: Client) -> None:
    fake.on("GET", "projects", (200, {"projects": [{"name": "proj"}]}))
    fake.on("POST", "projects/proj/workspaces", (201, {"name": "dev/ana", "base": "dev"}))
    assert client.projects() == [{"name": "proj"}]
    assert client.create_workspace("dev/ana", base="dev") == {"name": "dev/ana", "base": "dev"}
    first, second = fake.requests
    assert first.headers["Authorization"] == "token secret"
    assert json.loads(second.body) == {"name": "dev/ana", "base": "dev"}


@pytest.mark.parametrize(
    ("status", "body", "expected", "message"),
    [
        (
            404,
            {"error": {"code": "not_found", "message": "no project x"}},
            NotFound,
            "no project x",
        ),
        (409, {"error": {"code": "conflict", "message": "exists"}}, Conflict, "exists"),
        (400, {"error": {"code": "bad_request", "message": "bad args"}}, BadRequest, "bad args"),
        (401, None, Unauthorized, "the server at {url} refused the request (HTTP 401): " + _REFUSALS[401]),
        (
            403,
            {"message": "Forbidden"},
            Forbidden,
            "the server at {url} refused the request (HTTP 403): " + _REFUSALS[403],
        ),
        (
            500,
            b"<html>boom</html>",
            NotCoflux,
            "{url} did not answer as Coflux (it answers HTTP 500 with an HTML page): is Coflux "
            "running behind it?",
        ),
        (
            404,
            b"\n<!DOCTYPE HTML>\n<html><title>Jupyter Server</title>",
            NotCoflux,
            "{url} is not a Coflux server (it answers HTTP 404 with an HTML page); use the server's "
            "Coflux URL, e.g. {url}",
        ),
        (
            404,
            {"message": "Not Found", "reason": None},  # Jupyter's own API
            NotCoflux,
            "{url} is not a Coflux server (it answers HTTP 404 with JSON that is not Coflux's); use "
            "the server's Coflux URL, e.g. {url}",
        ),
        (
            200,
            b"<html>a page</html>",
            NotCoflux,
            "{url} is not a Coflux server (it answers HTTP 200 with an HTML page); use the server's "
            "Coflux URL, e.g. {url}",
        ),
    ],
)
def test_error_bodies_map_to_exception_classes(
    fake: CannedAPI,
    client: Client,
    status: int,
    body: Any,
    expected: type[RequestError],
    message: str,
) -> None:
    fake.on("GET", "projects", (status, body))
    with pytest.raises(expected) as caught:
        client.projects()
    assert type(caught.value) is expected
    assert caught.value.message == message.format(url=fake.url)


def test_unknown_error_code_keeps_code(fake: CannedAPI, client: Client) -> None:
    fake.on("GET", "projects", (503, {"error": {"code": "busy", "message": "later"}}))
    with pytest.raises(RequestError) as caught:
        client.projects()
    assert caught.value.code == "busy"


def test_connection_refused_is_a_clear_request_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = Client(f"http://127.0.0.1:{port}/coflux")
    with pytest.raises(ServerUnavailable, match=f"cannot reach the Coflux server at .*:{port}"):
        client.projects()


# -- runs -----------------------------------------------------------------------------------------


def test_start_run_serializes_arguments_and_uploads_blobs(fake: CannedAPI, client: Client) -> None:
    fake.on("POST", "projects/proj/workspaces/dev/runs", (201, {"run_id": "Rx"}))
    big = b"z" * 20_000
    run = client.start_run("flows:main", (1, 2), big)
    assert run.id == "Rx"
    body = json.loads(fake.requests[-1].body)
    assert body["module"] == "flows" and body["target"] == "main"
    assert body["arguments"][0] == {"$c": "tuple", "items": [1, 2]}
    key = body["arguments"][1]["blob"]
    assert fake.blobs[key] == big


def test_start_run_binds_keyword_arguments(fake: CannedAPI, client: Client) -> None:
    parameters = [{"name": "a"}, {"name": "b"}, {"name": "c", "has_default": True}]
    workflows = [{"module": "flows", "name": "main", "parameters": parameters}]
    fake.on("GET", "projects/proj/workspaces/dev/workflows", (200, {"workflows": workflows}))
    fake.on("POST", "projects/proj/workspaces/dev/runs", (201, {"run_id": "Rx"}))
    client.start_run("flows:main", 1, b=2)
    assert json.loads(fake.requests[-1].body)["arguments"] == [1, 2]
    with pytest.raises(BadRequest, match="unexpected"):
        client.start_run("flows:main", 1, d=2)
    with pytest.raises(BadRequest, match="missing argument 'b'"):
        client.start_run("flows:main", 1, c=3)


def test_result_polls_until_done_and_decodes_value(fake: CannedAPI, client: Client) -> None:
    value = serialize({"pair": (1, 2), "child": ExecutionReference("Rx:2:1")}, client.put_blob)
    done = run_json("succeeded", result={"described": True}, result_value=value)
    fake.on("GET", "projects/proj/runs/Rx", (200, run_json("running")), (200, done))
    run = client.get_run("Rx")
    assert run.result(timeout=10) == {"pair": (1, 2), "child": ExecutionReference("Rx:2:1")}


def test_result_fetches_blob_values(fake: CannedAPI, client: Client) -> None:
    payload = b"q" * 50_000
    value = serialize(payload, client.put_blob)
    fake.on("GET", "projects/proj/runs/Rx", (200, run_json("succeeded", result_value=value)))
    assert client.get_run("Rx").result() == payload


def test_failed_run_raises_the_original_type(fake: CannedAPI, client: Client) -> None:
    error = {"type": "builtins.ValueError", "message": "bad input", "traceback": "tb"}
    fake.on("GET", "projects/proj/runs/Rx", (200, run_json("failed", error=error)))
    with pytest.raises(ValueError, match="bad input") as caught:
        client.get_run("Rx").result()
    assert isinstance(caught.value, ExecutionError)
    assert caught.value.execution_id == "Rx:1:1"


def test_a_run_the_orchestrator_stopped_raises_execution_terminated(fake: CannedAPI, client: Client) -> None:
    data = run_json("failed")
    data["error"] = {"type": "coflux.ExecutionTimeout", "message": "the workflow's execution timed out"}
    fake.on("GET", "projects/proj/runs/Rx", (200, data))
    with pytest.raises(ExecutionTimeout) as caught:
        client.get_run("Rx").result()
    assert not isinstance(caught.value, ExecutionError)


def test_cancelled_run_and_timeout(fake: CannedAPI, client: Client) -> None:
    fake.on("GET", "projects/proj/runs/Rx", (200, run_json("cancelled")))
    with pytest.raises(ExecutionCancelled):
        client.get_run("Rx").result()
    fake.on("GET", "projects/proj/runs/Ry", (200, run_json("running")))
    with pytest.raises(TimeoutError):
        client.get_run("Ry").result(timeout=0.05)
    # result() long-polls for a summary: the server holds the request instead of the client
    # polling in a loop, and leaves out the steps the client doesn't need
    assert "wait=" in fake.requests[-1].path and "steps=false" in fake.requests[-1].path


def test_run_cancel_and_rerun(fake: CannedAPI, client: Client) -> None:
    fake.on("GET", "projects/proj/runs/Rx", (200, run_json("running")))
    fake.on("POST", "projects/proj/runs/Rx/cancel", (200, {"run_id": "Rx", "cancelled": 3}))
    fake.on("POST", "projects/proj/steps/Rx%3A1/rerun", (201, {"execution_id": "Rx:1:2"}))
    run = client.get_run("Rx")
    assert run.cancel() == 3  # the whole run: also what goes on after it ended
    assert fake.requests[-1].path.endswith("/runs/Rx/cancel")
    assert run.rerun("Rx:1", workspace="dev/ana") == "Rx:1:2"
    assert json.loads(fake.requests[-1].body) == {"workspace": "dev/ana"}
    assert run.status == "running"
    assert "Rx" in repr(run)


def test_unknown_run_is_not_found(fake: CannedAPI, client: Client) -> None:
    with pytest.raises(NotFound):
        client.get_run("Rnope")


# -- command line ---------------------------------------------------------------------------------


def cli(fake: CannedAPI, *args: str) -> Any:
    """``coflux ARGS`` against ``fake``, with ``--workspace dev`` for the commands that take it."""
    options = ["--url", fake.url, "--project", "proj"]
    if args[0] in ("submit", "worker") or args[:2] in (("runs", "show"), ("runs", "rerun"), ("runs", "list")):
        options += ["--workspace", "dev"]
    return CliRunner().invoke(main, [*args, *options])


def test_cli_submit_success_prints_result(fake: CannedAPI) -> None:
    fake.on("POST", "projects/proj/workspaces/dev/runs", (201, {"run_id": "Rx"}))
    done = run_json("succeeded", result={"total": 3})
    fake.on("GET", "projects/proj/runs/Rx?workspace=dev", (200, run_json("running")), (200, done))
    outcome = cli(fake, "submit", "flows:main", "[1, 2]", '"x"', "--json")
    assert outcome.exit_code == 0, outcome.output
    assert json.loads(outcome.stdout) == {
        "run_id": "Rx",
        "status": "succeeded",
        "result": {"total": 3},
        "error": None,
    }
    assert json.loads(fake.requests[0].body)["arguments"] == [[1, 2], "x"]


def test_cli_submit_failure_exits_1(fake: CannedAPI) -> None:
    fake.on("POST", "projects/proj/workspaces/dev/runs", (201, {"run_id": "Rx"}))
    error = {"type": "builtins.KeyError", "message": "'k'"}
    fake.on("GET", "projects/proj/runs/Rx?workspace=dev", (200, run_json("failed", error=error)))
    outcome = cli(fake, "submit", "flows:main")
    assert outcome.exit_code == 1
    assert "builtins.KeyError: 'k'" in outcome.stderr


def test_cli_bad_json_argument_is_a_usage_error(fake: CannedAPI) -> None:
    outcome = cli(fake, "submit", "flows:main", "not-json")
    assert outcome.exit_code == 2
    assert "not JSON" in outcome.stderr
    assert fake.requests == []


def test_cli_server_error_prints_message_and_exits_1(fake: CannedAPI) -> None:
    outcome = cli(fake, "runs", "show", "Rnope")
    assert outcome.exit_code == 1
    assert outcome.stderr.startswith("error: no route")


def test_cli_runs_show_and_lists(fake: CannedAPI) -> None:
    fake.on("GET", "projects/proj/runs/Rx?workspace=dev", (200, run_json("succeeded")))
    workspaces = [{"name": "main", "base": None, "state": "active"}]
    workspaces.append({"name": "dev", "base": "main", "state": "paused"})
    fake.on("GET", "projects/proj/workspaces", (200, {"workspaces": workspaces}))
    shown = cli(fake, "runs", "show", "Rx")
    assert shown.exit_code == 0
    assert "flows:main() [Rx:1] #1 succeeded" in shown.stdout
    listed = cli(fake, "workspaces", "list")
    assert listed.stdout.splitlines() == ["main", "dev (base: main) [paused]"]


def test_workspace_changes_post_to_encoded_paths(fake: CannedAPI, client: Client) -> None:
    answer = {"name": "dev/new", "base": None, "state": "active"}
    fake.on("POST", "projects/proj/workspaces/dev/rename", (200, answer))
    fake.on("POST", "projects/proj/workspaces/dev%2Fnew/rebase", (200, {**answer, "base": "main"}))
    fake.on("POST", "projects/proj/workspaces/dev%2Fnew/pause", (200, {**answer, "state": "paused"}))
    assert client.rename_workspace("dev", "dev/new") == answer
    assert client.workspace == "dev/new"  # the client follows its own workspace
    assert client.rebase_workspace("dev/new", "main")["base"] == "main"
    assert client.pause_workspace()["state"] == "paused"  # default: the client's workspace
    bodies = [json.loads(r.body) for r in fake.requests]
    assert bodies == [{"name": "dev/new"}, {"base": "main"}, {}]
    fake.on(
        "POST",
        "projects/proj/workspaces/gone/archive",
        (409, {"error": {"code": "conflict", "message": "x"}}),
    )
    with pytest.raises(Conflict):
        client.archive_workspace("gone")


def test_cli_workspace_commands(fake: CannedAPI) -> None:
    answer = {"name": "dev", "base": "main", "state": "paused"}
    fake.on("POST", "projects/proj/workspaces/dev/pause", (200, answer))
    fake.on("POST", "projects/proj/workspaces/dev/resume", (200, {**answer, "state": "active"}))
    fake.on("POST", "projects/proj/workspaces/dev/archive", (200, {**answer, "state": "archived"}))
    fake.on("POST", "projects/proj/workspaces/dev/rename", (200, {**answer, "name": "qa"}))
    fake.on("POST", "projects/proj/workspaces/dev/rebase", (200, {**answer, "base": None}))
    assert cli(fake, "workspaces", "pause", "dev").stdout == "paused workspace dev (base: main) [paused]\n"
    assert cli(fake, "workspaces", "resume", "dev").stdout == "resumed workspace dev (base: main)\n"
    archived = cli(fake, "workspaces", "archive", "dev", "--json")
    assert json.loads(archived.stdout) == {**answer, "state": "archived"}
    assert cli(fake, "workspaces", "rename", "dev", "qa").stdout.startswith("renamed workspace qa")
    assert cli(fake, "workspaces", "rebase", "dev").stdout == "rebased workspace dev [paused]\n"
    cli(fake, "workspaces", "rebase", "dev", "--base", "main")
    bodies = [json.loads(r.body) for r in fake.requests]
    assert bodies[-3:] == [{"name": "qa"}, {"base": None}, {"base": "main"}]
    missing = cli(fake, "workspaces", "pause", "nowhere")
    assert missing.exit_code == 1 and missing.stderr.startswith("error: no route")
    assert cli(fake, "workspaces", "rename", "dev").exit_code == 2  # NEW is missing
