"""Connection settings of a worker: arguments, then ``COFLUX_*`` environment variables, then
defaults. (``coflux.client`` adds ``coflux.toml`` for the command line; this layer stays small.)"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Final

from coflux.errors import ConfigurationError
from coflux.models import valid_project_name, valid_workspace_name
from coflux.worker.options import tag

DEFAULT_URL: Final = "http://127.0.0.1:8888/coflux"
DEFAULT_PROJECT: Final = "default"
DEFAULT_WORKSPACE: Final = "main"


@dataclass(frozen=True)
class WorkerSettings:
    """Everything a worker needs to connect and introduce itself."""

    url: str = DEFAULT_URL
    project: str = DEFAULT_PROJECT
    workspace: str = DEFAULT_WORKSPACE
    token: str | None = None
    concurrency: int = 4
    register: bool = False
    provides: dict[str, list[str]] = field(default_factory=dict)

    @property
    def websocket_url(self) -> str:
        """``{url}/ws/worker?project=P``, ``http(s)`` turned into ``ws(s)``."""
        base = self.url.rstrip("/")
        if base.startswith("http"):
            base = "ws" + base[len("http") :]
        return f"{base}/ws/worker?project={self.project}"


def resolve_settings(
    url: str | None = None,
    token: str | None = None,
    project: str | None = None,
    workspace: str | None = None,
    *,
    concurrency: int = 4,
    register: bool = False,
    provides: dict[str, list[str]] | None = None,
) -> WorkerSettings:
    """Settings from the arguments, then ``COFLUX_URL/TOKEN/PROJECT/WORKSPACE``, then defaults."""
    env = os.environ
    settings = WorkerSettings(
        url=url or env.get("COFLUX_URL") or DEFAULT_URL,
        token=token or env.get("COFLUX_TOKEN") or None,
        project=project or env.get("COFLUX_PROJECT") or DEFAULT_PROJECT,
        workspace=workspace or env.get("COFLUX_WORKSPACE") or DEFAULT_WORKSPACE,
        concurrency=concurrency,
        register=register,
        provides={str(k): [tag(v) for v in vs] for k, vs in (provides or {}).items()},
    )
    if not settings.url.startswith(("http://", "https://")):
        raise ConfigurationError(f"the server URL must be http(s)://..., not {settings.url!r}")
    if not valid_project_name(settings.project):
        raise ConfigurationError(f"invalid project name {settings.project!r}")
    if not valid_workspace_name(settings.workspace):
        raise ConfigurationError(f"invalid workspace name {settings.workspace!r}")
    if concurrency < 1:
        raise ConfigurationError("concurrency must be at least 1")
    return settings
