"""What ``coflux run`` reports: the failed cell, each run the notebook started (its tree, its result
or the step where its failure began), as text or JSON."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

from coflux import render
from coflux.headless.parameters import Parameter
from coflux.models import JSON

TREE_LINES: Final = 25
"""Steps of a run's tree shown in the summary; the rest is counted."""


@dataclass(frozen=True)
class CellFailure:
    """The cell that stopped the notebook; ``index`` counts the executed notebook's cells from 0."""

    index: int
    execution_count: int | None
    ename: str
    evalue: str
    source: str


@dataclass(frozen=True)
class StepFailure:
    """Where a failed run's error came from: the deepest failed step."""

    step_id: str
    module: str
    target: str
    state: str
    error_type: str
    message: str


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    project: str
    workspace: str
    workflow: str
    arguments: list[JSON]
    status: str
    duration: float | None
    steps: int
    result: JSON = None
    error: JSON = None
    failed_step: StepFailure | None = None
    tree: list[str] = field(default_factory=list)
    """Why the run can't progress, if so, then the step tree, one line per step (as ``coflux runs
    show`` prints them)."""
    outcome: list[str] = field(default_factory=list)
    """The result, or the error and the step where it began (as ``coflux runs show`` prints them)."""

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"

    @property
    def finished(self) -> bool:
        return self.status != "running"


@dataclass(frozen=True)
class HeadlessResult:
    notebook: Path
    output: Path | None
    parameters: dict[str, Parameter]
    url: str | None
    """The server's URL; ``None`` for an embedded server (gone once the notebook ran)."""
    cell_error: CellFailure | None = None
    runs: list[RunSummary] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.cell_error is None and all(run.ok for run in self.runs)

    @property
    def exit_code(self) -> int:
        """0 when every cell ran and every run succeeded, else 1 (``coflux run``'s exit status)."""
        return 0 if self.ok else 1

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["notebook"] = str(self.notebook)
        data["output"] = str(self.output) if self.output else None
        data["embedded"] = self.url is None
        data["ok"] = self.ok
        return data


def summarize_run(project: str, data: Mapping[str, Any]) -> RunSummary:
    """A finished (or still running) run, from the REST view of its tree."""
    steps = list(data.get("steps") or [])
    root = steps[0] if steps else {}
    executions = root.get("executions") or []
    finished = executions[-1].get("completed_at") if executions else None
    started = data.get("created_at")
    duration = finished - started if finished is not None and started is not None else None
    return RunSummary(
        run_id=str(data["run_id"]),
        project=project,
        workspace=str(data.get("run_workspace") or data.get("workspace")),
        workflow=f"{root.get('module')}:{root.get('target')}",
        arguments=list(root.get("arguments") or []),
        status=str(data.get("status")),
        duration=duration,
        steps=len(steps),
        result=data.get("result"),
        error=data.get("error"),
        failed_step=_failed_step(data),
        tree=[f"  {line}" for line in render.blocked_lines(data)] + render.tree_lines(data),
        outcome=render.outcome_lines(data),
    )


def _failed_step(data: Mapping[str, Any]) -> StepFailure | None:
    found = render.failure(data)
    if found is None:
        return None
    step = found.step
    return StepFailure(
        str(step["step_id"]),
        str(step.get("module")),
        str(step.get("target")),
        found.state,
        found.error_type,
        found.message,
    )


# -- execution ------------------------------------------------------------------------------------


def format_summary(result: HeadlessResult) -> str:
    """The human summary ``coflux run`` prints."""
    lines = [f"Notebook {result.notebook}: " + ("a cell failed" if result.cell_error else "all cells ran")]
    failure = result.cell_error
    if failure is not None:
        count = f" (In [{failure.execution_count}])" if failure.execution_count else ""
        lines.append(f"  cell {failure.index}{count} failed: {failure.ename}: {failure.evalue}")
        first = next((line for line in failure.source.splitlines() if line.strip()), "")
        lines.append(f"    {first}")
    if not result.runs:
        lines.append("No runs were started.")
    for run in result.runs:
        lines.extend(_run_lines(run))
    lines.extend(f"warning: {warning}" for warning in result.warnings)
    if result.output is not None:
        lines.append(f"Executed notebook written to {result.output}")
    return "\n".join(lines)


def _run_lines(run: RunSummary) -> list[str]:
    arguments = ", ".join(json.dumps(a, ensure_ascii=False) for a in run.arguments)
    duration = f" in {run.duration:.2f} s" if run.duration is not None else ""
    plural = "" if run.steps == 1 else "s"
    lines = [
        f"Run {run.run_id} {run.workflow}({arguments}) in {run.project}/{run.workspace}: "
        f"{run.status}{duration}, {run.steps} step{plural}"
    ]
    shown = run.tree[:TREE_LINES]
    lines.extend(shown)
    if len(run.tree) > len(shown):
        lines.append(f"  ... and {len(run.tree) - len(shown)} more lines (coflux runs show {run.run_id})")
    lines.extend(run.outcome)
    return lines
