"""The engine: a single-writer asyncio service per project, hosted by a :class:`Hub`."""

from coflux.orchestrator.hub import Hub, HubSettings
from coflux.orchestrator.service import Limits, ProjectService, Timing
from coflux.orchestrator.state import Session

__all__ = ["Hub", "HubSettings", "Limits", "ProjectService", "Session", "Timing"]
