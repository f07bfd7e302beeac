"""``GET coflux/api/projects/{p}/kernels/{kernel_id}/notebook``: the notebook a kernel belongs to.

A kernel learns its notebook's path once, when it starts (``JPY_SESSION_NAME``). Renaming the
notebook in JupyterLab changes the path of the server's session, not the kernel's environment: the
kernel asks here (its magics do, each time they run) to name its module after the notebook's
current name. The kernel id is the key (it is secret: only the server and the kernel know it);
the project is the one the asking token is valid for.
"""

from __future__ import annotations

from typing import Any

from jupyter_core.utils import ensure_async

from coflux.errors import NotFound
from jupyter_ext.handlers import CofluxHandler


class KernelNotebookHandler(CofluxHandler):
    auth_resource = "coflux:kernels"

    async def get(self, project: str, kernel_id: str) -> None:
        async def action() -> None:
            sessions: list[dict[str, Any]] = await ensure_async(self.session_manager.list_sessions())
            for session in sessions:
                if (session.get("kernel") or {}).get("id") == kernel_id and session.get("path"):
                    self.reply({"kernel_id": kernel_id, "path": session["path"]})
                    return
            raise NotFound(f"no notebook session holds kernel {kernel_id}")

        await self.guarded(action)
