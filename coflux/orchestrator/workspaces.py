"""Workspaces of a project and the workflows registered (or declared by workers) in each."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from coflux.errors import BadRequest, Conflict, NotFound
from coflux.models import TargetDefinition, TargetType, WorkspaceState, valid_workspace_name
from coflux.orchestrator.writer import Writer
from coflux.storage import dumps


@dataclass
class Workspace:
    id: int
    name: str
    base_id: int | None
    state: WorkspaceState


class Workspaces:
    def __init__(self, writer: Writer, rows: list[dict[str, Any]], targets: list[dict[str, Any]]) -> None:
        self._writer = writer
        self.by_id: dict[int, Workspace] = {}
        self.by_name: dict[str, Workspace] = {}
        for row in rows:
            self._add(Workspace(row["id"], row["name"], row["base_id"], WorkspaceState(row["state"])))
        self.registered: dict[int, dict[tuple[str, str], TargetDefinition]] = {}
        self.declared: dict[int, dict[tuple[str, str], TargetDefinition]] = {}
        for row in targets:
            definition = TargetDefinition.from_json(json.loads(row["definition"]))
            self.registered.setdefault(row["workspace_id"], {})[definition.key] = definition

    def _add(self, workspace: Workspace) -> None:
        self.by_id[workspace.id] = workspace
        self.by_name[workspace.name] = workspace

    def get(self, name: str) -> Workspace:
        workspace = self.by_name.get(name)
        if workspace is None:
            raise NotFound(f"no workspace {name!r}")
        return workspace

    def ensure(self, name: str) -> int:
        """The id of workspace ``name``, created (without a base) if it does not exist yet."""
        workspace = self.by_name.get(name)
        if workspace is None:
            workspace = self._create(name, None)
        return workspace.id

    def create(self, name: str, base: str | None) -> Workspace:
        if name in self.by_name:
            raise Conflict(f"workspace {name!r} already exists")
        base_id = self.get(base).id if base else None
        return self._create(name, base_id)

    def _create(self, name: str, base_id: int | None) -> Workspace:
        if not valid_workspace_name(name):
            raise BadRequest(f"invalid workspace name {name!r}")
        workspace = Workspace(max(self.by_id, default=0) + 1, name, base_id, WorkspaceState.ACTIVE)
        self._add(workspace)
        self._writer.batch.workspaces.append(
            {
                "id": workspace.id,
                "name": name,
                "base_id": base_id,
                "state": workspace.state.value,
                "created_at": time.time(),
            }
        )
        self._writer.schedule()
        return workspace

    def describe(self, workspace: Workspace) -> dict[str, Any]:
        base = self.by_id[workspace.base_id].name if workspace.base_id is not None else None
        return {"name": workspace.name, "base": base, "state": workspace.state.value}

    def register(self, workspace_id: int, workflows: list[TargetDefinition]) -> None:
        table = self.registered.setdefault(workspace_id, {})
        for definition in workflows:
            if table.get(definition.key) == definition:
                continue
            table[definition.key] = definition
            self._writer.batch.targets.append(
                {
                    "workspace_id": workspace_id,
                    "module": definition.module,
                    "name": definition.name,
                    "type": definition.type.value,
                    "definition": dumps(definition.to_json()),
                    "registered_at": time.time(),
                }
            )
        self._writer.schedule()

    def remember(self, workspace_id: int, targets: list[TargetDefinition]) -> None:
        table = self.declared.setdefault(workspace_id, {})
        for definition in targets:
            table[definition.key] = definition

    def workflow(self, workspace_id: int, module: str, name: str) -> TargetDefinition:
        key = (module, name)
        definition = self.registered.get(workspace_id, {}).get(key) or self.declared.get(
            workspace_id, {}
        ).get(key)
        if definition is None or definition.type is not TargetType.WORKFLOW:
            raise NotFound(f"no workflow {module}:{name} in this workspace")
        return definition

    def workflows(self, workspace_id: int) -> list[dict[str, Any]]:
        merged = {**self.declared.get(workspace_id, {}), **self.registered.get(workspace_id, {})}
        return [
            {**d.to_json(), "registered": d.key in self.registered.get(workspace_id, {})}
            for d in merged.values()
            if d.type is TargetType.WORKFLOW
        ]
