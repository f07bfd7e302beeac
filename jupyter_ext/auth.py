"""Who may do what, through jupyter_server's own authorization machinery.

Two kinds of identity reach our handlers:

- Jupyter's own (the server's token, a logged-in browser's cookie, JupyterHub's users): found by
  the server's identity provider, as for any Jupyter API, and authorized by the server's configured
  authorizer with our resource names;
- a project token (``cfx_<scope>_...``, see :mod:`coflux.tokens`): recognized by our handlers only,
  before Jupyter's identity provider runs, verified for the project the request names, and
  authorized from :data:`SCOPES`. Jupyter's own handlers never accept it.

Every handler declares the resource it acts on (``auth_resource``); :class:`Authorized`, the base of
all our handlers, authenticates and authorizes each request in ``prepare()``, before any byte of its
body is read. A handler that declares nothing refuses everyone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from jupyter_core.utils import ensure_async
from jupyter_server.auth import Authorizer, User
from jupyter_server.auth.utils import HTTP_METHOD_TO_AUTH_ACTION
from jupyter_server.base.handlers import JupyterHandler
from tornado import web
from tornado.log import app_log
from traitlets import Instance

from coflux.errors import Forbidden, RequestError, Unauthorized
from coflux.orchestrator import Hub
from coflux.tokens import Scope, looks_like_token, redact_url, scope_of
from jupyter_ext.errors import CODE_BY_STATUS, code_of, error_body, status_of

WORKER, SUBMIT = Scope.WORKER, Scope.SUBMIT

SCOPES: Final[dict[tuple[str, str], frozenset[Scope]]] = {
    ("coflux:workspaces", "read"): frozenset({WORKER, SUBMIT}),
    ("coflux:workspaces", "write"): frozenset({WORKER}),
    ("coflux:workflows", "read"): frozenset({WORKER, SUBMIT}),
    ("coflux:runs", "read"): frozenset({WORKER, SUBMIT}),
    ("coflux:runs", "write"): frozenset({WORKER, SUBMIT}),
    ("coflux:values", "execute"): frozenset({WORKER}),
    ("coflux:blobs", "read"): frozenset({WORKER, SUBMIT}),
    ("coflux:blobs", "write"): frozenset({WORKER}),
    ("coflux:worker", "execute"): frozenset({WORKER}),
    ("coflux:events", "read"): frozenset({WORKER, SUBMIT}),
    ("coflux:assets", "read"): frozenset({WORKER, SUBMIT}),
    ("coflux:assets", "write"): frozenset({WORKER}),
    ("coflux:kernels", "read"): frozenset({WORKER}),
}
"""(resource, action) -> the project-token scopes allowed it. Anything else (projects, tokens) is
for Jupyter's own users only, as the server's authorizer decides."""

_CANNOT: Final[dict[tuple[str, str], str]] = {
    ("coflux:projects", "read"): "list projects: that needs the Jupyter server's own token",
    ("coflux:projects", "write"): "create projects: that needs the Jupyter server's own token",
    ("coflux:tokens", "write"): "make tokens: that needs the Jupyter server's own token",
    ("coflux:workspaces", "write"): "create or change workspaces: use a worker token",
    ("coflux:values", "execute"): (
        "start runs with pickled arguments (a worker would unpickle them): use JSON arguments, "
        "or a worker token"
    ),
    ("coflux:blobs", "write"): "upload blobs: use a worker token",
    ("coflux:assets", "write"): "persist assets or record their restorations: use a worker token",
    ("coflux:worker", "execute"): "open the worker socket: give workers a worker token",
    ("coflux:kernels", "read"): "look up a kernel's notebook: that is for the kernel's worker token",
    (
        "coflux:workers",
        "read",
    ): "see which workspace a kernel serves: that needs the Jupyter server's own token",
}

NO_CREDENTIAL: Final = (
    "authentication required: pass a token with --token or COFLUX_TOKEN: a project token "
    "(`coflux tokens create --project P --scope worker|submit`), or the Jupyter server's token"
)
NOT_ACCEPTED: Final = (
    "the token was not accepted: pass the Jupyter server's token, or a project token "
    "(`coflux tokens create --project P --scope worker|submit`), with --token or COFLUX_TOKEN"
)
QUERY_TOKEN: Final = (
    "send a project token in the 'Authorization: token T' header: ?token= is accepted only for "
    "GET requests and websockets"
)


@dataclass
class ProjectUser(User):
    """The bearer of a project token, verified for ``project``."""

    project: str = ""
    scope: Scope = Scope.SUBMIT


def project_user(project: str, scope: Scope) -> ProjectUser:
    return ProjectUser(username=f"{project}:{scope.value}-token", project=project, scope=scope)


class CofluxAuthorizer(Authorizer):
    """Project tokens get what :data:`SCOPES` gives their scope, in their own project only;
    everyone else is whatever the server's own authorizer (``inner``) says."""

    inner = Instance(Authorizer)

    def is_authorized(self, handler: Any, user: User, action: str, resource: str) -> Any:
        if isinstance(user, ProjectUser):
            same_project = getattr(handler, "token_project", lambda: None)() == user.project
            return same_project and user.scope in SCOPES.get((resource, action), frozenset())
        return self.inner.is_authorized(handler, user, action, resource)


def refusal(user: User, action: str, resource: str) -> str:
    """Why ``user`` may not ``action`` ``resource``, in words the user can act on."""
    if isinstance(user, ProjectUser):
        return token_refusal(user.scope.value, action, resource)
    return f"{user.username} is not allowed to {action} {resource} on this server"


