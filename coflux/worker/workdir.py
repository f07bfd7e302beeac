"""Each execution's own working directory.

On Linux, every thread that runs executions calls ``unshare(CLONE_FS)`` once, which gives it a
current directory of its own; it then keeps a folder under the worker's temporary folder and
``chdir``s there, so ``Path.cwd()`` inside an execution is that folder and relative paths (in
``open``, ``cf.asset``...) resolve in it, while the process's other threads (a notebook's own
code, the worker's loop) keep theirs. An execution starts with the folder empty and it is emptied
after it. An emptied folder's modification time is set to 0, so one ``stat`` tells that an
execution wrote nothing (any entry made sets the time to the clock's): fan-outs pay only that.

Elsewhere (no ``unshare``), threads share one current directory, so nothing ``chdir``s: the
folder exists all the same and :func:`execution_dir` returns it; ``cf.asset()`` and restores
without ``at`` use it.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import shutil
import sys
import tempfile
import threading
from pathlib import Path
from typing import Final

CLONE_FS: Final = 0x200

_local = threading.local()
_temp_lock = threading.Lock()
_temp: list[Path] = []


def worker_temp() -> Path:
    """The process's temporary folder for execution directories (removed at exit)."""
    with _temp_lock:
        if not _temp:
            _temp.append(Path(tempfile.mkdtemp(prefix="coflux-worker-")))
            atexit.register(shutil.rmtree, _temp[0], True)
        return _temp[0]


def isolate() -> bool:
    """Give the calling thread a current directory of its own; False where that isn't possible."""
    if not sys.platform.startswith("linux"):
        return False
    unshare = getattr(os, "unshare", None)
    try:
        if unshare is not None:  # Python 3.12+
            unshare(CLONE_FS)
            return True
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.unshare(CLONE_FS) == 0)
    except (OSError, AttributeError):
        return False


def _absolute_sys_path() -> None:
    """``""`` in ``sys.path`` means the current directory: pin it to the process's, so imports in
    an execution still find the project's modules once the thread's directory is its own."""
    if "" in sys.path:
        cwd = os.getcwd()
        sys.path[:] = [cwd if entry == "" else entry for entry in sys.path]


class WorkDir:
    """The directory of one runner thread: made when the thread starts, removed when it ends."""

    def __init__(self) -> None:
        _absolute_sys_path()
        self.isolated = isolate()
        self.path = self._make()

    def _make(self) -> Path:
        path = Path(tempfile.mkdtemp(prefix="thread-", dir=worker_temp()))
        if self.isolated:
            os.chdir(path)
        self._stamped = _stamp(path)
        return path

    def enter(self) -> None:
        """Before an execution: it is this thread's execution directory (and cwd, if isolated)."""
        _local.path = self.path

    def leave(self) -> None:
        """After an execution: empty the directory, and go back to it if the code moved."""
        _local.path = None
        try:
            if self.isolated and os.getcwd() != str(self.path):
                os.chdir(self.path)
            if not self._stamped or os.stat(self.path).st_mtime_ns != 0:  # something was written
                clear(self.path)
                self._stamped = _stamp(self.path)
        except FileNotFoundError:  # the code removed it (or the folder it moved to): a new one
            self.path = self._make()

    def close(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def _stamp(folder: Path) -> bool:
    """Set the empty folder's modification time to 0, so that any entry made in it later shows
    (its time becomes the clock's, never 0: no window, whatever the clock's granularity) and an
    execution that wrote nothing costs one ``stat``. False where the time can't be set."""
    try:
        os.utime(folder, ns=(0, 0))
    except OSError:
        return False
    return os.stat(folder).st_mtime_ns == 0


def clear(folder: Path) -> None:
    """Remove everything in ``folder`` (nothing to do, one ``scandir``, when it is empty)."""
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)


def current() -> Path | None:
    """The running execution's directory on this thread, or None outside a runner's execution."""
    path: Path | None = getattr(_local, "path", None)
    return path


def execution_dir() -> Path:
    """The current execution's working directory (``Path.cwd()`` where threads have their own);
    outside an execution, the current directory."""
    return current() or Path.cwd()
