"""Domain values shared by every layer: ids, states and the options a target carries.

Everything here is immutable and free of I/O. Ids are distinct ``NewType``s so that a step id is never
passed where an execution id is expected; their textual forms are ``R…`` (run), ``R…:N`` (step) and
``R…:N:A`` (execution).
"""

from __future__ import annotations

import enum
import re
import secrets
from dataclasses import dataclass, field
from typing import Any, ClassVar, NewType

RunId = NewType("RunId", str)
StepId = NewType("StepId", str)
ExecutionId = NewType("ExecutionId", str)
SessionId = NewType("SessionId", str)
AssetId = NewType("AssetId", str)

JSON = Any
"""A value that ``json.dumps`` accepts."""

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,55}")
_WORKSPACE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,62}(/[A-Za-z0-9][A-Za-z0-9_.\-]{0,62}){0,7}")
_RUN_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"


def valid_project_name(name: str) -> bool:
    """A project name is one path-safe segment: letters, digits, ``_ . -``; no leading dot or dash."""
    return _NAME.fullmatch(name) is not None


def valid_workspace_name(name: str) -> bool:
    """Workspace names are like project names but may have ``/`` separated segments (``dev/ana``)."""
    return _WORKSPACE.fullmatch(name) is not None


def new_run_id() -> RunId:
    return RunId("R" + "".join(secrets.choice(_RUN_ALPHABET) for _ in range(10)))


def step_id(run_id: RunId, number: int) -> StepId:
    return StepId(f"{run_id}:{number}")


def execution_id(step: StepId, attempt: int) -> ExecutionId:
    return ExecutionId(f"{step}:{attempt}")


def split_execution_id(value: str) -> tuple[RunId, StepId, int]:
    """Parse ``R…:N:A`` into its run, step and attempt; raises ``ValueError`` on anything else."""
    if len(value) > 64:
        raise ValueError(f"not an execution id: {value[:70]!r}...")
    parts = value.split(":")
    if len(parts) != 3 or not parts[0].startswith("R") or not parts[1].isdigit():
        raise ValueError(f"not an execution id: {value!r}")
    if not parts[2].isdigit():
        raise ValueError(f"not an execution id: {value!r}")
    run = RunId(parts[0])
    return run, StepId(f"{run}:{parts[1]}"), int(parts[2])


def split_step_id(value: str) -> tuple[RunId, int]:
    parts = value.split(":")
    if len(parts) != 2 or not parts[0].startswith("R") or not parts[1].isdigit():
        raise ValueError(f"not a step id: {value!r}")
    return RunId(parts[0]), int(parts[1])


class TargetType(str, enum.Enum):
    WORKFLOW = "workflow"
    TASK = "task"


class ExecutionState(str, enum.Enum):
    """The life of one attempt. The first three are live; the rest are final."""

    QUEUED = "queued"
    ASSIGNED = "assigned"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"
    ABANDONED = "abandoned"
    CACHED = "cached"
    DEFERRED = "deferred"
    SPAWNED = "spawned"

    @property
    def final(self) -> bool:
        return self not in (ExecutionState.QUEUED, ExecutionState.ASSIGNED, ExecutionState.RUNNING)

    @property
    def retryable(self) -> bool:
        return self in (ExecutionState.FAILED, ExecutionState.TIMED_OUT, ExecutionState.ABANDONED)


