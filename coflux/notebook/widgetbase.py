"""What the notebook widgets share: the kernel session they act through, their views' sources
(plain ES modules in ``static/``), and :class:`ActionWidget`: custom messages to handlers, errors
into the ``error`` trait, live updates from :mod:`coflux.notebook.live`."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, Protocol

import anywidget
import traitlets

from coflux.client import Client
from coflux.errors import BadRequest, CofluxError, ServerUnavailable
from coflux.notebook import live

_logger = logging.getLogger("coflux.notebook")

_STATIC: Final = Path(__file__).resolve().parent / "static"

Message = dict[str, Any]


class Session(Protocol):
    """What widgets need of the kernel's session (:func:`coflux.notebook.kernel.current`)."""

    url: str
    token: str | None
    project: str
    workspace: str

    def client(self) -> Client: ...

    def switch_workspace(self, name: str, base: str | None = None) -> None: ...


def static(name: str) -> str:
    """A view file's text. Not its ``Path``: anywidget (0.11) would then connect every instance
    to a class-wide file watcher's signal, and no widget could ever be garbage-collected."""
    return (_STATIC / name).read_text(encoding="utf-8")


_HELPERS: Final = {"runtree.js": ("assets.js",), "assetviewer.js": ("assets.js",)}
"""Shared rendering a view needs besides ``dom.js`` (``assets.js``: an asset's files and previews)."""


def view_source(name: str) -> str:
    """A view's ES module: the shared DOM helpers (``dom.js``) and the other helpers it needs, then
    the view's own file."""
    return "\n".join(static(part) for part in ("dom.js", *_HELPERS.get(name, ()), name))


def kernel_session() -> Session:
    from coflux.notebook import kernel  # lazily: the kernel module starts nothing on import

    return kernel.current()


def lineage(workspaces: list[dict[str, Any]], name: str) -> list[str]:
    """``name`` and its ancestors, nearest first (as the server resolves inheritance)."""
    bases = {str(w["name"]): w.get("base") for w in workspaces}
    chain: list[str] = []
    current: str | None = name
    while current is not None and current not in chain:
        chain.append(current)
        current = bases.get(current)
    return chain


def run_action(handlers: dict[str, Callable[[Message], str]], content: Any) -> tuple[str, str]:
    """What a view's custom message ``{"action": ...}`` asked, done: ``(error, notice)`` for the
    widget to show. Our errors read as themselves; anything else is a bug of ours, logged and
    said in the widget too, never raised in the kernel."""
    action = content.get("action") if isinstance(content, dict) else None
    handler = handlers.get(str(action))
    try:
        if handler is None:
            raise BadRequest(f"unknown action {action!r}")
        return "", handler(content)
    except CofluxError as err:
        return f"{action}: {err}", ""
    except Exception as err:
        _logger.exception("coflux: widget action %r failed", action)
        return f"{action} failed unexpectedly: {type(err).__name__}: {err}", ""


class ActionWidget(anywidget.AnyWidget):
    """Shared plumbing: custom messages to handlers, errors into the ``error`` trait, and live
    updates from the watcher (the widget is its listener, held weakly)."""

    error = traitlets.Unicode("").tag(sync=True)
    notice = traitlets.Unicode("").tag(sync=True)

    def __init__(self, session: Session | None, watcher: live.Watcher | None) -> None:
        super().__init__()
        self._session = session or kernel_session()
        self._watcher = watcher or live.watcher()
        self._lock = threading.RLock()
        self._refresh_failed = False
        self.on_msg(self._on_custom_message)

    def _handlers(self) -> dict[str, Callable[[Message], str]]:
        raise NotImplementedError

    def _on_custom_message(self, _widget: Any, content: Any, _buffers: Any) -> None:
        error, notice = run_action(self._handlers(), content)
        with self._lock, self.hold_sync():  # the watcher's thread may be syncing too
            self._refresh_failed = False  # this message stays until the next action
            self.error, self.notice = error, notice
        self.refresh()

    def refresh(self) -> None:
        """Fetch afresh from the server now (widgets also do this by themselves when told of a
        change). Failures are reported in ``error``; a server that can't be reached is polled for."""
        with self._lock:
            try:
                self._refresh()
            except CofluxError as err:
                self._refresh_failed = True
                self.error = f"cannot refresh: {err}"
                self._watch(poll=isinstance(err, ServerUnavailable))  # try again while it is away
                return
            if self._refresh_failed:
                self._refresh_failed = False
                self.error = ""

    def _refresh(self) -> None:
        """Fetch, set the traits, then :meth:`_watch` what is shown."""
        raise NotImplementedError

    def _watch(self, poll: bool) -> None:
        raise NotImplementedError

    def live_update(self) -> None:
        if self.comm is not None:  # closed: nobody to show it to
            self.refresh()

    def close(self) -> None:
        watcher = getattr(self, "_watcher", None)  # None if __init__ failed early (close runs at GC)
        if watcher is not None:
            watcher.unwatch(self)
        super().close()
