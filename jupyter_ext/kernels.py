"""``GET coflux/api/kernels/{kernel_id}``: which project and workspace a notebook kernel serves.

A notebook kernel is a worker whose ``hello`` carries its kernel id. JupyterLab's status bar asks
here which workspace the active notebook's kernel serves, and follows ``worker`` events of the
project's feed after that. The kernel may have switched projects (``%coflux connect --project``):
every running project is asked, and the session of the kernel's latest ``hello`` answers. For
Jupyter's own users only, like the list of projects: a kernel id is Jupyter's business, and a
project token (which opens one project) never learns about another's kernels.
"""

from __future__ import annotations

from coflux.errors import NotFound
from coflux.orchestrator.sessions import KernelWorker
from jupyter_ext.handlers import CofluxHandler


class KernelWorkerHandler(CofluxHandler):
    auth_resource = "coflux:workers"

    def token_project(self) -> str | None:
        return None  # no project in the path: project tokens are refused (403)

    async def get(self, kernel_id: str) -> None:
        async def action() -> None:
            latest: tuple[str, KernelWorker] | None = None
            for project in self.hub.running:
                found = (await self.service(project)).kernel_worker(kernel_id)
                if found is not None and (latest is None or found.since > latest[1].since):
                    latest = (project, found)
            if latest is None:
                raise NotFound(f"no worker session of kernel {kernel_id}: it never connected to Coflux")
            project, worker = latest
            self.reply(
                {
                    "kernel_id": kernel_id,
                    "project": project,
                    "workspace": worker.workspace,
                    "connected": worker.connected,
                    "session": worker.session_id,
                }
            )

        await self.guarded(action)
