"""Tracebacks that point at the user's code, as a task's error carries them across the wire.

Two things set them apart from :func:`traceback.format_exception`:

- **The framework's own frames are left out**: every frame of the ``coflux`` package (the worker's
  runtime, ``Target.__call__``, ``Execution.result``...) and, before the first frame of the user's
  code, the standard library's ``asyncio``, ``concurrent`` and ``threading`` frames that ran it
  (and IPython's, in a notebook).
  What remains is the user's code and the libraries it called, file and line. A traceback with no
  frame of the user's at all (a fault of ours) is kept whole.
- **Code files can be named the way their environment names them**: a notebook kernel registers
  IPython's names (:func:`name_files`), so a cell's frame reads ``Cell In[5], line 3, in load``, as
  IPython itself shows it, rather than the kernel's temporary file ``/tmp/ipykernel_16529/27.py``.
"""

from __future__ import annotations

import os
import re
import threading
import traceback
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

FileName = Callable[[str], str | None]
"""A code file's path -> the name to show instead (``"Cell In[5]"``), or None to keep it."""

_PACKAGE = str(Path(__file__).resolve().parent) + os.sep
_STDLIB = str(Path(threading.__file__).resolve().parent) + os.sep
_RUNNERS = ("asyncio" + os.sep, "concurrent" + os.sep, "threading.py")
_FRAME_LINE = re.compile(r'^  File "(?P<file>.+)", line (?P<line>\d+), in ', re.MULTILINE)

_namers: list[FileName] = []
_runners: list[str] = []
_namers_lock = threading.Lock()


def name_files(namer: FileName, runners: Iterable[str] = ()) -> Callable[[], None]:
    """Name code files in the tracebacks this process formats from now on (the notebook layer
    registers IPython's cell names); ``runners`` are folders of code that runs the user's code
    (IPython's), whose frames before the user's are left out too. Returns a function that
    removes them again."""
    folders = [str(Path(folder).resolve()) + os.sep for folder in runners]
    with _namers_lock:
        _namers.append(namer)
        _runners.extend(folders)

    def remove() -> None:
        with _namers_lock:
            if namer in _namers:
                _namers.remove(namer)
            for folder in folders:
                if folder in _runners:
                    _runners.remove(folder)

    return remove


def format_exception(error: BaseException) -> str:
    """``error`` with its causes and contexts, as Python prints it, without the framework's frames
    and with code files named as registered (see the module's docstring)."""
    summary = traceback.TracebackException.from_exception(error)
    for each in _chain(summary):
        each.stack = _users_frames(each.stack)
    return _FRAME_LINE.sub(_renamed, "".join(summary.format()))


def _chain(summary: traceback.TracebackException) -> Iterator[traceback.TracebackException]:
    """The exception, its causes and contexts, and the members of exception groups, once each."""
    pending, seen = [summary], set()
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        pending.extend(e for e in (current.__cause__, current.__context__) if e is not None)
        pending.extend(getattr(current, "exceptions", None) or [])


def _users_frames(stack: traceback.StackSummary) -> traceback.StackSummary:
    kept = [frame for frame in stack if not _resolved(frame.filename).startswith(_PACKAGE)]
    while kept and _runs_code(_resolved(kept[0].filename)):
        kept.pop(0)
    if not kept:  # nothing of the user's: a fault of ours, whose frames are worth keeping
        return stack
    return traceback.StackSummary.from_list(kept)


def _resolved(filename: str) -> str:
    try:
        return str(Path(filename).resolve()) if os.path.isabs(filename) else filename
    except OSError:
        return filename


def _runs_code(filename: str) -> bool:
    """A standard library module that runs code on the framework's behalf (an ``async def``
    task's event loop, a thread), or a registered runner (IPython running a cell)."""
    if filename.startswith(_STDLIB) and filename[len(_STDLIB) :].startswith(_RUNNERS):
        return True
    with _namers_lock:
        return filename.startswith(tuple(_runners))


def _renamed(match: re.Match[str]) -> str:
    name = _name_of(match["file"])
    return match[0] if name is None else f"  {name}, line {match['line']}, in "


def _name_of(filename: str) -> str | None:
    with _namers_lock:
        namers = list(_namers)
    for namer in namers:
        try:
            name = namer(filename)
        except Exception:  # a namer that fails must not cost the traceback
            continue
        if name:
            return name
    return None
