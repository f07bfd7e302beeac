"""Thin HTTP handlers: authorized before the body is read, parse, ask the project's orchestrator,
answer JSON. Who may call what is :mod:`jupyter_ext.auth`; each handler names its resource.

Blob reads and writes go through the blob store, which may wait on a network (``s3://``): they run
on the extension's blob threads (:func:`blob_threads`), a thread per request, never on
the event loop that serves Jupyter and every project."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from tornado import httputil, web
from tornado.http1connection import HTTP1Connection

from coflux.errors import BadRequest, Forbidden, NotFound, PayloadTooLarge, RequestError, StorageError
from coflux.orchestrator import ProjectService
from coflux.protocol import loads
from coflux.tokens import Scope
from coflux.trust import needs_trust
from jupyter_ext.auth import Authorized, refusal

MAX_JSON_BODY = 16 * 1024 * 1024
MAX_LONG_POLL = 60.0
BLOB_THREADS = 8
"""Blob requests served at once; more wait for a thread (and only blob requests wait)."""

_T = TypeVar("_T")


def blob_threads() -> ThreadPoolExecutor:
    """The threads blob I/O runs on, apart from the event loop's default executor so that a slow
    store can take all of them and still leave every other request (and Jupyter's own) alone."""
    return ThreadPoolExecutor(max_workers=BLOB_THREADS, thread_name_prefix="coflux-blobs")


def _declared_length(request: httputil.HTTPServerRequest) -> int | None:
    value = request.headers.get("Content-Length", "")
    return int(value) if value.isdigit() else None


@web.stream_request_body
class CofluxHandler(Authorized, ExtensionHandlerMixin, APIHandler):
    """Base of the REST handlers. The body streams in only once ``prepare()`` has authorized the
    request, up to :meth:`max_body` bytes: a longer one is read and dropped (never held), then
    answered 413; one longer than Jupyter's ``max_body_size`` is answered at once."""

    _chunks: list[bytes]
    _received = 0
    _too_large = False

    def max_body(self) -> int:
        return MAX_JSON_BODY

    async def prepare(self) -> None:  # type: ignore[override]
        self._chunks = []
        await super().prepare()
        if self._finished:
            return
        declared = _declared_length(self.request)
        if declared is not None and declared > max(self.max_body(), self.serverapp.max_body_size):
            self.fail(PayloadTooLarge(f"request body of {declared} bytes exceeds {self.max_body()}"))
            return
        self._too_large = declared is not None and declared > self.max_body()
        connection = self.request.connection
        if isinstance(connection, HTTP1Connection):  # tornado's own cap, should a body outgrow this
            connection.set_max_body_size(declared if self._too_large and declared else self.max_body())

    def data_received(self, chunk: bytes) -> None:
        if self._finished:  # answered in prepare(): nothing more is kept
            return
        self._received += len(chunk)
        if self._received > self.max_body():
            self._too_large, self._chunks = True, []
        if not self._too_large:
            self._chunks.append(chunk)

    def raw_body(self) -> bytes:
        if len(self._chunks) > 1:
            self._chunks = [b"".join(self._chunks)]
        return self._chunks[0] if self._chunks else b""

    def body(self) -> dict[str, Any]:
        """The body as a JSON object (strict JSON, nested at most 128 deep); BadRequest otherwise."""
        try:
            data = loads(self.raw_body() or b"{}")
        except ValueError as err:
            raise BadRequest(f"request body is not JSON: {err}") from err
        if not isinstance(data, dict):
            raise BadRequest("request body must be a JSON object")
        return data

    def reply(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(data))

    async def service(self, project: str, create: bool = False) -> ProjectService:
        return await self.hub.project(project, create=create)

    async def off_loop(self, function: Callable[..., _T], *args: Any) -> _T:
        """``function(*args)`` on a blob thread: for calls that read or write the blob store."""
        threads: ThreadPoolExecutor = self.settings["coflux_blob_threads"]
        return await asyncio.get_running_loop().run_in_executor(threads, function, *args)

    async def guarded(self, action: Callable[[], Awaitable[None]]) -> None:
        try:
            if self._too_large:
                raise PayloadTooLarge(f"request body of {self._received} bytes exceeds {self.max_body()}")
            await action()
        except (RequestError, StorageError) as err:
            self.fail(err)


def _field(data: dict[str, Any], name: str, kind: type, optional: bool = False) -> Any:
    value = data.get(name)
    if value is None and optional:
        return None
    if not isinstance(value, kind):
        raise BadRequest(f"field {name!r} must be a {kind.__name__}")
    return value


class UnknownRouteHandler(CofluxHandler):
    """Anything else under ``coflux/api/``: a JSON 404, not Jupyter's HTML page. The one public
    answer (as Jupyter's own 404 is): it tells no more than the documentation does."""

    async def prepare(self) -> None:  # type: ignore[override]
        self.fail(NotFound(f"no such endpoint: {self.request.method} {self.request.path}"))


class ProjectsHandler(CofluxHandler):
    auth_resource = "coflux:projects"

    async def get(self) -> None:
        async def action() -> None:
            self.reply({"projects": [{"name": n} for n in self.hub.list_projects()]})

        await self.guarded(action)

    async def post(self) -> None:
        async def action() -> None:
            name = _field(self.body(), "name", str)
            await self.hub.create_project(name)
            self.reply({"name": name}, 201)

        await self.guarded(action)


class TokenHandler(CofluxHandler):
    """``GET projects/{p}/token``: a new worker token of the project (kept for callers that predate
    scopes; ``POST projects/{p}/tokens`` chooses the scope)."""

    auth_resource = "coflux:tokens"
    auth_actions = {"GET": "write"}  # it makes a token

    async def get(self, project: str) -> None:
        async def action() -> None:
            self.reply({"project": project, "token": self.hub.token(project, Scope.WORKER)})

        await self.guarded(action)


class TokensHandler(CofluxHandler):
    """``POST projects/{p}/tokens`` ``{"scope": "worker" | "submit"}``: a new token of the project."""

    auth_resource = "coflux:tokens"

    async def post(self, project: str) -> None:
        async def action() -> None:
            name = _field(self.body(), "scope", str)
            scopes = {scope.value: scope for scope in Scope}
            if name not in scopes:
                raise BadRequest(f"scope must be one of {sorted(scopes)}, not {name!r}")
            token = self.hub.token(project, scopes[name])
            self.reply({"project": project, "scope": name, "token": token}, 201)

        await self.guarded(action)


class WorkspacesHandler(CofluxHandler):
    auth_resource = "coflux:workspaces"

    async def get(self, project: str) -> None:
        async def action() -> None:
            service = await self.service(project)
            self.reply({"workspaces": await service.list_workspaces()})

        await self.guarded(action)

    async def post(self, project: str) -> None:
        async def action() -> None:
            data = self.body()
            service = await self.service(project, create=True)
            name = _field(data, "name", str)
            base = _field(data, "base", str, optional=True)
            self.reply(await service.create_workspace(name, base), 201)

        await self.guarded(action)


async def _change_workspace(
    service: ProjectService, workspace: str, action: str, data: dict[str, Any]
) -> dict[str, Any]:
    if action == "rename":
        return await service.rename_workspace(workspace, _field(data, "name", str))
    if action == "rebase":
        if "base" not in data:
            raise BadRequest("field 'base' is required (null for none)")
        return await service.rebase_workspace(workspace, _field(data, "base", str, optional=True))
    if action == "pause":
        return await service.pause_workspace(workspace)
    if action == "resume":
        return await service.resume_workspace(workspace)
    return await service.archive_workspace(workspace)


class WorkspaceActionHandler(CofluxHandler):
    """``POST .../workspaces/{w}/rename|rebase|pause|resume|archive``: the workspace as it is now."""

    auth_resource = "coflux:workspaces"

    async def post(self, project: str, workspace: str, action: str) -> None:
        async def act() -> None:
            data = self.body()
            service = await self.service(project)
            self.reply(await _change_workspace(service, workspace, action, data))

        await self.guarded(act)


class WorkflowsHandler(CofluxHandler):
    auth_resource = "coflux:workflows"

    async def get(self, project: str, workspace: str) -> None:
        async def action() -> None:
            service = await self.service(project)
            self.reply({"workflows": await service.list_workflows(workspace)})

        await self.guarded(action)


class RunsHandler(CofluxHandler):
    auth_resource = "coflux:runs"

    async def get(self, project: str, workspace: str) -> None:
        async def action() -> None:
            service = await self.service(project)
            workflow = self.get_query_argument("workflow", None)
            try:
                limit = int(self.get_query_argument("limit", "20"))
            except ValueError as err:
                raise BadRequest("limit must be an integer") from err
            self.reply({"runs": await service.list_runs(workspace, workflow, limit)})

        await self.guarded(action)

    async def post(self, project: str, workspace: str) -> None:
        async def action() -> None:
            data = self.body()
            module = _field(data, "module", str)
            target = _field(data, "target", str)
            arguments = data.get("arguments", [])
            await self._check_trust(project, arguments)
            service = await self.service(project)
            run_id = await service.start_run(workspace, module, target, arguments)
            self.reply({"run_id": run_id}, 201)

        await self.guarded(action)

    async def _check_trust(self, project: str, arguments: Any) -> None:
        """Arguments a worker would unpickle need ``coflux:values`` execute (not a submit token)."""
        if await self.allowed("execute", "coflux:values"):
            return
        if await self.off_loop(needs_trust, arguments, self.hub.blobs(project).get):
            raise Forbidden(refusal(self.current_user, "execute", "coflux:values"))


class RunHandler(CofluxHandler):
    auth_resource = "coflux:runs"

    async def get(self, project: str, run_id: str) -> None:
        async def action() -> None:
            service = await self.service(project)
            workspace = self.get_query_argument("workspace", None)
            try:
                wait = min(float(self.get_query_argument("wait", "0")), MAX_LONG_POLL)
            except ValueError as err:
                raise BadRequest("wait must be a number of seconds") from err
            with_steps = self.get_query_argument("steps", "true").lower() not in ("false", "0", "no")
            self.reply(await service.get_run(run_id, workspace, wait, with_steps))

        await self.guarded(action)


class RerunHandler(CofluxHandler):
    auth_resource = "coflux:runs"

    async def post(self, project: str, step_id: str) -> None:
        async def action() -> None:
            data = self.body()
            service = await self.service(project)
            workspace = _field(data, "workspace", str, optional=True)
            parents = bool(_field(data, "parents", bool, optional=True))
            execution_id = await service.rerun_step(step_id, workspace, parents)
            self.reply({"execution_id": execution_id}, 201)

        await self.guarded(action)


class CancelHandler(CofluxHandler):
    auth_resource = "coflux:runs"

    async def post(self, project: str, execution_id: str) -> None:
        async def action() -> None:
            service = await self.service(project)
            await service.cancel_execution(execution_id)
            self.reply({"execution_id": execution_id})

        await self.guarded(action)


class RunCancelHandler(CofluxHandler):
    """``POST .../runs/{run}/cancel``: everything of the run still queued or running, also what
    goes on after the run has ended."""

    auth_resource = "coflux:runs"

    async def post(self, project: str, run_id: str) -> None:
        async def action() -> None:
            service = await self.service(project)
            self.reply({"run_id": run_id, "cancelled": await service.cancel_run(run_id)})

        await self.guarded(action)


class LogsHandler(CofluxHandler):
    auth_resource = "coflux:runs"

    async def get(self, project: str, execution_id: str) -> None:
        async def action() -> None:
            service = await self.service(project)
            self.reply({"logs": await service.logs(execution_id)})

        await self.guarded(action)
