"""``coflux worker MODULE...``: import modules, serve their targets until SIGINT/SIGTERM or until
the server refuses the worker for good; with ``--dev``, re-import changed modules and re-declare
their targets (registering workflows)."""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import FrameType, ModuleType
from typing import Any

from coflux.errors import CofluxError, ConfigurationError
from coflux.worker.console import Console
from coflux.worker.settings import resolve_settings
from coflux.worker.targets import Target
from coflux.worker.worker import Worker

_logger = logging.getLogger("coflux.worker")


def load_module(name_or_path: str) -> ModuleType:
    """Import a module by dotted name, or a ``.py`` file by path (named after the file's stem, its
    folder put on ``sys.path`` so its sibling imports work)."""
    path = Path(name_or_path)
    if name_or_path.endswith(".py") or os.sep in name_or_path:
        if not path.is_file():
            raise ConfigurationError(f"no such module file: {name_or_path}")
        folder = str(path.resolve().parent)
        if folder not in sys.path:
            sys.path.insert(0, folder)
        spec = importlib.util.spec_from_file_location(path.stem, path)
        if spec is None or spec.loader is None:
            raise ConfigurationError(f"cannot import {name_or_path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[path.stem] = module
        spec.loader.exec_module(module)
        return module
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(name_or_path)
    except ModuleNotFoundError as err:
        raise ConfigurationError(f"cannot import module {name_or_path!r}: {err}") from err


def collect_targets(modules: Iterable[ModuleType]) -> list[Target[..., Any]]:
    """The targets that are module-level attributes of ``modules`` (each once, by module:name)."""
    found: dict[tuple[str, str], Target[..., Any]] = {}
    for module in modules:
        for value in vars(module).values():
            if isinstance(value, Target):
                found.setdefault((value.module, value.name), value)
    return list(found.values())


class WorkerRefused(CofluxError):
    """The server refused the worker for good (a token, a URL that is not Coflux's): one line that
    says why and what to do. ``coflux worker`` prints it and exits 2."""


def run_worker(
    modules: list[str],
    project: str | None = None,
    workspace: str | None = None,
    url: str | None = None,
    token: str | None = None,
    concurrency: int | None = None,
    register: bool = False,
    dev: bool = False,
    provides: dict[str, list[str]] | None = None,
    *,
    inline_limit: int | None = None,
    large_limit: int | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Serve the targets of ``modules`` until SIGINT/SIGTERM (or ``stop`` is set), then stop
    cleanly. ``dev`` implies ``register`` and reloads modules when their files change. Says where
    it is connected and what it serves on stdout, why it waits for the server on stderr (see
    :mod:`coflux.worker.console`); raises :class:`WorkerRefused` when the server refuses it."""
    settings = resolve_settings(
        url,
        token,
        project,
        workspace,
        concurrency=concurrency,
        register=register or dev,
        provides=provides,
        inline_limit=inline_limit,
        large_limit=large_limit,
    )
    loaded = [load_module(m) for m in modules]
    targets = collect_targets(loaded)
    if not targets:
        raise ConfigurationError(f"no tasks or workflows found in {', '.join(modules)}")
    stop = stop or threading.Event()
    console = Console(targets, stop, sys.stdout, sys.stderr, token_given=settings.token is not None)
    worker = Worker(targets, settings=settings, on_status=console.update)
    with _stop_on_signals(stop), worker:
        if dev:
            _watch(loaded, worker, stop, console)
        else:
            stop.wait()
    if console.fatal is not None:
        raise WorkerRefused(console.fatal)


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _watch(modules: list[ModuleType], worker: Worker, stop: threading.Event, console: Console) -> None:
    import watchfiles

    files = {str(Path(m.__file__).resolve()): m for m in modules if m.__file__}
    folders = sorted({str(Path(f).parent) for f in files})

    def relevant(change: Any, path: str) -> bool:
        return str(Path(path).resolve()) in files

    for changes in watchfiles.watch(*folders, watch_filter=relevant, stop_event=stop):
        changed = {files[str(Path(path).resolve())] for _, path in changes}
        try:
            for module in changed:
                importlib.reload(module)
        except Exception:
            _logger.exception("coflux: reloading failed; keeping the previous targets")
            continue
        targets = collect_targets(modules)
        worker.declare(targets)
        console.serving(targets, sorted(m.__name__ for m in changed))
