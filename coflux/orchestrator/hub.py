"""The hub: one orchestrator service per project, started on first use, plus tokens and blob stores.

Nothing mutable is shared between projects' services, so one could move to its own process.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

from coflux import tokens
from coflux.blobs import BlobStore
from coflux.errors import BadRequest, Conflict, NotFound
from coflux.models import valid_project_name
from coflux.orchestrator.clock import Clock, LoopClock, Timer
from coflux.orchestrator.service import Limits, ProjectService, Timing
from coflux.storage import SqlStore, list_projects


@dataclass(frozen=True)
class HubSettings:
    data_dir: Path
    secret: bytes
    database_url: str | None = None
    blob_store: str | None = None
    timing: Timing = field(default_factory=Timing)
    limits: Limits = field(default_factory=Limits)
    idle_timeout: float = 300.0
    """Seconds a project's orchestrator stays up with nothing to do before it stops."""


class Hub:
    def __init__(self, settings: HubSettings, clock: Clock | None = None) -> None:
        """``clock``: the one every project's orchestrator keeps time by (the real one by default)."""
        self.settings = settings
        self.clock: Clock = clock or LoopClock()
        self._services: dict[str, ProjectService] = {}
        self._opening: dict[str, asyncio.Lock] = {}
        self._blobs: dict[str, BlobStore] = {}
        self._idle_since: dict[str, float] = {}
        self._reaper: Timer | None = None
        self._closing: set[asyncio.Task[None]] = set()
        """Orchestrators stopped for being idle, still closing."""

    def list_projects(self) -> list[str]:
        stored = list_projects(self.settings.data_dir, self.settings.database_url)
        return sorted(set(stored) | set(self._services))

    async def create_project(self, name: str) -> None:
        self._check_name(name)
        if name in self.list_projects():
            raise Conflict(f"project {name!r} already exists")
        await self.project(name, create=True)

    @staticmethod
    def _check_name(name: str) -> None:
        if not valid_project_name(name):
            raise BadRequest(
                f"invalid project name {name!r}: use letters, digits, '_', '.' or '-' (at most 56)"
            )

    async def project(self, name: str, create: bool = False) -> ProjectService:
        service = self._services.get(name)
        if service is not None:
            return service
        self._check_name(name)
        lock = self._opening.setdefault(name, asyncio.Lock())
        async with lock:
            service = self._services.get(name)
            if service is not None:
                return service
            if not create and name not in self.list_projects():
                raise NotFound(f"no project {name!r}")
            store = SqlStore.open(name, self.settings.data_dir, self.settings.database_url)
            service = ProjectService(name, store, self.settings.timing, self.settings.limits, self.clock)
            await service.start()
            self._services[name] = service
            if self._reaper is None:
                self._reaper = self.clock.call_later(self._reap_interval, self._reap)
            return service

    @property
    def _reap_interval(self) -> float:
        return max(0.05, min(30.0, self.settings.idle_timeout / 2))

    def _reap(self) -> None:
        """Stop orchestrators that have been idle for ``idle_timeout`` (they start again on use)."""
        self._reaper = self.clock.call_later(self._reap_interval, self._reap)
        idle = self._take_idle(self.clock.now())
        if idle:
            closing = asyncio.get_running_loop().create_task(self._close(list(idle.values())))
            self._closing.add(closing)
            closing.add_done_callback(self._closing.discard)

    async def stop_idle(self, now: float) -> list[str]:
        idle = self._take_idle(now)
        await self._close(list(idle.values()))
        return list(idle)

    def _take_idle(self, now: float) -> dict[str, ProjectService]:
        """The orchestrators idle for ``idle_timeout`` by ``now``, no longer this hub's."""
        taken = {}
        for name, service in list(self._services.items()):
            if not service.idle:
                self._idle_since.pop(name, None)
                continue
            since = self._idle_since.setdefault(name, now)
            if now - since >= self.settings.idle_timeout:
                taken[name] = self._services.pop(name)
                del self._idle_since[name]
        return taken

    @staticmethod
    async def _close(services: list[ProjectService]) -> None:
        for service in services:
            await service.close()

    def token(self, project: str, scope: tokens.Scope) -> str:
        """A new token that grants ``project`` only, in ``scope`` (see :mod:`coflux.tokens`)."""
        self._check_name(project)
        return tokens.mint(self.settings.secret, project, scope)

    def grant(self, project: str, token: str) -> tokens.Scope | None:
        """The scope ``token`` grants in ``project``, or None."""
        return tokens.verify(self.settings.secret, project, token)

    def blobs(self, project: str) -> BlobStore:
        store = self._blobs.get(project)
        if store is None:
            self._check_name(project)
            root = self.settings.blob_store or str(self.settings.data_dir / "blobs")
            store = BlobStore(f"{root.rstrip('/')}/{project}")
            self._blobs[project] = store
        return store

    @property
    def running(self) -> list[str]:
        """Projects whose orchestrator is running now."""
        return sorted(self._services)

    async def close(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            self._reaper = None
        for closing in list(self._closing):
            await closing
        services, self._services = self._services, {}
        for service in services.values():
            await service.close()
