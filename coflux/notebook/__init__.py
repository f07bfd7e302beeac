"""The notebook layer: magics, the kernel's worker, widgets. Loaded with ``%load_ext coflux``, or
automatically in kernels that a Jupyter server with the extension starts.

Importing :mod:`coflux` never imports this package; it imports IPython and the widget libraries.
"""

from __future__ import annotations

import os
from typing import Any

from coflux.notebook.kernel import KernelSession, current


def load_ipython_extension(shell: Any) -> None:
    """Register the magics and the ``Run`` display; connect the kernel as a worker when it knows a
    server (``COFLUX_URL``, which Jupyter servers with the extension give the kernels they start)."""
    from coflux.notebook import magics

    session = magics.load(shell)
    # By name, so the widget libraries load only when a run is first shown.
    formatter = shell.display_formatter.mimebundle_formatter
    formatter.for_type_by_name("coflux.client", "Run", _run_bundle)
    if os.environ.get("COFLUX_URL") and not session.started:
        session.connect()


def _run_bundle(run: Any) -> Any:
    """A ``Run``'s display: its live run tree (its text tree where widgets can't show)."""
    from coflux.notebook.widgets import RunTree

    return RunTree(run)._repr_mimebundle_()


def unload_ipython_extension(shell: Any) -> None:
    current().close()


__all__ = ["KernelSession", "current", "load_ipython_extension", "unload_ipython_extension"]