class RunStatus(str, enum.Enum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class WorkspaceState(str, enum.Enum):
    ACTIVE = "active"
    PAUSED = "paused"
    ARCHIVED = "archived"


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how soon a failed step is tried again.

    ``when`` names exception types (``module.Qualname``) that qualify; empty means any failure.
    A predicate given in Python is evaluated by the worker, which reports ``retryable`` with the error.
    """

    limit: int = 0
    backoff_min: float = 0.0
    backoff_max: float = 0.0
    when: tuple[str, ...] = ()

    RAMP: ClassVar[int] = 10
    """Retries over which the delay climbs from min to max when the limit is larger (or unlimited)."""

    def delay(self, retry_number: int) -> float:
        """Seconds before retry ``retry_number`` (1-based): a linear ramp from min to max, reached
        at the last retry, or after ``RAMP`` retries for larger limits."""
        steps = min(self.limit, self.RAMP)
        if steps <= 1 or self.backoff_max <= self.backoff_min:
            return self.backoff_min
        fraction = min(1.0, (retry_number - 1) / (steps - 1))
        return self.backoff_min + fraction * (self.backoff_max - self.backoff_min)

    def to_json(self) -> JSON:
        return {
            "limit": self.limit,
            "backoff_min": self.backoff_min,
            "backoff_max": self.backoff_max,
            "when": list(self.when),
        }

    @classmethod
    def from_json(cls, data: JSON) -> RetryPolicy:
        if data is None:
            return cls()
        return cls(
            limit=int(data.get("limit", 0)),
            backoff_min=float(data.get("backoff_min", 0.0)),
            backoff_max=float(data.get("backoff_max", 0.0)),
            when=tuple(str(w) for w in data.get("when", ())),
        )


@dataclass(frozen=True)
class StepOptions:
    """Per-call scheduling options, as they travel on the wire and are stored with a step."""

    retries: RetryPolicy = field(default_factory=RetryPolicy)
    timeout: float | None = None
    delay: float = 0.0
    requires: dict[str, list[str]] = field(default_factory=dict)
    cache: JSON = None
    memo: JSON = None
    defer: JSON = None
    wait: JSON = None
    version: str | None = None
    group: str | None = None
    """The ``cf.group(name)`` the call was made in: shown with the step, for grouping in views."""

    def to_json(self) -> JSON:
        data: dict[str, JSON] = {"retries": self.retries.to_json()}
        for key in ("timeout", "delay", "cache", "memo", "defer", "wait", "version", "group"):
            value = getattr(self, key)
            if value not in (None, 0.0):
                data[key] = value
        if self.requires:
            data["requires"] = self.requires
        return data

    @classmethod
    def from_json(cls, data: JSON) -> StepOptions:
        data = data or {}
        timeout = data.get("timeout")
        return cls(
            retries=RetryPolicy.from_json(data.get("retries")),
            timeout=float(timeout) if timeout is not None else None,
            delay=float(data.get("delay") or 0.0),
            requires={str(k): [str(x) for x in v] for k, v in (data.get("requires") or {}).items()},
            cache=data.get("cache"),
            memo=data.get("memo"),
            defer=data.get("defer"),
            wait=data.get("wait"),
            version=data.get("version"),
            group=str(data["group"])[:512] if data.get("group") is not None else None,
        )


class _Absent(enum.Enum):
    ABSENT = "absent"


NO_DEFAULT = _Absent.ABSENT
"""A parameter's ``default`` when it has none that JSON can carry (or no default at all)."""


@dataclass(frozen=True)
class Parameter:
    """One parameter of a target as its worker declared it. ``default`` is the default as plain
    JSON when it has one JSON can represent (else :data:`NO_DEFAULT`, ``has_default`` still tells);
    ``annotation`` is the annotation as written (``"int"``, ``"list[str]"``), if any. Both are for
    people and forms only: binding arguments uses ``kind`` and ``has_default``."""

    name: str
    kind: str = "positional_or_keyword"
    has_default: bool = False
    default: JSON = field(default=NO_DEFAULT, hash=False)
    annotation: str | None = None

    def to_json(self) -> JSON:
        data: dict[str, JSON] = {"name": self.name, "kind": self.kind, "has_default": self.has_default}
        if self.default is not NO_DEFAULT:
            data["default"] = self.default
        if self.annotation is not None:
            data["annotation"] = self.annotation
        return data

    @classmethod
    def from_json(cls, data: JSON) -> Parameter:
        annotation = data.get("annotation")
        return cls(
            name=str(data["name"]),
            kind=str(data.get("kind", "positional_or_keyword")),
            has_default=bool(data.get("has_default", False)),
            default=data.get("default", NO_DEFAULT),
            annotation=str(annotation) if annotation is not None else None,
        )


@dataclass(frozen=True)
class TargetDefinition:
    """What a worker declares about one of its targets."""

    module: str
    name: str
    type: TargetType
    parameters: tuple[Parameter, ...] = ()
    options: StepOptions = field(default_factory=StepOptions)
    version: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return (self.module, self.name)

    def to_json(self) -> JSON:
        return {
            "module": self.module,
            "name": self.name,
            "type": self.type.value,
            "parameters": [p.to_json() for p in self.parameters],
            "options": self.options.to_json(),
            "version": self.version,
        }

    @classmethod
    def from_json(cls, data: JSON) -> TargetDefinition:
        return cls(
            module=str(data["module"]),
            name=str(data["name"]),
            type=TargetType(data["type"]),
            parameters=tuple(Parameter.from_json(p) for p in data.get("parameters", ())),
            options=StepOptions.from_json(data.get("options")),
            version=str(data.get("version", "")),
        )

    def accepts(self, argument_count: int) -> bool:
        """Whether ``argument_count`` positional arguments can bind to the parameters."""
        kinds = [p.kind for p in self.parameters]
        if "var_positional" in kinds:
            required = sum(
                1
                for p in self.parameters
                if p.kind in ("positional_only", "positional_or_keyword") and not p.has_default
            )
            return argument_count >= required
        positional = [p for p in self.parameters if p.kind in ("positional_only", "positional_or_keyword")]
        required = sum(1 for p in positional if not p.has_default)
        required_kw = sum(1 for p in self.parameters if p.kind == "keyword_only" and not p.has_default)
        return required_kw == 0 and required <= argument_count <= len(positional)
