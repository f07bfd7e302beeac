"""The kernel's session: where it connects, which workspace it serves, and the worker that runs the
notebook's targets on a background thread (its own event loop, never the kernel's).

A kernel has one session (:func:`current`). Its settings are resolved as everywhere else
(:mod:`coflux.settings`: ``COFLUX_URL``/``_TOKEN``/``_PROJECT``/``_WORKSPACE``/``_CONCURRENCY``, then
the nearest ``coflux.toml`` from the kernel's folder, which is the notebook's, then the defaults; a
Jupyter server with the extension passes the URL and a worker token to the kernels it starts) and
are written back to the kernel's environment when they change, so ``cf.Client()`` and
``Workflow.run`` in a cell follow ``%coflux connect`` and ``%coflux workspace``.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import logging
import os
import re
import sys
import threading
from pathlib import Path
from typing import Any, Final

from coflux import settings
from coflux.client import Client
from coflux.errors import CofluxError, ConfigurationError, Conflict
from coflux.models import valid_workspace_name
from coflux.worker import Target, Worker
from coflux.worker.settings import resolve_settings
from coflux.worker.status import WorkerStatus, target_lines

_logger = logging.getLogger("coflux.notebook")

DEFAULT_MODULE: Final = "notebook"
STOP_TIMEOUT: Final = 3.0
FOLLOW_TIMEOUT: Final = 2.0
"""Seconds a magic waits for the server to say which notebook the kernel belongs to."""
CONFIRM_TIMEOUT: Final = 10.0
"""Seconds a magic waits for the server to welcome the kernel or confirm a declaration."""
_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]+")
TOKEN_HOW: Final = "%coflux connect --token T"


def module_name_for(path: str | None) -> str:
    """The module a notebook's targets belong to: the file's name without ``.ipynb``."""
    if not path:
        return DEFAULT_MODULE
    stem = Path(path).name
    if stem.endswith(".ipynb"):
        stem = stem[: -len(".ipynb")]
    cleaned = _UNSAFE.sub("_", stem).strip("._-")
    return cleaned or DEFAULT_MODULE


def _notebook_path(user_ns: dict[str, Any] | None) -> str | None:
    """The notebook's path when the kernel started, as Jupyter's sessions (and ``coflux run``)
    tell the kernel."""
    session = (user_ns or {}).get("__session__")
    if isinstance(session, str) and session:
        return session
    return os.environ.get("JPY_SESSION_NAME") or None


_CONNECTION_FILE = re.compile(r"kernel-(?P<id>[0-9a-fA-F-]{36})\.json$")


def kernel_id() -> str | None:
    """This kernel's id as the Jupyter server that started it knows it (the server names the
    kernel's connection file ``kernel-<id>.json``); None outside such a kernel."""
    try:
        from ipykernel.connect import get_connection_file

        match = _CONNECTION_FILE.search(get_connection_file())
    except Exception:  # not in a kernel (a plain IPython, a test): nothing to ask about
        return None
    return match["id"] if match else None


