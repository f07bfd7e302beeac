"""Notebook widgets: :class:`RunTree` (a live run tree with re-run and cancel, and the assets its
steps persisted), :class:`WorkspaceSwitcher` (the project's workspaces; switch the kernel's) and
:class:`~coflux.notebook.assetviewer.AssetViewer` (an asset's files, previewed). All are anywidgets whose
views are plain ES modules in ``static/``; they refresh themselves through :mod:`coflux.notebook.live`
while no cell runs. :func:`coflux.notebook.register_display` makes a :class:`coflux.Run` display as its tree.

The views talk back with custom messages ``{"action": ...}``; a failed action shows its error in
the widget (trait ``error``) instead of raising in the kernel. Wire shapes: ``docs/widgets.md``.
"""

from __future__ import annotations

import logging
import textwrap
from collections.abc import Callable
from typing import Any, Final

import traitlets

from coflux.client import Run, text_tree
from coflux.errors import BadRequest, ConfigurationError
from coflux.models import ExecutionId, RunId, StepId
from coflux.notebook import assetviewer, live
from coflux.notebook.assetviewer import AssetViewer as AssetViewer  # the third widget, beside these
from coflux.notebook.widgetbase import (
    ActionWidget,
    Message,
    Session,
    lineage,
    static,
)
from coflux.notebook.widgetbase import view_source as view_source  # the views' sources, for tests and tools

_logger = logging.getLogger("coflux.notebook")

MAX_SPAWNED: Final = 50
"""Spawned runs shown inside one tree (transitively), at most."""
_LIVE_STATES: Final = frozenset({"queued", "assigned", "running"})
RUN_MIME_TYPE: Final = "application/vnd.coflux.run+json"
"""A displayed run's MIME type beside the widget's view: ``RunTree.output()``, which JupyterLab's
extension renders live from the server (no kernel needed; see docs/widgets.md)."""


