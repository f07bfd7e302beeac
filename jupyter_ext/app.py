"""The extension's lifecycle: settings (``c.Coflux``), handlers, the hub, and ``coflux server``."""

from __future__ import annotations

import gc
import os
import secrets
import signal
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from jupyter_core.paths import jupyter_data_dir
from jupyter_server.extension.application import ExtensionApp
from jupyter_server.serverapp import ServerApp
from jupyter_server.utils import url_path_join
from traitlets import Float, Int, Unicode, default

from coflux import tokens
from coflux.errors import CofluxError, ConfigurationError
from coflux.orchestrator import Hub, HubSettings, Limits, Timing
from jupyter_ext import assets
from jupyter_ext import handlers as h
from jupyter_ext.auth import CofluxAuthorizer
from jupyter_ext.blobs import BlobHandler
from jupyter_ext.kernels import KernelWorkerHandler
from jupyter_ext.notebooks import KernelNotebookHandler
from jupyter_ext.unavailable import UnavailableHandler
from jupyter_ext.websocket import EventsSocket, WorkerSocket

_SEGMENT = r"[^/]+"
_ROUTES: list[tuple[str, Any]] = [
    ("api/projects", h.ProjectsHandler),
    (f"api/projects/({_SEGMENT})/token", h.TokenHandler),
    (f"api/projects/({_SEGMENT})/tokens", h.TokensHandler),
    (f"api/projects/({_SEGMENT})/workspaces", h.WorkspacesHandler),
    (f"api/projects/({_SEGMENT})/workspaces/({_SEGMENT})/workflows", h.WorkflowsHandler),
    (
        f"api/projects/({_SEGMENT})/workspaces/({_SEGMENT})/(rename|rebase|pause|resume|archive)",
        h.WorkspaceActionHandler,
    ),
    (f"api/projects/({_SEGMENT})/workspaces/({_SEGMENT})/runs", h.RunsHandler),
    (f"api/projects/({_SEGMENT})/runs/({_SEGMENT})", h.RunHandler),
    (f"api/projects/({_SEGMENT})/steps/({_SEGMENT})/rerun", h.RerunHandler),
    (f"api/projects/({_SEGMENT})/runs/({_SEGMENT})/cancel", h.RunCancelHandler),
    (f"api/projects/({_SEGMENT})/executions/({_SEGMENT})/cancel", h.CancelHandler),
    (f"api/projects/({_SEGMENT})/executions/({_SEGMENT})/logs", h.LogsHandler),
    (f"api/projects/({_SEGMENT})/executions/({_SEGMENT})/result", h.ExecutionResultHandler),
    (f"api/projects/({_SEGMENT})/blobs/({_SEGMENT})", BlobHandler),
    (f"api/projects/({_SEGMENT})/assets", assets.AssetsHandler),
    (f"api/projects/({_SEGMENT})/assets/({_SEGMENT})", assets.AssetHandler),
    (f"api/projects/({_SEGMENT})/assets/({_SEGMENT})/files/(.+)", assets.AssetFileHandler),
    (f"api/projects/({_SEGMENT})/assets/({_SEGMENT})/restorations", assets.RestorationsHandler),
    (f"api/projects/({_SEGMENT})/kernels/({_SEGMENT})/notebook", KernelNotebookHandler),
    (f"api/kernels/({_SEGMENT})", KernelWorkerHandler),
    ("api/.*", h.UnknownRouteHandler),  # last: what nothing above matched
    ("ws/worker", WorkerSocket),
    ("ws/events", EventsSocket),
]


