"""Thin authenticated HTTP handlers: parse, ask the project's orchestrator, answer JSON."""

from __future__ import annotations

import json
from typing import Any

from jupyter_server.auth.decorator import allow_unauthenticated
from jupyter_server.base.handlers import APIHandler
from tornado import web

from coflux.blobs import blob_key, valid_key
from coflux.errors import BadRequest, NotFound, PayloadTooLarge, RequestError, StorageError, Unauthorized
from coflux.orchestrator import Hub, ProjectService
from coflux.tokens import Scope
from jupyter_ext.errors import CODE_BY_STATUS, code_of, error_body, status_of

MAX_JSON_BODY = 16 * 1024 * 1024
MAX_LONG_POLL = 60.0


def request_token(handler: web.RequestHandler) -> str | None:
    header = handler.request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() in ("token", "bearer") and value.strip():
        return value.strip()
    return handler.get_query_argument("token", None)


def authorize(handler: Any, hub: Hub, project: str | None) -> None:
    """Jupyter's own authentication grants everything; a project token grants its project only."""
    if handler.current_user is not None:
        return
    token = request_token(handler)
    if token is None:
        raise Unauthorized("authentication required: send 'Authorization: token T'")
    if project is None or hub.grant(project, token) is None:
        raise Unauthorized("this token does not grant access here")


class CofluxHandler(APIHandler):
    """Base: our own auth (Jupyter's, or a project token), JSON errors, body limits."""

    @property
    def hub(self) -> Hub:
        hub: Hub = self.settings["coflux_hub"]
        return hub

    def check_xsrf_cookie(self) -> None:
        # Not authenticated by Jupyter (no cookie, no server token): only a project token in a
        # header can authorize it (see ``authorize``), which another site cannot forge. Anyone
        # Jupyter authenticated goes through Jupyter's own check (it skips token-authenticated ones).
        if getattr(self, "_jupyter_current_user", None) is None:
            return
        super().check_xsrf_cookie()

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc_info = kwargs.get("exc_info")
        error = exc_info[1] if exc_info else None
        if isinstance(error, web.HTTPError):
            message = error.reason or self._reason
            if error.log_message:
                try:
                    message = error.log_message % error.args if error.args else error.log_message
                except (TypeError, ValueError):
                    message = error.log_message
        else:
            message = self._reason
        self.set_header("Content-Type", "application/json")
        self.finish(error_body(CODE_BY_STATUS.get(status_code, "error"), message))

    def fail(self, error: Exception) -> None:
        self.set_status(status_of(error))
        self.set_header("Content-Type", "application/json")
        self.finish(error_body(code_of(error), str(getattr(error, "message", error))))

    def body(self) -> dict[str, Any]:
        raw = self.request.body
        if len(raw) > MAX_JSON_BODY:
            raise PayloadTooLarge(f"request body of {len(raw)} bytes exceeds {MAX_JSON_BODY}")
        try:
            data = json.loads(raw or b"{}")
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
        authorize(self, self.hub, project)
        return await self.hub.project(project, create=create)

    async def guarded(self, action: Any) -> None:
        try:
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
    """Anything else under ``coflux/api/``: a JSON 404, not Jupyter's HTML page."""

    def _unknown(self, *args: str) -> None:
        self.fail(NotFound(f"no such endpoint: {self.request.method} {self.request.path}"))

    get = post = put = delete = patch = allow_unauthenticated(_unknown)


class ProjectsHandler(CofluxHandler):
    @allow_unauthenticated
    async def get(self) -> None:
        async def action() -> None:
            authorize(self, self.hub, None)
            self.reply({"projects": [{"name": n} for n in self.hub.list_projects()]})

        await self.guarded(action)

    @allow_unauthenticated
    async def post(self) -> None:
        async def action() -> None:
            authorize(self, self.hub, None)
            name = _field(self.body(), "name", str)
            await self.hub.create_project(name)
            self.reply({"name": name}, 201)

        await self.guarded(action)


class TokenHandler(CofluxHandler):
    """The worker token of a project, for those authenticated to the Jupyter server itself."""

    @allow_unauthenticated
    async def get(self, project: str) -> None:
        async def action() -> None:
            authorize(self, self.hub, None)
            self.hub.blobs(project)  # validates the name
            self.reply({"project": project, "token": self.hub.token(project, Scope.WORKER)})

        await self.guarded(action)


class WorkspacesHandler(CofluxHandler):
    @allow_unauthenticated
    async def get(self, project: str) -> None:
        async def action() -> None:
            service = await self.service(project)
            self.reply({"workspaces": await service.list_workspaces()})

        await self.guarded(action)

    @allow_unauthenticated
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

    @allow_unauthenticated
    async def post(self, project: str, workspace: str, action: str) -> None:
        async def act() -> None:
            data = self.body()
            service = await self.service(project)
            self.reply(await _change_workspace(service, workspace, action, data))

        await self.guarded(act)


class WorkflowsHandler(CofluxHandler):
    @allow_unauthenticated
    async def get(self, project: str, workspace: str) -> None:
        async def action() -> None:
            service = await self.service(project)
            self.reply({"workflows": await service.list_workflows(workspace)})

        await self.guarded(action)


class RunsHandler(CofluxHandler):
    @allow_unauthenticated
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

    @allow_unauthenticated
    async def post(self, project: str, workspace: str) -> None:
        async def action() -> None:
            data = self.body()
            service = await self.service(project)
            module = _field(data, "module", str)
            target = _field(data, "target", str)
            arguments = data.get("arguments", [])
            run_id = await service.start_run(workspace, module, target, arguments)
            self.reply({"run_id": run_id}, 201)

        await self.guarded(action)


class RunHandler(CofluxHandler):
    @allow_unauthenticated
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
    @allow_unauthenticated
    async def post(self, project: str, step_id: str) -> None:
        async def action() -> None:
            data = self.body()
            service = await self.service(project)
            workspace = _field(data, "workspace", str, optional=True)
            execution_id = await service.rerun_step(step_id, workspace)
            self.reply({"execution_id": execution_id}, 201)

        await self.guarded(action)


class CancelHandler(CofluxHandler):
    @allow_unauthenticated
    async def post(self, project: str, execution_id: str) -> None:
        async def action() -> None:
            service = await self.service(project)
            await service.cancel_execution(execution_id)
            self.reply({"execution_id": execution_id})

        await self.guarded(action)


class LogsHandler(CofluxHandler):
    @allow_unauthenticated
    async def get(self, project: str, execution_id: str) -> None:
        async def action() -> None:
            service = await self.service(project)
            self.reply({"logs": await service.logs(execution_id)})

        await self.guarded(action)


class BlobHandler(CofluxHandler):
    @allow_unauthenticated
    async def get(self, project: str, key: str) -> None:
        async def action() -> None:
            authorize(self, self.hub, project)
            data = self.hub.blobs(project).get(key)
            self.set_header("Content-Type", "application/octet-stream")
            self.finish(data)

        await self.guarded(action)

    @allow_unauthenticated
    async def put(self, project: str, key: str) -> None:
        async def action() -> None:
            authorize(self, self.hub, project)
            store = self.hub.blobs(project)
            if not valid_key(key) or blob_key(self.request.body) != key:
                raise BadRequest("a blob's key must be the SHA-256 (64 hex digits) of its content")
            store.put(self.request.body)
            self.reply({"key": key}, 201)

        await self.guarded(action)
