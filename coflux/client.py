"""The programmatic face of the REST API: :class:`Client` and the :class:`Run` handles it returns.

Synchronous, standard library only (``urllib.request``). Settings come from the arguments, then the
``COFLUX_*`` environment variables, then ``coflux.toml`` (the current folder or a parent), then the
defaults; see :func:`resolve_settings`.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any

from coflux.errors import (
    TERMINATED_BY_STATE,
    ConfigurationError,
    ExecutionCancelled,
    RequestError,
    execution_error_from_data,
    request_error,
)
from coflux.models import JSON, ExecutionId, RunId
from coflux.render import text_tree as text_tree  # re-exported: `Run.text_tree` and the widgets use it
from coflux.serialization import deserialize, serialize

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised only on Python 3.10
    import tomli as tomllib

DEFAULT_URL = "http://127.0.0.1:8888/coflux"
DEFAULT_PROJECT = "default"
DEFAULT_WORKSPACE = "main"
LONG_POLL = 30.0
"""Seconds the server may hold a request for a run's result before answering "still running"."""
CONFIG_FILE = "coflux.toml"
_SETTINGS = ("url", "token", "project", "workspace")
_REFUSALS = {
    401: "no valid credential was sent: pass a token with --token or COFLUX_TOKEN (`coflux tokens "
    "create --project P --scope worker|submit` makes one, with the server's own token)",
    403: "the credential may not do this (a submit token can't open the worker socket or start runs "
    "with pickled arguments; project tokens can't list or create projects)",
}
"""What a 401 or 403 without Coflux's JSON error body (a proxy's page, a Jupyter API) means."""
_STATUS_CODES = {401: "unauthorized", 403: "forbidden"}


class ServerUnavailable(RequestError):
    """The server could not be reached at all (refused, unresolvable, timed out)."""

    code = "unavailable"


class NotCoflux(ServerUnavailable):
    """Something answered at the URL, but not Coflux's API (an HTML page, another JSON API): a
    wrong URL, or a proxy whose server is down."""


def not_coflux(url: str, status: int, body: bytes) -> NotCoflux:
    """The error for an answer that isn't Coflux's: its status and what it looked like, never
    its text (a page of HTML helps nobody)."""
    kind = "an HTML page" if body.lstrip()[:1] == b"<" else "something that isn't Coflux's JSON"
    try:
        status_text = f"HTTP {status} {HTTPStatus(status).phrase}"
    except ValueError:
        status_text = f"HTTP {status}"
    if status >= 500:
        advice = "is Coflux running behind it?"
    else:
        advice = f"check the URL: Coflux's ends in /coflux, e.g. {DEFAULT_URL}"
    return NotCoflux(f"no Coflux API at {url}: it answered {status_text} with {kind} ({advice})")


_started: list[tuple[str, str]] = []
_started_lock = threading.Lock()


def started_runs() -> list[tuple[str, str]]:
    """``(project, run_id)`` of every run this process started through :meth:`Client.start_run`
    (``Workflow.run`` included), oldest first. ``coflux run`` asks a notebook's kernel for it to
    learn which runs the notebook started."""
    with _started_lock:
        return list(_started)


def _record_started(project: str, run_id: str) -> None:
    with _started_lock:
        _started.append((project, run_id))


@dataclass(frozen=True)
class Settings:
    url: str
    token: str | None
    project: str
    workspace: str


def find_config(start: Path | None = None) -> Path | None:
    """The nearest ``coflux.toml`` in ``start`` (default: the current folder) or a parent."""
    folder = (start or Path.cwd()).resolve()
    for candidate in (folder, *folder.parents):
        path = candidate / CONFIG_FILE
        if path.is_file():
            return path
    return None


