"""The notebook layer: magics, the kernel's worker, widgets. Loaded with ``%load_ext coflux``, or
automatically in kernels that a Jupyter server with the extension starts.

Importing :mod:`coflux` never imports this package; it imports IPython and the widget libraries.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from coflux import tracebacks
from coflux.notebook.kernel import KernelSession, current


def load_ipython_extension(shell: Any) -> None:
    """Register the magics and the ``Run`` display; connect the kernel as a worker when it knows a
    server (``COFLUX_URL``, which Jupyter servers with the extension give the kernels they start)."""
    from coflux.notebook import magics

    session = magics.load(shell)
    register_display(shell)
    name_cells(shell)
    if os.environ.get("COFLUX_URL") and not session.started:
        session.connect()


_unname_cells: Callable[[], None] | None = None


def name_cells(shell: Any) -> None:
    """Tracebacks of executions name the notebook's cells as IPython does (``Cell In[5]``),
    not by the kernel's temporary files, and leave out IPython's frames that ran the cell (see
    :mod:`coflux.tracebacks`)."""
    global _unname_cells
    if _unname_cells is not None:
        _unname_cells()
    import IPython

    ipython = str(Path(IPython.__file__).parent)
    _unname_cells = tracebacks.name_files(lambda filename: _cell_name(shell, filename), runners=[ipython])


def _cell_name(shell: Any, filename: str) -> str | None:
    format_code_name = getattr(shell.compile, "format_code_name", None)  # IPython 8 and later
    named = format_code_name(filename) if format_code_name is not None else None
    return " ".join(named) if named else None


def register_display(shell: Any) -> None:
    """Make a :class:`coflux.Run` display as a live ``RunTree`` in IPython ``shell`` (as a cell's
    last expression or through ``display(run)``), with its text tree as the plain fallback.
    Registered by the class's name and imported on first use, so that loading the extension
    doesn't load the widget libraries."""
    shell.display_formatter.mimebundle_formatter.for_type_by_name("coflux.client", "Run", _run_bundle)


def _run_bundle(run: Any) -> Any:
    from coflux.notebook.widgets import run_bundle

    return run_bundle(run)


def unload_ipython_extension(shell: Any) -> None:
    global _unname_cells
    if _unname_cells is not None:
        _unname_cells()
        _unname_cells = None
    current().close()


__all__ = [
    "KernelSession",
    "current",
    "load_ipython_extension",
    "name_cells",
    "register_display",
    "unload_ipython_extension",
]
