"""The public surface of ``coflux``: exactly these names, and importing it never loads Jupyter."""

from __future__ import annotations

import subprocess
import sys

import coflux

PUBLIC = {
    "Asset",
    "AssetEntry",
    "BadRequest",
    "Cache",
    "Client",
    "CofluxError",
    "Conflict",
    "Execution",
    "ExecutionAbandoned",
    "ExecutionCancelled",
    "ExecutionError",
    "ExecutionTerminated",
    "ExecutionTimeout",
    "Forbidden",
    "NotFound",
    "RequestError",
    "Retries",
    "Run",
    "Target",
    "Task",
    "Unauthorized",
    "Worker",
    "Workflow",
    "asset",
    "execution_dir",
    "group",
    "load_ipython_extension",
    "log_debug",
    "log_error",
    "log_info",
    "log_warning",
    "task",
    "workflow",
}


def test_the_public_names_are_pinned() -> None:
    assert set(coflux.__all__) == PUBLIC
    for name in PUBLIC:
        assert getattr(coflux, name) is not None


def test_importing_coflux_loads_neither_jupyter_nor_the_notebook_layer() -> None:
    code = (
        "import sys, coflux\n"
        "loaded = [m for m in ('IPython', 'ipywidgets', 'anywidget', 'jupyter_server', 'coflux.notebook')"
        " if m in sys.modules]\n"
        "print(','.join(loaded))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""
