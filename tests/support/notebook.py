"""What the notebook layer's widgets need of a kernel's session, over a real server."""

from __future__ import annotations

from coflux.client import Client
from tests.support.harness import Server


class FakeSession:
    """What widgets need of the kernel's session, over a real server; switching only records."""

    def __init__(self, server: Server, workspace: str = "main") -> None:
        self.url = server.url
        self.token: str | None = server.token
        self.project = "default"
        self.workspace = workspace
        self.switched: list[tuple[str, str | None]] = []

    def client(self) -> Client:
        return Client(self.url, self.token, self.project, self.workspace)

    def switch_workspace(self, name: str, base: str | None = None) -> None:
        self.switched.append((name, base))
        self.workspace = name