class RunTree(ActionWidget):
    """A live tree of a run: its status, then its steps nested under the executions that submitted
    them (and runs they spawned), each with its executions' states, workspaces and marks. Expanding
    a step shows its arguments, results, errors with tracebacks and logs, with buttons to re-run it
    (in the kernel's workspace or a chosen one) and to cancel a live execution.

    The run is seen from ``workspace``: by default the workspace the :class:`~coflux.Run` was asked
    for, else the session's when it inherits from the run's, else the run's own. A re-run in a
    workspace that can't see the current view moves the view there, so that the new attempt shows.
    """

    _esm = view_source("runtree.js")
    _css = static("runtree.css") + "\n" + static("assetviewer.css")

    run = traitlets.Dict().tag(sync=True)
    """The run view (``GET runs/{id}?workspace=view``) without ``result_value``."""
    spawned = traitlets.Dict().tag(sync=True)
    """Run id -> the view of each run spawned from this one (transitively)."""
    view = traitlets.Unicode("").tag(sync=True)
    workspace = traitlets.Unicode("").tag(sync=True)
    """The session's workspace: where a plain re-run goes."""
    workspaces: traitlets.List[dict[str, Any]] = traitlets.List().tag(sync=True)
    expanded = traitlets.List(traitlets.Unicode()).tag(sync=True)
    """Step ids whose details are open; the view sets it, logs are then loaded for them."""
    details = traitlets.Dict().tag(sync=True)
    """Execution id -> ``{"logs": [...], "final": bool}``, loaded for expanded steps."""
    assets = traitlets.Dict().tag(sync=True)
    """Asset id -> its content as an ``AssetViewer`` shows it, for the assets opened with "View"."""

    def __init__(
        self,
        run: Run | str,
        *,
        session: Session | None = None,
        workspace: str | None = None,
        watcher: live.Watcher | None = None,
    ) -> None:
        super().__init__(session, watcher)
        if isinstance(run, Run):
            self._client, self._run_id = run.client, RunId(run.id)
            self._view: str | None = workspace or run.workspace
        else:
            self._client, self._run_id = self._session.client(), RunId(run)
            self._view = workspace
        self._endpoint = live.Endpoint.of(self._client)
        self.observe(lambda _change: self._watcher.poke(self), names=["expanded"])
        self.refresh()

    @property
    def run_id(self) -> RunId:
        return self._run_id

    @property
    def finished(self) -> bool:
        """The run and everything shown in it are final (nothing queued or running)."""
        views = [self.run, *self.spawned.values()]
        return bool(self.run) and not any(v.get("status") == "running" or _live_executions(v) for v in views)

    # -- actions -----------------------------------------------------------------------------------

    def rerun(self, step_id: str, workspace: str | None = None, *, parents: bool = False) -> ExecutionId:
        """Re-run a step in ``workspace`` (default: the session's); returns the new execution.
        With ``parents``, once it succeeds its parent is re-run, and so on up to the root
        (:meth:`coflux.Run.rerun`)."""
        execution_id, _ = self._rerun(step_id, workspace, parents)
        self.refresh()
        return execution_id

    def cancel(self, execution_id: str | None = None) -> None:
        """Cancel an execution (what it waits on is cancelled with it), or without one the whole
        run: everything of it still queued or running, also after the run has ended."""
        if execution_id is None:
            self._client.cancel_run(self._run_id)
        else:
            self._client.cancel(ExecutionId(execution_id))
        self.refresh()

    def _rerun(self, step_id: str, workspace: str | None, parents: bool = False) -> tuple[ExecutionId, str]:
        target = workspace or self._session.workspace
        execution_id = self._client.rerun(StepId(step_id), target, parents=parents)
        with self._lock:
            if self._view and target not in lineage(self.workspaces, self._view):
                self._view = target  # the view couldn't see the new attempt
        return execution_id, target

    def _handlers(self) -> dict[str, Callable[[Message], str]]:
        return {
            "rerun": self._on_rerun,
            "cancel": self._on_cancel,
            "cancel_run": self._on_cancel_run,
            "logs": self._on_logs,
            "asset": self._on_asset,
            "asset_preview": self._on_asset,
            "asset_download": self._on_asset_download,
            "refresh": lambda _message: "",
        }

    def _on_rerun(self, message: Message) -> str:
        step_id = _required(message, "step_id")
        parents = message.get("parents") is True
        execution_id, workspace = self._rerun(step_id, str(message.get("workspace") or "") or None, parents)
        then = "; once it succeeds, its parents follow" if parents else ""
        return f"re-running {step_id} in {workspace} as {execution_id}{then}"

    def _on_cancel(self, message: Message) -> str:
        execution_id = _required(message, "execution_id")
        self._client.cancel(ExecutionId(execution_id))
        return f"cancelled {execution_id}"

    def _on_cancel_run(self, message: Message) -> str:
        count = self._client.cancel_run(self._run_id)
        return f"cancelled {count} execution{'s' if count != 1 else ''} of run {self._run_id}"

    def _on_logs(self, message: Message) -> str:
        execution_id = _required(message, "execution_id")
        with self._lock:
            details = dict(self.details)
            details[execution_id] = {**details.get(execution_id, {}), "final": False}
            self.details = details  # reloaded by the refresh that follows
        return ""

    # -- assets ------------------------------------------------------------------------------------

    def _on_asset(self, message: Message) -> str:
        """Load an asset to show inline ("View"), or a preview of one of its files (``path``)."""
        asset_id = assetviewer.asset_id_of(_required(message, "asset_id"))
        path = message.get("path")
        state = self.assets.get(asset_id) or assetviewer.load(self._client, asset_id)
        if isinstance(path, str) and path:
            state = assetviewer.with_preview(state, self._client, path)
        with self._lock:
            self.assets = {**self.assets, asset_id: state}
        return ""

    def _on_asset_download(self, message: Message) -> str:
        asset_id = assetviewer.asset_id_of(_required(message, "asset_id"))
        state = self.assets.get(asset_id) or assetviewer.load(self._client, asset_id, previewed=0)
        return assetviewer.send_file(self, self._client, state, _required(message, "path"))

    # -- refreshing --------------------------------------------------------------------------------

    def _refresh(self) -> None:
        workspaces = self._client.workspaces()
        data = self._fetch(self._run_id, workspaces)
        if not self._view:
            self._view = self._default_view(data, workspaces)
            if self._view != data["workspace"]:
                data = self._fetch(self._run_id, workspaces)
        spawned = self._fetch_spawned(data, workspaces)
        details = self._load_details([data, *spawned.values()])
        with self.hold_sync():
            self.workspaces = workspaces
            self.workspace = self._session.workspace
            self.view = str(data["workspace"])
            self.run = data
            self.spawned = spawned
            self.details = details
        self._watch(poll=not self.finished)

    def _watch(self, poll: bool) -> None:
        runs = [self._run_id, *self.spawned]
        self._watcher.watch(self._endpoint, self, runs=runs, workspaces=True, poll=poll)

    def _fetch(self, run_id: str, workspaces: list[dict[str, Any]]) -> dict[str, Any]:
        """The run seen from the view, or from its own workspace when the view can't see it."""
        data = self._client.run_data(run_id, self._view or None)
        if self._view and data.get("run_workspace") not in lineage(workspaces, self._view):
            data = self._client.run_data(run_id)
        data.pop("result_value", None)  # raw tagged JSON: the view shows the descriptor
        return data

    def _default_view(self, data: dict[str, Any], workspaces: list[dict[str, Any]]) -> str:
        own = str(data.get("run_workspace") or data["workspace"])
        mine = self._session.workspace
        return mine if own in lineage(workspaces, mine) else own

    def _fetch_spawned(self, data: dict[str, Any], workspaces: list[dict[str, Any]]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        pending = [str(r["run_id"]) for r in data.get("spawned_runs") or []]
        while pending and len(found) < MAX_SPAWNED:
            run_id = pending.pop(0)
            if run_id in found or run_id == self._run_id:
                continue
            found[run_id] = view = self._fetch(run_id, workspaces)
            pending.extend(str(r["run_id"]) for r in view.get("spawned_runs") or [])
        return found

    def _load_details(self, views: list[dict[str, Any]]) -> dict[str, Any]:
        """Logs of the expanded steps' executions: loaded once final, reloaded while live."""
        expanded = set(self.expanded)
        details = dict(self.details)
        for view in views:
            for step in view.get("steps") or []:
                if step["step_id"] not in expanded:
                    continue
                for execution in step["executions"]:
                    execution_id = execution["execution_id"]
                    if details.get(execution_id, {}).get("final"):
                        continue
                    final = execution["state"] not in _LIVE_STATES
                    details[execution_id] = {"logs": self._client.logs(execution_id), "final": final}
        return details

    # -- display -----------------------------------------------------------------------------------

    def _repr_mimebundle_(self, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """The widget, with the run's :meth:`output` (JupyterLab renders it live from the server,
        also once the kernel is gone) and the text tree as the plain-text fallback (nbclient
        output, logs)."""
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is None:
            return None
        data, metadata = bundle if isinstance(bundle, tuple) else (bundle, {})
        data = {**data, RUN_MIME_TYPE: self.output()}
        if self.run:
            data = {**data, "text/plain": self.text()}
        return data, metadata

    def output(self) -> dict[str, str]:
        """What a front-end needs to show this tree without the kernel (``RUN_MIME_TYPE``): the
        run, its project, the server (``url``, the Coflux API as the kernel reaches it), the
        workspace it is seen from (``view``) and the session's (``workspace``, where a plain
        re-run goes)."""
        return {
            "run_id": self._run_id,
            "project": self._client.project,
            "url": self._client.url,
            "view": self._view or self.view,
            "workspace": self._session.workspace,
        }

    def text(self) -> str:
        """The tree as text: the run's, then each spawned run's, indented."""
        parts = [text_tree(self.run)]
        parts += [textwrap.indent(f"spawned {text_tree(view)}", "  ") for view in self.spawned.values()]
        return "\n".join(parts)

    def __repr__(self) -> str:
        return f"RunTree({self._run_id!r}, status={self.run.get('status')!r})"


def _live_executions(view: dict[str, Any]) -> bool:
    return any(e["state"] in _LIVE_STATES for s in view.get("steps") or [] for e in s["executions"])


def _required(message: Message, key: str) -> str:
    value = message.get(key)
    if not isinstance(value, str) or not value:
        raise BadRequest(f"the message lacks {key!r}")
    return value


class WorkspaceSwitcher(ActionWidget):
    """The project's workspaces as a tree (children under their base), with their states and the
    kernel's current one; clicking one switches the kernel to it, and a child of the current one
    can be created (and switched to) by name. Updated when workspaces change on the server."""

    _esm = view_source("workspaces.js")
    _css = static("workspaces.css")

    workspaces: traitlets.List[dict[str, Any]] = traitlets.List().tag(sync=True)
    """``[{"name", "base", "state"}]`` as the server lists them."""
    current = traitlets.Unicode("").tag(sync=True)
    project = traitlets.Unicode("").tag(sync=True)

    def __init__(self, *, session: Session | None = None, watcher: live.Watcher | None = None) -> None:
        super().__init__(session, watcher)
        self.refresh()

    def switch(self, name: str) -> None:
        """Switch the kernel's workspace (its worker reconnects there)."""
        known = {str(w["name"]): w for w in self.workspaces}
        if known.get(name, {}).get("state") == "archived":
            raise ConfigurationError(f"workspace {name!r} is archived")
        self._session.switch_workspace(name)
        self.refresh()

    def create_child(self, name: str) -> None:
        """Create ``name`` with the current workspace as its base, and switch to it."""
        base = self._session.workspace
        self._session.client().create_workspace(name, base=base)
        self._session.switch_workspace(name, base=base)
        self.refresh()

    def _handlers(self) -> dict[str, Callable[[Message], str]]:
        return {"switch": self._on_switch, "create": self._on_create, "refresh": lambda _message: ""}

    def _on_switch(self, message: Message) -> str:
        name = _required(message, "name")
        self.switch(name)
        return f"the kernel now runs in {name}"

    def _on_create(self, message: Message) -> str:
        name = _required(message, "name").strip()
        base = self._session.workspace
        self.create_child(name)
        return f"created {name} (based on {base}); the kernel now runs in it"

    def _refresh(self) -> None:
        workspaces = self._session.client().workspaces()
        with self.hold_sync():
            self.workspaces = workspaces
            self.current = self._session.workspace
            self.project = self._session.project
        self._watch(poll=False)

    def _watch(self, poll: bool) -> None:
        self._watcher.watch(live.Endpoint.of(self._session), self, workspaces=True, poll=poll)


def run_bundle(run: Run) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """A run's MIME bundle: a new :class:`RunTree`'s view and its ``RUN_MIME_TYPE`` output, with
    the text tree as ``text/plain`` (what :func:`coflux.notebook.register_display` shows for a
    ``Run``)."""
    return RunTree(run)._repr_mimebundle_()