class KernelSession:
    """The kernel's connection settings and its worker (started on :meth:`connect`)."""

    def __init__(self, user_ns: dict[str, Any] | None = None) -> None:
        self.settings_error: str | None = None
        """Why the settings could not be resolved (then the defaults stand until ``connect``)."""
        try:
            resolved = settings.resolve()
        except ConfigurationError as err:
            resolved, self.settings_error = settings.Settings(), str(err)
            _logger.warning("coflux: %s; using the defaults until %%coflux connect", err)
        self.url: str = resolved.url
        self.token: str | None = resolved.token
        self.project: str = resolved.project
        self.workspace: str = resolved.workspace
        self.concurrency: int = resolved.concurrency
        self.notebook: str | None = _notebook_path(user_ns)
        self.module: str = module_name_for(self.notebook)
        self._module_set = False
        """``%coflux module NAME`` chose the module: a renamed notebook keeps it."""
        self._targets: dict[tuple[str, str], Target[..., Any]] = {}
        self._worker: Worker | None = None
        self._lock = threading.RLock()

    # -- state -----------------------------------------------------------------------------------

    @property
    def started(self) -> bool:
        return self._worker is not None

    @property
    def connected(self) -> bool:
        return self._worker is not None and self._worker.connected

    @property
    def targets(self) -> list[Target[..., Any]]:
        return list(self._targets.values())

    def client(self, timeout: float = 30.0) -> Client:
        """A REST client bound to this session's server, project and workspace."""
        return Client(self.url, self.token, self.project, self.workspace, timeout=timeout)

    def connection(self) -> WorkerStatus | None:
        """Where the kernel's worker is connected, or why it is not (``None``: not started)."""
        worker = self._worker
        return worker.status() if worker is not None else None

    def status(self) -> dict[str, Any]:
        connection = self.connection()
        return {
            "url": connection.url if connection else self.url,
            "project": self.project,
            "workspace": self.workspace,
            "module": self.module,
            "worker": connection.state if connection else "stopped",
            "session_id": connection.session_id if connection else None,
            "concurrency": self.concurrency,
            "targets": target_lines(self._targets.values()),
        }

    def refusal(self, connection: WorkerStatus) -> str:
        """Why the server refused this kernel, and what to do, in one line."""
        return connection.explain_refusal(TOKEN_HOW, self.token is not None, who="this kernel")

    # -- changes ---------------------------------------------------------------------------------

    def connect(
        self,
        url: str | None = None,
        *,
        token: str | None = None,
        project: str | None = None,
        workspace: str | None = None,
        concurrency: int | None = None,
        wait: float | None = None,
    ) -> None:
        """(Re)start the worker with these settings (unchanged ones kept). The connection is made
        in the background and re-made after any loss; with ``wait``, block until the server
        welcomed the worker (its targets registered) for up to that many seconds."""
        checked = settings.resolve(  # the same checks as everywhere; unchanged settings are kept
            url or self.url,
            None,
            project or self.project,
            workspace or self.workspace,
            concurrency if concurrency is not None else self.concurrency,
            environ={},
        )
        url, project, workspace = checked.url, checked.project, checked.workspace
        concurrency = checked.concurrency
        with self._lock:
            self.settings_error = None
            self.url, self.project, self.workspace, self.concurrency = url, project, workspace, concurrency
            if token is not None:
                self.token = token or None
            self._publish()
            self._restart()
        # Widgets showing the kernel's workspace (no server event tells them it changed).
        live = sys.modules.get("coflux.notebook.live")
        if live is not None:
            live.watcher().poke_all()
        if wait is not None:
            self.wait_connected(wait)
            connection = self.connection()
            if connection is not None and connection.given_url is not None:
                self.url = connection.url  # found under the URL given: cells' clients use it too
                self._publish()

    def switch_workspace(self, name: str, base: str | None = None) -> None:
        """Serve (and run in) workspace ``name``, creating it first (with ``base``) if missing."""
        if not valid_workspace_name(name):
            raise ConfigurationError(f"invalid workspace name {name!r}")
        client = self.client()
        known = {w["name"]: w for w in client.workspaces()}
        if name not in known:
            # Created meanwhile by someone else: switching to it is still what was asked.
            with contextlib.suppress(Conflict):
                client.create_workspace(name, base=base)
        elif base is not None and known[name].get("base") != base:
            raise ConfigurationError(
                f"workspace {name!r} exists with base {known[name].get('base')!r}, not {base!r}"
            )
        self.connect(workspace=name, wait=CONFIRM_TIMEOUT)

    def set_module(self, name: str) -> None:
        """Targets defined from now on belong to module ``name`` (a renamed notebook keeps it)."""
        if not name or _UNSAFE.search(name):
            raise ConfigurationError(f"invalid module name {name!r} (letters, digits, _ . - only)")
        self.module = name
        self._module_set = True

    def follow_notebook(self) -> str | None:
        """Renaming a notebook in JupyterLab renames the server's session, not what the kernel
        was told when it started: ask the server (the magics do, each time they run). If the
        name changed, targets defined from now on belong to the new name's module, unless
        ``%coflux module`` chose one. Returns what to tell the user, if anything changed."""
        identity = kernel_id() if self.connected else None
        if identity is None:
            return None
        try:
            path = self.client(timeout=FOLLOW_TIMEOUT).kernel_notebook(identity)
        except CofluxError as err:  # an older server, a token refused: keep what we know
            _logger.debug("coflux: cannot look up this kernel's notebook: %s", err)
            return None
        if path is None or Path(path).name == Path(self.notebook or "").name:
            return None
        self.notebook, name, before = path, Path(path).name, self.module
        if self._module_set:
            return f"this notebook is now {name}; targets stay in module {before!r} (set by %coflux module)"
        self.module = module_name_for(path)
        if self.module == before:
            return None
        told = f"this notebook is now {name}: targets defined from now on belong to module {self.module!r}"
        earlier = sorted(t.name for t in self._targets.values() if t.module == before)
        if earlier:
            names = ", ".join(earlier)
            told += f"; those defined before ({names}) stay in {before!r} until their cells run again"
        return told

    def declare(self, target: Target[..., Any]) -> str | None:
        """Add or replace a target (by module and name) and, when the worker runs, wait (up to
        ``CONFIRM_TIMEOUT``) until the server has it, so that a run started next finds it.
        Returns a warning when it could not be confirmed: why, and whether it will be."""
        with self._lock:
            self._targets[(target.module, target.name)] = target
            worker = self._worker
        if worker is None:
            return None
        try:
            worker.wait_connected(CONFIRM_TIMEOUT)
            worker.declare([target], timeout=CONFIRM_TIMEOUT)
        except (TimeoutError, CofluxError) as err:
            worker.declare([target])  # sent with the next hello if not before
            connection = worker.status()
            if connection is not None and connection.state == "refused":
                return f"{target!r} is defined in this kernel but not declared: {self.refusal(connection)}"
            if connection is not None and connection.state == "waiting":
                return (
                    f"{target!r} is not declared yet ({connection.headline()}); it is declared on connection"
                )
            return f"{target!r} is not confirmed by {self.url} yet ({err}); it is declared on connection"
        return None

    def wait_connected(self, timeout: float) -> None:
        worker = self._worker
        if worker is None:
            raise ConfigurationError("the kernel is not connected: use %coflux connect")
        worker.wait_connected(timeout)

    def close(self) -> None:
        """Disconnect: the server abandons what this kernel was still running."""
        with self._lock:
            worker, self._worker = self._worker, None
        if worker is not None:
            worker.stop(STOP_TIMEOUT)

    def _restart(self) -> None:
        old, self._worker = self._worker, None
        if old is not None:
            old.stop(STOP_TIMEOUT)
        resolved = resolve_settings(
            self.url, self.token, self.project, self.workspace, concurrency=self.concurrency, register=True
        )
        # The server learns which kernel this worker is (JupyterLab shows the kernel's workspace).
        worker = Worker(self.targets, settings=dataclasses.replace(resolved, kernel_id=kernel_id()))
        worker.start()
        self._worker = worker

    def _publish(self) -> None:
        """Settings into the kernel's environment, where ``cf.Client()`` and ``Workflow.run`` read them."""
        os.environ["COFLUX_URL"] = self.url
        os.environ["COFLUX_PROJECT"] = self.project
        os.environ["COFLUX_WORKSPACE"] = self.workspace
        if self.token:
            os.environ["COFLUX_TOKEN"] = self.token
        else:
            os.environ.pop("COFLUX_TOKEN", None)


_current: KernelSession | None = None
_current_lock = threading.Lock()


def current(user_ns: dict[str, Any] | None = None) -> KernelSession:
    """The kernel's session, created (not connected) on first use."""
    global _current
    with _current_lock:
        if _current is None:
            _current = KernelSession(user_ns)
            atexit.register(_current.close)
        return _current
