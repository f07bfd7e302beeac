"""A worker's settings: the connection (resolved by :mod:`coflux.settings`, as for every command and
client) and what only a worker has (whether it registers its workflows, the tags it provides, where
the values it sends go: inline up to ``inline_limit`` bytes, else blobs)."""

from __future__ import annotations

from dataclasses import dataclass, field

from coflux import settings
from coflux.background import websocket_url
from coflux.serialization import DEFAULT_INLINE_LIMIT, DEFAULT_LARGE_LIMIT
from coflux.settings import DEFAULT_CONCURRENCY, DEFAULT_PROJECT, DEFAULT_URL, DEFAULT_WORKSPACE
from coflux.worker.options import tag


@dataclass(frozen=True)
class WorkerSettings:
    """Everything a worker needs to connect and introduce itself."""

    url: str = DEFAULT_URL
    project: str = DEFAULT_PROJECT
    workspace: str = DEFAULT_WORKSPACE
    token: str | None = None
    concurrency: int = DEFAULT_CONCURRENCY
    register: bool = False
    provides: dict[str, list[str]] = field(default_factory=dict)
    inline_limit: int = DEFAULT_INLINE_LIMIT
    """Bytes, pickles, arrays and frames shorter than this travel inside the value, longer as blobs."""
    large_limit: int = DEFAULT_LARGE_LIMIT
    """A value whose tagged JSON is longer than this travels as one blob."""
    kernel_id: str | None = None
    """The Jupyter kernel this worker is (a notebook kernel's), told to the server in ``hello``."""

    @property
    def websocket_url(self) -> str:
        """``{url}/ws/worker?project=P``, ``http(s)`` turned into ``ws(s)``."""
        return websocket_url(self.url, "ws/worker", {"project": self.project})


def resolve_settings(
    url: str | None = None,
    token: str | None = None,
    project: str | None = None,
    workspace: str | None = None,
    *,
    concurrency: int | None = None,
    register: bool = False,
    provides: dict[str, list[str]] | None = None,
    inline_limit: int | None = None,
    large_limit: int | None = None,
) -> WorkerSettings:
    """The worker's settings: the connection from :func:`coflux.settings.resolve` (arguments, then
    ``COFLUX_*`` variables, then ``coflux.toml``, then the defaults), plus what only a worker has."""
    resolved = settings.resolve(
        url, token, project, workspace, concurrency, inline_limit=inline_limit, large_limit=large_limit
    )
    return WorkerSettings(
        url=resolved.url,
        token=resolved.token,
        project=resolved.project,
        workspace=resolved.workspace,
        concurrency=resolved.concurrency,
        register=register,
        provides={str(k): [tag(v) for v in vs] for k, vs in (provides or {}).items()},
        inline_limit=resolved.inline_limit,
        large_limit=resolved.large_limit,
    )