def token_refusal(kind: str, action: str, resource: str) -> str:
    """Why a ``kind`` (``worker``, ``submit``, ``project``) token may not do it."""
    return f"a {kind} token can't " + _CANNOT.get((resource, action), f"{action} {resource}")


def header_token(handler: web.RequestHandler) -> str | None:
    scheme, _, value = handler.request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() in ("token", "bearer") and value.strip():
        return value.strip()
    return None


class Authorized(JupyterHandler):
    """The base of every Coflux handler, HTTP or websocket (first among its bases): authenticates
    and authorizes in ``prepare()``, answers errors as JSON, and keeps tokens out of the logs."""

    auth_resource: str | None = None
    """The resource requests act on, e.g. ``coflux:runs``. None: every request is refused."""
    auth_actions: dict[str, str] = {}
    """HTTP method -> action where jupyter_server's HTTP_METHOD_TO_AUTH_ACTION doesn't fit."""

    @property
    def hub(self) -> Hub:
        hub: Hub = self.settings["coflux_hub"]
        return hub

    @property
    def authorizer(self) -> Authorizer:
        authorizer: Authorizer = self.settings["coflux_authorizer"]
        return authorizer

    def token_project(self) -> str | None:
        """The project a project token must be valid for: the path's first argument."""
        return self.path_args[0] if self.path_args else None

    async def prepare(self) -> None:  # type: ignore[override]
        if self.request.method == "OPTIONS":  # CORS preflights carry no credentials
            await super().prepare()
            return
        try:
            user = await self._authenticate()
            await self._authorize(user)
        except RequestError as err:
            self.fail(err)

    async def _authenticate(self) -> User:
        if not self.check_host():
            raise Forbidden(f"requests for host {self.request.host!r} are not allowed on this server")
        token = header_token(self)
        query = self.get_query_argument("token", None)
        if token is None and query is not None and looks_like_token(query):
            if self.request.method != "GET":
                raise Unauthorized(QUERY_TOKEN)
            token = query
        if token is not None and looks_like_token(token):
            return self._project_token_user(token)
        return await self._jupyter_user(bool(token or query))

    def _project_token_user(self, token: str) -> User:
        project = self.token_project()
        if project is None:  # a route for Jupyter's users only (projects): no project to check
            claimed = scope_of(token)
            kind = claimed.value if claimed else "project"
            raise Forbidden(token_refusal(kind, self._action(), str(self.auth_resource)))
        scope = self.hub.grant(project, token)
        if scope is None:
            raise Unauthorized(
                f"this token is not valid for project {project!r}: a project token grants only the "
                "project it was made for, on the server that made it"
            )
        user = project_user(project, scope)
        self.current_user = self._jupyter_current_user = user
        self._token_authenticated = True  # as Jupyter does for its token: no XSRF or origin check
        self.set_cors_headers()
        return user

    async def _jupyter_user(self, sent_token: bool) -> User:
        try:
            await super().prepare()  # Jupyter's identity provider, XSRF check and safety net
        except web.HTTPError as err:
            if err.status_code == 403 and getattr(self, "_jupyter_current_user", None) is None:
                raise Unauthorized(NOT_ACCEPTED if sent_token else NO_CREDENTIAL) from None
            raise
        user: User | None = self.current_user
        if user is None:  # allow_unauthenticated_access: still not for us
            raise Unauthorized(NOT_ACCEPTED if sent_token else NO_CREDENTIAL)
        return user

    def _action(self) -> str:
        method = self.request.method or "GET"
        return self.auth_actions.get(method) or HTTP_METHOD_TO_AUTH_ACTION.get(method, "write")

    async def _authorize(self, user: User) -> None:
        resource = self.auth_resource
        if resource is None:
            self.log.error("%s declares no auth_resource: every request is refused", type(self).__name__)
            raise Forbidden("this endpoint declares no permission, so it is closed")
        await self.require(self._action(), resource)

    async def allowed(self, action: str, resource: str) -> bool:
        """May the current user do ``action`` on ``resource`` (the authorizer decides)?"""
        verdict = await ensure_async(self.authorizer.is_authorized(self, self.current_user, action, resource))
        return bool(verdict)

    async def require(self, action: str, resource: str) -> None:
        """Raise :class:`Forbidden`, with the reason, unless the current user may do it."""
        if not await self.allowed(action, resource):
            raise Forbidden(refusal(self.current_user, action, resource))

    # -- answers -----------------------------------------------------------------------------------

    def fail(self, error: Exception) -> None:
        """Answer ``error`` as JSON with its status; for 401 and 403 the message is the status
        line's reason too (websocket clients see nothing else)."""
        status = status_of(error)
        message = str(getattr(error, "message", error))
        self.set_status(status, reason=message if status in (401, 403) else None)
        self.set_header("Content-Type", "application/json")
        self.finish(error_body(code_of(error), message))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc_info = kwargs.get("exc_info")
        error = exc_info[1] if exc_info else None
        message = self._reason
        if isinstance(error, web.HTTPError):
            message = error.reason or self._reason
            if error.log_message:
                try:
                    message = error.log_message % error.args if error.args else error.log_message
                except (TypeError, ValueError):
                    message = error.log_message
        self.set_header("Content-Type", "application/json")
        self.finish(error_body(CODE_BY_STATUS.get(status_code, "error"), message))

    # -- logs never carry a token -------------------------------------------------------------------

    def _request_summary(self) -> str:
        return f"{self.request.method} {redact_url(self.request.uri or '')} ({self.request.remote_ip})"

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, web.HTTPError):
            super().log_exception(typ, value, tb)  # a warning with the summary above
            return
        # tornado's own also logs repr(request), which holds the raw URI
        app_log.error("Uncaught exception %s", self._request_summary(), exc_info=(typ, value, tb))
