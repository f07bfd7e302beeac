"""The extension's lifecycle: settings (``c.Coflux``), handlers, the hub, and ``coflux server``."""

from __future__ import annotations

import gc
import os
import secrets
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from jupyter_core.paths import jupyter_data_dir
from jupyter_server.extension.application import ExtensionApp
from jupyter_server.serverapp import ServerApp
from jupyter_server.utils import url_path_join
from traitlets import Float, Int, Unicode, default

from coflux import tokens
from coflux.orchestrator import Hub, HubSettings, Limits, Timing
from jupyter_ext import handlers as h
from jupyter_ext.websocket import EventsSocket, WorkerSocket

_SEGMENT = r"[^/]+"
_ROUTES: list[tuple[str, Any]] = [
    ("api/projects", h.ProjectsHandler),
    (f"api/projects/({_SEGMENT})/token", h.TokenHandler),
    (f"api/projects/({_SEGMENT})/workspaces", h.WorkspacesHandler),
    (f"api/projects/({_SEGMENT})/workspaces/({_SEGMENT})/workflows", h.WorkflowsHandler),
    (
        f"api/projects/({_SEGMENT})/workspaces/({_SEGMENT})/(rename|rebase|pause|resume|archive)",
        h.WorkspaceActionHandler,
    ),
    (f"api/projects/({_SEGMENT})/workspaces/({_SEGMENT})/runs", h.RunsHandler),
    (f"api/projects/({_SEGMENT})/runs/({_SEGMENT})", h.RunHandler),
    (f"api/projects/({_SEGMENT})/steps/({_SEGMENT})/rerun", h.RerunHandler),
    (f"api/projects/({_SEGMENT})/executions/({_SEGMENT})/cancel", h.CancelHandler),
    (f"api/projects/({_SEGMENT})/executions/({_SEGMENT})/logs", h.LogsHandler),
    (f"api/projects/({_SEGMENT})/blobs/({_SEGMENT})", h.BlobHandler),
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

    hub: Hub

    def initialize_settings(self) -> None:
        data_dir = Path(self.data_dir).expanduser().resolve()
        data_dir.mkdir(parents=True, exist_ok=True)
        timing = Timing(self.reconnect_timeout, self.heartbeat_interval, self.heartbeat_timeout)
        self.hub = Hub(
            HubSettings(
                data_dir=data_dir,
                secret=tokens.load_secret(data_dir),
                database_url=self.database_url or None,
                blob_store=self.blob_store or None,
                timing=timing,
                limits=Limits(log_budget=self.log_budget),
            )
        )
        self.settings["coflux_hub"] = self.hub

    def initialize_handlers(self) -> None:
        serverapp = self.serverapp
        assert serverapp is not None
        base = serverapp.base_url
        serverapp.web_app.add_handlers(
            ".*$", [(url_path_join(base, "coflux", path), handler) for path, handler in _ROUTES]
        )
        serverapp.web_app.settings["coflux_hub"] = self.hub
        self._publish()

    async def _start_jupyter_server_extension(self, serverapp: ServerApp) -> None:
        # The port is final only now (it may have moved since loading, e.g. with --port=0).
        self._publish()

    def _publish(self) -> None:
        """Kernels that this server starts inherit the environment: they connect back with these."""
        assert self.serverapp is not None
        os.environ["COFLUX_URL"] = coflux_url(self.serverapp)
        os.environ["COFLUX_TOKEN"] = self.hub.token("default", tokens.Scope.WORKER)

    async def stop_extension(self) -> None:
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
) -> None:
    """``coflux server``: print the URL and token, then serve until interrupted. With
    ``exit_with_stdin``, also stop (as on SIGTERM) when stdin reaches its end: an embedding
    process holds the pipe's other end, so the server never outlives it, even when it is killed."""
    token = token or secrets.token_hex(24)
    argv = [
        f"--ServerApp.ip={host}",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        "--ServerApp.open_browser=False",
        "--ServerApp.allow_root=True",
        f"--IdentityProvider.token={token}",
        f"--Coflux.data_dir={data_dir}",
        f"--Coflux.database_url={database_url or ''}",
        "--ServerApp.log_level=WARN",
    ]
    app = _HeadlessServer.instance(jpserver_extensions={"jupyter_ext": True})
    app.initialize(argv=argv, find_extensions=False)
    url = f"http://{host}:{app.port}{app.base_url}coflux"
    print(f"Coflux server at {url}", flush=True)
    print(f"  token: {token}", flush=True)
    print(f"  workers: COFLUX_URL={url} COFLUX_TOKEN={token}", flush=True)
    sys.stdout.flush()
    # Everything loaded so far lives as long as the server: keep it out of the garbage collector's
    # full passes, which otherwise walk Jupyter's large heap and pause the loop now and then.
    gc.freeze()
    if exit_with_stdin:
        threading.Thread(target=_stop_at_end_of_stdin, name="coflux-stdin", daemon=True).start()
    app.start()


def _stop_at_end_of_stdin() -> None:
    while sys.stdin.buffer.read(4096):
        pass
    os.kill(os.getpid(), signal.SIGTERM)
