"""Re-running steps, and carrying a fix up to the run: ``parents``.

A re-run of step S in workspace W is a new execution of S, with the same arguments, in W (S's own
workspace or a descendant of it); a live execution of S in W is cancelled first. Nothing else
re-runs by itself.

With ``parents``, the re-run starts a chain: once it succeeds, S's parent step is re-run in W, with
``parents`` too, and so on up to the root of the run (and on into the run that spawned it, if
any). A parent re-run that way answers its calls of S's target with S's arguments with S itself,
as a memo hit would, so the step just fixed is not run again; its other calls run as for any
re-run (memo and cache apply). This reuse holds where S's re-run resolves S: in S's own
workspace. In a descendant workspace the parent calls S's target anew. A chain stops at an
execution that does not succeed (after its retries), and where a parent can't be re-run in W
(W archived, or not a descendant of the parent's run's workspace).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from coflux import serialization
from coflux.errors import BadRequest, CofluxError, NotFound
from coflux.models import (
    JSON,
    ExecutionId,
    StepId,
    StepOptions,
    TargetType,
    execution_id,
    split_execution_id,
    split_step_id,
)
from coflux.orchestrator.engine import Engine
from coflux.orchestrator.state import Execution, FixedCall, Run, Step, cancellation
from coflux.orchestrator.workspaces import Workspaces
from coflux.storage import SqlStore

log = logging.getLogger(__name__)


class Reruns:
    def __init__(self, engine: Engine, store: SqlStore, workspaces: Workspaces) -> None:
        self.engine = engine
        self.store = store
        self.workspaces = workspaces
        engine.rerun_parent = self._rerun_parent

    def rerun(self, step_key: str, workspace: str | None, parents: bool = False) -> ExecutionId:
        """A new execution of the step in ``workspace`` (default: the run's); see the module."""
        try:
            run_id, _ = split_step_id(step_key)
        except ValueError as err:
            raise BadRequest(str(err)) from err
        row, run_row = self.store.step(step_key), self.store.run(run_id)
        if row is None or run_row is None:
            raise NotFound(f"no step {step_key}")
        target_ws = self.workspaces.get(workspace).id if workspace else run_row["workspace_id"]
        self._check(run_row, target_ws)
        step = self._live_step(step_key) or self._revive(row, run_row)
        return self._new(step, target_ws, parents, None).execution_id

    def _check(self, run_row: dict[str, Any], workspace_id: int) -> None:
        self.workspaces.check_open(self.workspaces.by_id[workspace_id])
        if run_row["workspace_id"] not in self.workspaces.ancestry(workspace_id):
            raise BadRequest("a step can be re-run only in its own workspace or a descendant of it")

    def _new(self, step: Step, workspace_id: int, parents: bool, fixed: FixedCall | None) -> Execution:
        next_id = execution_id(step.step_id, step.attempts + 1)
        replaced = cancellation(f"cancelled: replaced by the re-run {next_id}")
        for live in [e for e in step.live.values() if e.workspace_id == workspace_id]:
            self.engine.record(live, replaced)  # replaced, not resolved
        if workspace_id == step.workspace_id:
            self.engine.reopen_step(step)  # it resolves again, with the new execution
        return self.engine.new_execution(step, workspace_id, rerun_parents=parents, fixed=fixed)

    def _rerun_parent(self, execution: Execution) -> None:
        """``execution``, a re-run made with ``parents``, succeeded: re-run its parent step in the
        same workspace, reusing ``execution``'s step where that step is now resolved by it."""
        parent = execution.step.parent_execution_id
        if parent is None:
            return  # the root: the chain is done
        step_key = split_execution_id(parent)[1]
        row, run_row = self.store.step(step_key), self.store.run(split_step_id(step_key)[0])
        if row is None or run_row is None:
            return
        try:
            self._check(run_row, execution.workspace_id)
        except CofluxError as err:
            log.info("%s succeeded; its parent %s is not re-run: %s", execution.execution_id, step_key, err)
            return
        own = execution.step.run if execution.step.run.run_id == row["run_id"] else None
        step = self._live_step(step_key) or self._revive(row, run_row, own)
        child = execution.step
        fixed = None
        if execution.workspace_id == child.workspace_id:
            fixed = FixedCall(child.step_id, child.module, child.target, child.arguments)
        self._new(step, execution.workspace_id, True, fixed)

    def _live_step(self, step_key: str) -> Step | None:
        step = self.engine.steps.get(step_key)
        if step is not None:
            return step
        return next((e.step for e in self.engine.executions.values() if e.step.step_id == step_key), None)

    def _revive(self, row: dict[str, Any], run_row: dict[str, Any], run: Run | None = None) -> Step:
        """A resolved step, rebuilt from storage (in the run's live object if the run has one)."""
        run = run or self.engine.runs.get(row["run_id"])
        if run is None:
            count = self.store.step_counts([row["run_id"]]).get(row["run_id"], 0)
            run = Run(row["run_id"], run_row["workspace_id"], count + 1)
        attempts = self.store.attempts_of([row["step_id"]])[row["step_id"]]
        step = step_from_row(row, run, home=attempts[0][1])
        step.attempts = attempts[-1][0]
        return step

    def fixed_call(self, step_key: str | None) -> FixedCall | None:
        """The :class:`FixedCall` of a stored ``fixed_step`` (an execution restored after a restart)."""
        row = self.store.step(step_key) if step_key else None
        if row is None:
            return None
        return FixedCall(StepId(row["step_id"]), row["module"], row["target"], json.loads(row["arguments"]))


def reused_step(parent: Execution, module: str, target: str, arguments: list[JSON]) -> StepId | None:
    """The step a call of ``parent`` reuses: the one whose re-run made ``parent`` (see the module)."""
    fixed = parent.fixed
    if fixed is None or (fixed.module, fixed.target) != (module, target):
        return None
    same = [serialization.canonical(a) for a in arguments] == [
        serialization.canonical(a) for a in fixed.arguments
    ]
    return fixed.step_id if same else None


def step_from_row(row: dict[str, Any], run: Run, home: int) -> Step:
    """A step as stored, in ``run``, resolved in workspace ``home``."""
    target, kind = row["target"], TargetType(row["type"])
    options = StepOptions.from_json(json.loads(row["options"]))
    parent, call_index = row["parent_execution_id"], row["call_index"]
    arguments = json.loads(row["arguments"])
    step = Step(
        row["step_id"],
        run,
        row["number"],
        parent,
        row["module"],
        target,
        kind,
        arguments,
        options,
        call_index,
        home,
    )
    step.cache_key = row.get("cache_key")  # its new results are cache entries too
    return step