def read_config(path: Path) -> dict[str, str]:
    """The settings in a ``coflux.toml``: its ``[coflux]`` table, or else its top-level keys."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise ConfigurationError(f"cannot read {path}: {err}") from err
    table = document.get("coflux", document)
    if not isinstance(table, dict):
        raise ConfigurationError(f"{path}: [coflux] must be a table")
    settings: dict[str, str] = {}
    for key in _SETTINGS:
        if key in table:
            if not isinstance(table[key], str):
                raise ConfigurationError(f"{path}: {key} must be a string")
            settings[key] = table[key]
    return settings


def resolve_settings(
    url: str | None = None,
    token: str | None = None,
    project: str | None = None,
    workspace: str | None = None,
) -> Settings:
    """Arguments, then ``COFLUX_URL``/``_TOKEN``/``_PROJECT``/``_WORKSPACE``, then
    ``coflux.toml``, then the defaults (``http://127.0.0.1:8888/coflux``, project ``default``,
    workspace ``main``)."""
    given = {"url": url, "token": token, "project": project, "workspace": workspace}
    config_path = find_config()
    config = read_config(config_path) if config_path else {}
    defaults = {"url": DEFAULT_URL, "project": DEFAULT_PROJECT, "workspace": DEFAULT_WORKSPACE}
    chosen: dict[str, str | None] = {}
    for key in _SETTINGS:
        environment = os.environ.get(f"COFLUX_{key.upper()}") or None
        chosen[key] = given[key] or environment or config.get(key) or defaults.get(key)
    return Settings(
        url=str(chosen["url"]).rstrip("/"),
        token=chosen["token"],
        project=str(chosen["project"]),
        workspace=str(chosen["workspace"]),
    )


@dataclass(frozen=True)
class ExecutionReference:
    """An execution found in a value read by the client: just its id. It can be passed back as an
    argument, where it is sent as the same reference."""

    id: str

    def __coflux_reference__(self) -> tuple[str, str]:
        return ("execution", self.id)


@dataclass(frozen=True)
class AssetReference:
    id: str

    def __coflux_reference__(self) -> tuple[str, str]:
        return ("asset", self.id)


def _quote(segment: str) -> str:
    return urllib.parse.quote(segment, safe="")


class Client:
    """A connection to a Coflux server's REST API for one project (and a default workspace)."""

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        project: str | None = None,
        workspace: str | None = None,
        *,
        timeout: float = 30.0,
    ) -> None:
        settings = resolve_settings(url, token, project, workspace)
        self.url = settings.url
        self.token = settings.token
        self.project = settings.project
        self.workspace = settings.workspace
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"Client({self.url!r}, project={self.project!r}, workspace={self.workspace!r})"

    # -- transport ---------------------------------------------------------------------------------

    def _send(
        self, method: str, path: str, data: bytes | None, content_type: str, timeout: float | None = None
    ) -> bytes:
        request = urllib.request.Request(f"{self.url}/api/{path}", data=data, method=method)
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", content_type)
        if self.token:
            request.add_header("Authorization", f"token {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=timeout or self.timeout) as response:
                body: bytes = response.read()
                return body
        except urllib.error.HTTPError as err:
            with err:
                raise _error_from_response(err.code, err.read(), self.url) from None
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise ServerUnavailable(
                f"cannot reach the Coflux server at {self.url}: {reason}"
                " (is it running? set COFLUX_URL or --url)"
            ) from err

    def _request(self, method: str, path: str, body: JSON = None, timeout: float | None = None) -> JSON:
        data = None if body is None else json.dumps(body).encode("utf-8")
        raw = self._send(method, path, data, "application/json", timeout)
        if not raw.strip():
            return None
        try:
            return json.loads(raw)
        except ValueError as err:
            raise not_coflux(self.url, 200, raw) from err

    def _project_path(self, *segments: str) -> str:
        return "/".join(["projects", _quote(self.project), *(_quote(s) for s in segments)])

    def put_blob(self, data: bytes) -> str:
        """Upload bytes to the project's blob store; returns their key."""
        key = hashlib.sha256(data).hexdigest()
        self._send("PUT", self._project_path("blobs", key), data, "application/octet-stream")
        return key

    def get_blob(self, key: str) -> bytes:
        return self._send("GET", self._project_path("blobs", key), None, "")

    # -- projects and workspaces -------------------------------------------------------------------

    def projects(self) -> list[dict[str, Any]]:
        return list(self._request("GET", "projects")["projects"])

    def create_project(self, name: str) -> dict[str, Any]:
        return dict(self._request("POST", "projects", {"name": name}))

    def workspaces(self) -> list[dict[str, Any]]:
        return list(self._request("GET", self._project_path("workspaces"))["workspaces"])

    def create_workspace(self, name: str, base: str | None = None) -> dict[str, Any]:
        body = {"name": name, "base": base}
        return dict(self._request("POST", self._project_path("workspaces"), body))

    def rename_workspace(self, name: str, new_name: str) -> dict[str, Any]:
        """Rename a workspace (its runs follow it). A client whose workspace it was follows too.
        The server refuses while workers are attached to it."""
        data = self._change_workspace(name, "rename", {"name": new_name})
        if self.workspace == name:
            self.workspace = new_name
        return data

    def rebase_workspace(self, name: str, base: str | None) -> dict[str, Any]:
        """Make ``base`` the workspace's base (``None``: none). A cycle is refused (``BadRequest``)."""
        return self._change_workspace(name, "rebase", {"base": base})

    def pause_workspace(self, name: str | None = None) -> dict[str, Any]:
        """Stop dispatching the workspace's queued work (default: this client's workspace)."""
        return self._change_workspace(name or self.workspace, "pause")

    def resume_workspace(self, name: str | None = None) -> dict[str, Any]:
        return self._change_workspace(name or self.workspace, "resume")

    def archive_workspace(self, name: str) -> dict[str, Any]:
        """Archive for good: no new runs; its runs stay readable. Refused while work is in flight."""
        return self._change_workspace(name, "archive")

    def _change_workspace(self, name: str, action: str, body: JSON = None) -> dict[str, Any]:
        return dict(self._request("POST", self._project_path("workspaces", name, action), body or {}))

    def workflows(self, workspace: str | None = None) -> list[dict[str, Any]]:
        path = self._project_path("workspaces", workspace or self.workspace, "workflows")
        data = self._request("GET", path)
        return list(data["workflows"] if isinstance(data, dict) else data)

    # -- runs --------------------------------------------------------------------------------------

    def start_run(self, target: str, *args: Any, workspace: str | None = None, **kwargs: Any) -> Run:
        """Start a run of ``"module:workflow"``. Keyword arguments are bound to the workflow's
        parameters as the server lists them (``workflows()``)."""
        module, _, name = target.rpartition(":")
        if not module or not name:
            raise ConfigurationError(f"expected MODULE:WORKFLOW, got {target!r}")
        workspace = workspace or self.workspace
        values = list(args)
        if kwargs:
            values = _bind_keywords(values, kwargs, self._parameters(module, name, workspace))
        arguments = [serialize(value, self.put_blob) for value in values]
        body = {"module": module, "target": name, "arguments": arguments}
        data = self._request("POST", self._project_path("workspaces", workspace, "runs"), body)
        run_id = RunId(data["run_id"])
        _record_started(self.project, run_id)
        return Run(self, run_id, workspace)

    def _parameters(self, module: str, name: str, workspace: str) -> list[dict[str, Any]]:
        for workflow in self.workflows(workspace):
            if workflow.get("module") == module and workflow.get("name", workflow.get("target")) == name:
                return list(workflow.get("parameters") or [])
        raise request_error("not_found", f"no workflow {module}:{name} in workspace {workspace}")

    def run_data(
        self, run_id: str, workspace: str | None = None, wait: float = 0.0, steps: bool = True
    ) -> dict[str, Any]:
        """The run as the server describes it (DESIGN §5), seen from ``workspace`` if given. With
        ``wait``, the server first waits up to that many seconds for the run to finish; without
        ``steps``, only the status and result come back."""
        path = self._project_path("runs", run_id)
        query: dict[str, Any] = {k: v for k, v in (("workspace", workspace), ("wait", wait)) if v}
        if not steps:
            query["steps"] = "false"
        if query:
            path += "?" + urllib.parse.urlencode(query)
        return dict(self._request("GET", path, timeout=wait + 30 if wait else None))

    def runs(
        self, workflow: str | None = None, workspace: str | None = None, limit: int = 20
    ) -> list[dict[str, Any]]:
        """The newest runs started in ``workspace`` (default the client's), of ``module:name`` if
        given: ``run_id``, ``module``, ``target``, ``status``, ``created_at``."""
        query = {"limit": str(limit)}
        if workflow:
            query["workflow"] = workflow
        path = self._project_path("workspaces", workspace or self.workspace, "runs")
        data = self._request("GET", f"{path}?{urllib.parse.urlencode(query)}")
        assert isinstance(data, dict)
        runs: list[dict[str, Any]] = data["runs"]
        return runs

    def get_run(self, run_id: str, workspace: str | None = None) -> Run:
        data = self.run_data(run_id, workspace)
        return Run(self, RunId(run_id), workspace, data)

    def rerun(self, step_id: str, workspace: str | None = None) -> ExecutionId:
        """Re-run a step in ``workspace`` (default: this client's); returns the new execution id."""
        body = {"workspace": workspace or self.workspace}
        data = self._request("POST", self._project_path("steps", step_id, "rerun"), body)
        return ExecutionId(data["execution_id"])

    def cancel(self, execution_id: str) -> None:
        self._request("POST", self._project_path("executions", execution_id, "cancel"), {})

    def cancel_run(self, run_id: str) -> int:
        """Cancel everything of the run still queued or running (also after the run has ended);
        returns how many executions that cancelled."""
        data = self._request("POST", self._project_path("runs", run_id, "cancel"), {})
        return int(data["cancelled"])

    def logs(self, execution_id: str) -> list[dict[str, Any]]:
        data = self._request("GET", self._project_path("executions", execution_id, "logs"))
        return list(data["logs"])

    def create_token(self, scope: str) -> dict[str, Any]:
        """A new token of this client's project: ``"worker"`` (workers and notebook kernels) or
        ``"submit"`` (CI and dashboards: JSON arguments only). Needs the server's own token.
        Returns ``{"project", "scope", "token"}``."""
        return dict(self._request("POST", self._project_path("tokens"), {"scope": scope}))

    def asset(self, asset_id: str) -> dict[str, Any]:
        return dict(self._request("GET", self._project_path("assets", asset_id)))

    def decode(self, value: JSON) -> Any:
        """The Python value of tagged JSON read from the server (pickles are unpickled)."""
        return deserialize(value, self.get_blob, execution=ExecutionReference, asset=AssetReference)


def _error_from_response(status: int, body: bytes, url: str) -> RequestError:
    try:
        error = json.loads(body)["error"]
        return request_error(str(error["code"]), str(error["message"]))
    except (ValueError, KeyError, TypeError):
        if status in _REFUSALS:
            message = f"the server at {url} refused the request (HTTP {status}): {_REFUSALS[status]}"
            return request_error(_STATUS_CODES[status], message)
        return not_coflux(url, status, body)


def _bind_keywords(args: list[Any], kwargs: dict[str, Any], parameters: list[dict[str, Any]]) -> list[Any]:
    positional = ("positional_only", "positional_or_keyword")
    names = [str(p["name"]) for p in parameters if p.get("kind", positional[1]) in positional]
    unknown = set(kwargs) - set(names)
    if unknown:
        raise request_error("bad_request", f"unexpected keyword arguments: {sorted(unknown)}")
    values = list(args)
    for name in names[len(values) :]:
        if name not in kwargs:
            if any(later in kwargs for later in names[names.index(name) + 1 :]):
                raise request_error("bad_request", f"missing argument {name!r}")
            break
        values.append(kwargs.pop(name))
    if kwargs:
        raise request_error("bad_request", f"multiple values for {sorted(kwargs)}")
    return values


class Run:
    """A run on the server. Attributes that describe the run's state fetch it afresh."""

    def __init__(
        self,
        client: Client,
        run_id: RunId,
        workspace: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        self.client = client
        self.id = run_id
        self._view = workspace
        self._data = data

    @property
    def workspace(self) -> str | None:
        """The workspace the run is seen from: the one asked for, else the run's own."""
        return self._view or (self._data or {}).get("workspace")

    def __repr__(self) -> str:
        return f"Run({self.id!r}, project={self.client.project!r}, workspace={self.workspace!r})"

    def data(self) -> dict[str, Any]:
        """Fetch the run's current description from the server."""
        self._data = self.client.run_data(self.id, self._view)
        return self._data

    @property
    def status(self) -> str:
        return str(self.data()["status"])

    def steps(self) -> list[dict[str, Any]]:
        return list(self.data()["steps"])

    def result(self, timeout: float | None = None) -> Any:
        """Wait for the run to finish and return its value. Raises the workflow's error (an
        :class:`~coflux.errors.ExecutionError`), ``ExecutionCancelled``, or ``TimeoutError``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:  # long polls: the server answers as soon as the run is final
            remaining = LONG_POLL if deadline is None else min(LONG_POLL, deadline - time.monotonic())
            data = self.client.run_data(self.id, self._view, wait=max(remaining, 0.0), steps=False)
            if data["status"] != "running":
                return self._outcome(data)
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"run {self.id} still running after {timeout} s")

    def _outcome(self, data: dict[str, Any]) -> Any:
        root = root_execution_id(data)
        if data["status"] == "succeeded":
            return self.client.decode(data.get("result_value", data.get("result")))
        if data["status"] == "cancelled":
            raise ExecutionCancelled(root or self.id)
        error = data.get("error") or {}
        terminated = _TERMINATED_BY_TYPE.get(str(error.get("type")))
        if terminated is not None:  # the orchestrator stopped it: not an ExecutionError
            raise terminated(root or self.id, error.get("message"))
        raise execution_error_from_data(error, execution_id=root)

    def cancel(self) -> int:
        """Cancel everything of the run still queued or running, including steps that go on
        after the run has ended (a failed run keeps running what it started until then); returns
        how many executions that cancelled."""
        return self.client.cancel_run(self.id)

    def rerun(self, step: str, workspace: str | None = None) -> ExecutionId:
        return self.client.rerun(step, workspace or self.workspace)

    def text_tree(self) -> str:
        """The run's title and tree of steps as text (see :mod:`coflux.render`)."""
        return text_tree(self.data())


_TERMINATED_BY_TYPE = {f"coflux.{cls.__name__}": cls for cls in TERMINATED_BY_STATE.values()}


def root_execution_id(data: dict[str, Any]) -> str | None:
    """The root step's first execution."""
    steps = data.get("steps") or []
    if not steps or not steps[0].get("executions"):
        root = data.get("root_execution_id")  # a summary (``steps=false``) names the latest one
        return str(root) if root else None
    return str(steps[0]["executions"][0]["execution_id"])
