"""The programmatic face of the REST API: :class:`Client` and the :class:`Run` handles it returns.

Synchronous, standard library only (``urllib.request``). Settings come from the arguments, then the
``COFLUX_*`` environment variables, then ``coflux.toml`` (the current folder or a parent), then the
defaults: see :mod:`coflux.settings`.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from coflux import address
from coflux.assets import Asset
from coflux.errors import (
    TERMINATED_BY_STATE,
    CofluxError,
    ConfigurationError,
    ExecutionCancelled,
    NotFound,
    RemoteTraceback,
    RequestError,
    ServerUnavailable,
    execution_error_from_data,
    request_error,
)
from coflux.handles import ClientAssets, ExecutionReference
from coflux.models import JSON, ExecutionId, RunId
from coflux.render import text_tree as text_tree  # re-exported: `Run.text_tree` and the widgets use it
from coflux.serialization import deserialize, serialize
from coflux.settings import resolve

LONG_POLL = 30.0
"""Seconds the server may hold a request for a run's result before answering "still running"."""
_REFUSALS = {
    401: "no valid credential was sent: pass a token with --token or COFLUX_TOKEN (`coflux tokens "
    "create --project P --scope worker|submit` makes one, with the server's own token)",
    403: "the credential may not do this (a submit token can't open the worker socket or start runs "
    "with pickled arguments; project tokens can't list or create projects)",
}
"""What a 401 or 403 without Coflux's JSON error body (a proxy's page, a Jupyter API) means."""
_STATUS_CODES = {401: "unauthorized", 403: "forbidden"}


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
        settings = resolve(url, token, project, workspace)
        self.url = address.known(settings.url)  # the API found under this URL before, if it was
        self.token = settings.token
        self.project = settings.project
        self.workspace = settings.workspace
        self.timeout = timeout
        self._assets = ClientAssets(self)

    def __repr__(self) -> str:
        return f"Client({self.url!r}, project={self.project!r}, workspace={self.workspace!r})"

    # -- transport ---------------------------------------------------------------------------------

    def _send(
        self, method: str, path: str, data: bytes | None, content_type: str, timeout: float | None = None
    ) -> bytes:
        answer = self._exchange(method, path, data, content_type, timeout)
        if answer.foreign and self._relocate():
            answer = self._exchange(method, path, data, content_type, timeout)
        if answer.foreign and answer.status not in (401, 403):
            raise address.not_coflux(self.url, answer)
        if answer.status >= 400:
            raise _error_from_response(answer, self.url)
        return answer.body

    def _exchange(
        self, method: str, path: str, data: bytes | None, content_type: str, timeout: float | None
    ) -> address.Answer:
        request = urllib.request.Request(f"{self.url}/api/{path}", data=data, method=method)
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", content_type)
        if self.token:
            request.add_header("Authorization", f"token {self.token}")
        try:
            return address.exchange(request, timeout or self.timeout)
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise ServerUnavailable(
                f"cannot reach the Coflux server at {self.url}: {reason}"
                " (is it running? set COFLUX_URL or --url)"
            ) from err

    def _relocate(self) -> bool:
        """After an answer that is not Coflux's: look for the API on the same origin (the URL may
        be the Jupyter server's root, or a page of it) and, if found, use it from now on."""
        location = address.locate(self.url, self.token)
        if location.found is None:
            return False
        address.announce(self.url, location.found)
        self.url = location.found
        return True

    def _request(self, method: str, path: str, body: JSON = None, timeout: float | None = None) -> JSON:
        data = None if body is None else json.dumps(body).encode("utf-8")
        raw = self._send(method, path, data, "application/json", timeout)
        if not raw.strip():
            return None
        try:
            return json.loads(raw)
        except ValueError as err:
            raise address.not_coflux(self.url, address.Answer(200, "", raw)) from err

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
        """The run as the server describes it (docs/server.md, "Reading a run"), seen from
        ``workspace`` if given. With ``wait``, the server first waits up to that many seconds for
        the run to finish; without ``steps``, only the status and result come back."""
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

    def rerun(self, step_id: str, workspace: str | None = None, *, parents: bool = False) -> ExecutionId:
        """Re-run a step in ``workspace`` (default: this client's); returns the new execution id.
        With ``parents``, once the re-run succeeds its parent step is re-run in the same
        workspace (reusing the fixed step), and so on up to the root of the run."""
        body: dict[str, JSON] = {"workspace": workspace or self.workspace}
        if parents:
            body["parents"] = True
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

    def kernel_notebook(self, kernel_id: str) -> str | None:
        """The path of the notebook whose Jupyter session holds kernel ``kernel_id`` (as JupyterLab
        last named it), or None if no session of the server holds it."""
        try:
            data = self._request("GET", self._project_path("kernels", kernel_id, "notebook"))
        except NotFound:
            return None
        return str(data["path"])

    def create_token(self, scope: str) -> dict[str, Any]:
        """A new token of this client's project: ``"worker"`` (workers and notebook kernels) or
        ``"submit"`` (CI and dashboards: JSON arguments only). Needs the server's own token.
        Returns ``{"project", "scope", "token"}``."""
        return dict(self._request("POST", self._project_path("tokens"), {"scope": scope}))

    def asset(self, asset_id: str) -> Asset:
        """The asset ``asset_id`` (its listing read now): ``.entries``, ``.restore(at=...)``."""
        Asset(asset_id)  # a malformed id is refused before any request
        return Asset.from_listing(self._assets.asset_listing(asset_id), self._assets)

    def asset_data(self, asset_id: str) -> dict[str, Any]:
        """The asset as the server describes it: listing, who persisted it and who restored it."""
        return dict(self._request("GET", self._project_path("assets", asset_id)))

    def asset_handle(self, asset_id: str) -> Asset:
        """An asset whose listing is read when first needed."""
        return Asset(asset_id, source=self._assets)

    def decode(self, value: JSON, run_id: str | None = None) -> Any:
        """The Python value of tagged JSON read from the server (pickles are unpickled). Executions
        it refers to (of run ``run_id``, when known) and assets can be resolved here."""

        def execution(execution_id: str) -> ExecutionReference:
            return ExecutionReference(execution_id, self, run_id)

        return deserialize(value, self.get_blob, execution=execution, asset=self.asset_handle)


