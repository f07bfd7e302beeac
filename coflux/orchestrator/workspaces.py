"""Workspaces of a project and the workflows registered (or declared by workers) in each.

A workspace is active, paused or archived. Paused: nothing queued in it is dispatched (what runs
goes on) until it is resumed. Archived: final; no new runs or re-runs, no dispatch, but everything
in it stays readable and inherited by nothing new (an archived workspace can't be a base). Every
change is kept in memory and written as a ``workspace_updates`` row in the writer's next batch.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from coflux.errors import BadRequest, Conflict, NotFound
from coflux.models import TargetDefinition, TargetType, WorkspaceState, valid_workspace_name
from coflux.orchestrator.clock import Clock
from coflux.orchestrator.writer import Writer
from coflux.storage import dumps


@dataclass
class Workspace:
    id: int
    name: str
    base_id: int | None
    state: WorkspaceState


class Workspaces:
    def __init__(
        self, writer: Writer, rows: list[dict[str, Any]], targets: list[dict[str, Any]], clock: Clock
    ) -> None:
        self._writer = writer
        self._clock = clock
        self.changed: Callable[[], None] = lambda: None
        """Called when a lineage or a declared target changes (what a cache hit returns may too)."""
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

    def get_open(self, name: str) -> Workspace:
        """Workspace ``name``, which must not be archived (it is to take new work)."""
        workspace = self.get(name)
        self.check_open(workspace)
        return workspace

    def dispatchable(self, workspace_id: int) -> bool:
        """Whether work queued in the workspace may be dispatched (it is active)."""
        workspace = self.by_id.get(workspace_id)
        return workspace is None or workspace.state is WorkspaceState.ACTIVE

    def create(self, name: str, base: str | None) -> Workspace:
        if name in self.by_name:
            raise Conflict(f"workspace {name!r} already exists")
        base_id = self._base(base).id if base else None
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
                "created_at": self._clock.now(),
            }
        )
        self._writer.schedule()
        return workspace

    def rename(self, name: str, new_name: str) -> Workspace:
        workspace = self.get(name)
        if new_name == name:
            return workspace
        if not valid_workspace_name(new_name):
            raise BadRequest(f"invalid workspace name {new_name!r}")
        if new_name in self.by_name:
            raise Conflict(f"workspace {new_name!r} already exists")
        del self.by_name[name]
        workspace.name = new_name
        self.by_name[new_name] = workspace
        self._update(workspace, name=new_name)
        return workspace

    def rebase(self, name: str, base: str | None) -> Workspace:
        """Make ``base`` (or nothing) the workspace's base. Refused if that would close a loop: a
        workspace can be based neither on itself nor on one of its descendants."""
        workspace = self.get(name)
        self.check_open(workspace)
        base_id = None
        if base is not None:
            parent = self._base(base)
            if workspace.id in self.ancestry(parent.id):
                raise BadRequest(f"workspace {name!r} can't be based on {base!r}: that makes a cycle")
            base_id = parent.id
        if base_id != workspace.base_id:
            workspace.base_id = base_id
            self._update(workspace, base_id=base_id)
        return workspace

    def set_state(self, name: str, state: WorkspaceState) -> Workspace:
        """Pause, resume or archive. Archiving is final, and refused while a workspace based on this
        one is not archived (it would inherit from an archived workspace)."""
        workspace = self.get(name)
        if workspace.state is state:
            return workspace
        self.check_open(workspace)
        if state is WorkspaceState.ARCHIVED:
            children = sorted(
                w.name
                for w in self.by_id.values()
                if w.base_id == workspace.id and w.state is not WorkspaceState.ARCHIVED
            )
            if children:
                raise Conflict(
                    f"workspace {name!r} is the base of {', '.join(children)}: archive or rebase them"
                )
        workspace.state = state
        self._update(workspace, state=state.value)
        return workspace

    def name_of(self, workspace_id: int) -> str:
        return self.by_id[workspace_id].name

    def ancestry(self, workspace_id: int) -> list[int]:
        """The workspace and its ancestors, nearest first."""
        chain: list[int] = []
        current: int | None = workspace_id
        while current is not None and current not in chain:
            chain.append(current)
            current = self.by_id[current].base_id
        return chain

    def _base(self, name: str) -> Workspace:
        base = self.get(name)
        if base.state is WorkspaceState.ARCHIVED:
            raise Conflict(f"workspace {name!r} is archived and can't be a base")
        return base

    @staticmethod
    def check_open(workspace: Workspace) -> None:
        """Refuse (``Conflict``) an archived workspace."""
        if workspace.state is WorkspaceState.ARCHIVED:
            raise Conflict(f"workspace {workspace.name!r} is archived")

    def _update(self, workspace: Workspace, **changes: Any) -> None:
        self.changed()
        self._writer.batch.workspace_updates.append({"id": workspace.id, **changes})
        self._writer.schedule()

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
                    "registered_at": self._clock.now(),
                }
            )
        self._writer.schedule()

    def remember(self, workspace_id: int, targets: list[TargetDefinition]) -> None:
        table = self.declared.setdefault(workspace_id, {})
        registered = self.registered.get(workspace_id, {})
        for definition in targets:
            before = table.get(definition.key) or registered.get(definition.key)
            table[definition.key] = definition
            if before != definition:  # what cache keys and hits use (its parameters) may differ now
                self.changed()

    def forget(self, workspace_id: int, keys: set[tuple[str, str]]) -> None:
        """Declarations that no session holds any more: gone from memory (a registered workflow
        is still listed, as registered)."""
        table = self.declared.get(workspace_id, {})
        registered = self.registered.get(workspace_id, {})
        changed = False
        for key in keys:
            definition = table.pop(key, None)
            changed = changed or (definition is not None and registered.get(key) != definition)
        if not table:
            self.declared.pop(workspace_id, None)
        if changed:  # what cache keys use (a target's parameters) may differ now
            self.changed()

    def parameters(self, workspace_id: int, module: str, name: str) -> list[str] | None:
        """The parameter names of a target as its workers declared it (None if not known here)."""
        key = (module, name)
        definition = self.declared.get(workspace_id, {}).get(key) or self.registered.get(
            workspace_id, {}
        ).get(key)
        return [p.name for p in definition.parameters] if definition is not None else None

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
