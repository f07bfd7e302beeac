"""The Jupyter server extension that hosts Coflux: orchestrators, storage, REST and websockets.

The only package that imports jupyter_server. Enabled on install by
``etc/jupyter/jupyter_server_config.d/jupyter_ext.json``.
"""

from __future__ import annotations

from typing import Any


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    from jupyter_ext.app import Coflux

    return [{"module": "jupyter_ext", "app": Coflux}]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """The prebuilt JupyterLab extension (built from ``labextension/`` into this package)."""
    return [{"src": "labextension", "dest": "jupyter-coflux"}]