class Coflux(ExtensionApp):
    """Hosts one orchestrator per project inside the Jupyter server."""

    name = "jupyter_ext"
    load_other_extensions = True

    data_dir = Unicode(help="Where projects' SQLite files, blobs and the secret live.").tag(config=True)
    database_url = Unicode(
        "", help="A SQLAlchemy URL (PostgreSQL): one schema per project instead of SQLite files."
    ).tag(config=True)
    blob_store = Unicode("", help="An fsspec URL for blobs; default <data_dir>/blobs.").tag(config=True)
    reconnect_timeout = Float(10.0, help="Seconds a worker may stay away before its work is abandoned.").tag(
        config=True
    )
    heartbeat_interval = Float(2.0, help="Seconds between worker heartbeats.").tag(config=True)
    heartbeat_timeout = Float(15.0, help="Seconds of silence after which a worker is disconnected.").tag(
        config=True
    )
    log_budget = Int(
        Limits.log_budget,
        min=0,
        help="Characters of log kept per execution (a line costs 64 more); then the log is truncated.",
    ).tag(config=True)

    @default("data_dir")
    def _default_data_dir(self) -> str:
        return os.environ.get("COFLUX_DATA_DIR") or str(Path(jupyter_data_dir()) / "coflux")

    @default("reconnect_timeout")
    def _default_reconnect_timeout(self) -> float:
        return float(os.environ.get("COFLUX_RECONNECT_TIMEOUT") or 10.0)

    hub: Hub | None = None
    blob_threads: ThreadPoolExecutor | None = None
    failure: str | None = None
    """Why Coflux could not start, if it couldn't: every ``coflux/`` route then answers 503."""

    def initialize_settings(self) -> None:
        """Open the hub. Should that fail (a full disk, a bad secret), the error is raised when the
        server asked for that (``ServerApp.reraise_server_extension_failures``, as ``coflux
        server`` does); otherwise Jupyter keeps serving notebooks, the log says why Coflux can't,
        and every ``coflux/`` route answers 503 with the reason."""
        try:
            self.hub = self._open_hub()
        except Exception as err:
            assert self.serverapp is not None
            if self.serverapp.reraise_server_extension_failures:
                raise
            self.failure = str(err) if isinstance(err, CofluxError) else f"{type(err).__name__}: {err}"
            self.log.error(
                "Coflux is unavailable: %s", self.failure, exc_info=not isinstance(err, CofluxError)
            )
            return
        self.settings["coflux_hub"] = self.hub
        self.settings["coflux_blob_threads"] = self.blob_threads = h.blob_threads()
        assert self.serverapp is not None
        # Our handlers ask this one; it hands Jupyter's own users to the server's authorizer.
        self.settings["coflux_authorizer"] = CofluxAuthorizer(
            parent=self, inner=self.serverapp.authorizer, identity_provider=self.serverapp.identity_provider
        )

    def _open_hub(self) -> Hub:
        data_dir = Path(self.data_dir).expanduser().resolve()
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ConfigurationError(
                f"cannot create the data folder {data_dir}: {err.strerror or err}"
            ) from err
        timing = Timing(self.reconnect_timeout, self.heartbeat_interval, self.heartbeat_timeout)
        return Hub(
            HubSettings(
                data_dir=data_dir,
                secret=tokens.load_secret(data_dir),
                database_url=self.database_url or None,
                blob_store=self.blob_store or None,
                timing=timing,
                limits=Limits(log_budget=self.log_budget),
            )
        )

    def initialize_handlers(self) -> None:
        # ExtensionApp prefixes base_url and gives each handler its extension name (ExtensionHandlerMixin).
        if self.hub is None:
            self.handlers.append(("coflux(/.*)?", UnavailableHandler, {"reason": self.failure}))
        else:
            self.handlers.extend((url_path_join("coflux", path), handler) for path, handler in _ROUTES)
        self._publish()

    async def _start_jupyter_server_extension(self, serverapp: ServerApp) -> None:
        # The port is final only now (it may have moved since loading, e.g. with --port=0).
        self._publish()

    def _publish(self) -> None:
        """Kernels that this server starts inherit the environment: they connect back with these.
        Without a hub there is no token to give (the server answers 503 and says why)."""
        assert self.serverapp is not None
        os.environ["COFLUX_URL"] = coflux_url(self.serverapp)
        if self.hub is None:
            os.environ.pop("COFLUX_TOKEN", None)
        else:
            os.environ["COFLUX_TOKEN"] = self.hub.token("default", tokens.Scope.WORKER)

    async def stop_extension(self) -> None:
        if self.blob_threads is not None:  # a blob request still running ends with its thread
            self.blob_threads.shutdown(wait=False, cancel_futures=True)
        if self.hub is not None:  # a failure here would leave Jupyter's shutdown unfinished
            await self.hub.close()


def coflux_url(serverapp: ServerApp) -> str:
    scheme = "https" if serverapp.certfile else "http"
    host = "[::1]" if ":" in (serverapp.ip or "") else "127.0.0.1"
    return f"{scheme}://{host}:{serverapp.port}{serverapp.base_url}coflux"


class _HeadlessServer(ServerApp):
    """A Jupyter server that loads only this extension."""

    def find_server_extensions(self) -> None:
        self.jpserver_extensions = {"jupyter_ext": True}


def run_server(
    host: str,
    port: int,
    data_dir: str,
    database_url: str | None,
    token: str | None,
    exit_with_stdin: bool = False,
    blob_store: str | None = None,
) -> None:
    """``coflux server``: print the URL and tokens, then serve until interrupted. If Coflux can't
    start (a full disk, a bad secret), raise the reason before anything is printed. With
    ``exit_with_stdin``, also stop (as on SIGTERM) when stdin reaches its end: an embedding
    process holds the pipe's other end, so the server never outlives it, even when it is killed."""
    token = token or secrets.token_hex(24)
    argv = [
        f"--ServerApp.ip={host}",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        "--ServerApp.open_browser=False",
        "--ServerApp.allow_root=True",
        "--ServerApp.reraise_server_extension_failures=True",  # no server without its orchestrator
        f"--IdentityProvider.token={token}",
        f"--Coflux.data_dir={data_dir}",
        f"--Coflux.database_url={database_url or ''}",
        f"--Coflux.blob_store={blob_store or ''}",
        "--ServerApp.log_level=WARN",
    ]
    app = _HeadlessServer.instance(jpserver_extensions={"jupyter_ext": True})
    app.initialize(argv=argv, find_extensions=False)
    hub: Hub = app.web_app.settings["coflux_hub"]
    text = banner(f"http://{host}:{app.port}{app.base_url}coflux", token, hub)
    # Jupyter binds its port in the loop's first callback: printed after it, the banner means that
    # the server answers (a port taken meanwhile ends the server before this is printed).
    app.io_loop.add_callback(lambda: print(text, flush=True))
    # Everything loaded so far lives as long as the server: keep it out of the garbage collector's
    # full passes, which otherwise walk Jupyter's large heap and pause the loop now and then.
    gc.freeze()
    if exit_with_stdin:
        threading.Thread(target=_stop_at_end_of_stdin, name="coflux-stdin", daemon=True).start()
    app.start()


def banner(url: str, token: str, hub: Hub) -> str:
    """What ``coflux server`` prints: the admin token for the operator, a worker token for workers."""
    worker = hub.token("default", tokens.Scope.WORKER)
    return "\n".join(
        [
            f"Coflux server at {url}",
            f"  admin token: {token}",
            "    (Jupyter's own: every project and Jupyter's APIs; for you and browsers, never workers)",
            f"  workers of project default: COFLUX_URL={url} COFLUX_TOKEN={worker}",
            "  workers of another project P: coflux tokens create --project P --scope worker",
        ]
    )


def _stop_at_end_of_stdin() -> None:
    while sys.stdin.buffer.read(4096):
        pass
    os.kill(os.getpid(), signal.SIGTERM)