def _error_from_response(answer: address.Answer, url: str) -> RequestError:
    error = answer.error()
    if error is not None:
        return request_error(*error)
    if answer.status in _REFUSALS:
        message = (
            f"the server at {url} refused the request (HTTP {answer.status}): {_REFUSALS[answer.status]}"
        )
        return request_error(_STATUS_CODES[answer.status], message)
    return address.not_coflux(url, answer)


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
        :class:`~coflux.errors.ExecutionError` whose cause is the workflow's own traceback, from
        its worker), ``ExecutionCancelled``, or ``TimeoutError``."""
        __tracebackhide__ = True  # IPython and pytest show the run's traceback, not this method
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:  # long polls: the server answers as soon as the run is final
            remaining = LONG_POLL if deadline is None else min(LONG_POLL, deadline - time.monotonic())
            data = self.client.run_data(self.id, self._view, wait=max(remaining, 0.0), steps=False)
            if data["status"] == "succeeded":
                return self.client.decode(data.get("result_value", data.get("result")), run_id=self.id)
            if data["status"] != "running":
                raise self._error(data)
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"run {self.id} still running after {timeout} s")

    def _error(self, data: dict[str, Any]) -> CofluxError:
        """What a run that ended without a result raises."""
        root = root_execution_id(data)
        error = data.get("error") or {}
        if data["status"] == "cancelled":
            cancelled = ExecutionCancelled(root or self.id, error.get("message"))
            if error.get("traceback"):  # where the workflow was waiting when it was cancelled
                cancelled.__cause__ = RemoteTraceback(str(error["traceback"]), root)
            return cancelled
        terminated = _TERMINATED_BY_TYPE.get(str(error.get("type")))
        if terminated is not None:  # the orchestrator stopped it: not an ExecutionError
            return terminated(root or self.id, error.get("message"))
        return execution_error_from_data(error, execution_id=root)

    def cancel(self) -> int:
        """Cancel everything of the run still queued or running, including steps that go on
        after the run has ended (a failed run keeps running what it started until then); returns
        how many executions that cancelled."""
        return self.client.cancel_run(self.id)

    def rerun(self, step: str, workspace: str | None = None, *, parents: bool = False) -> ExecutionId:
        """Re-run a step of this run (in the workspace it is seen from, by default). With
        ``parents``, once it succeeds its parent is re-run, and so on up to the root, so the run
        itself can succeed: fix the failed step's code, then ``run.rerun(step, parents=True)``
        and ``run.result()``."""
        return self.client.rerun(step, workspace or self.workspace, parents=parents)

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
