"""The engine alone: no storage (an in-memory history, a store that keeps its batches), a fake
clock, and its invariants checked after every step."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from coflux.models import ExecutionState, RunId, SessionId, StepOptions, TargetType
from coflux.orchestrator import invariants
from coflux.orchestrator.clock import FakeClock
from coflux.orchestrator.engine import Engine
from coflux.orchestrator.history import MemoryHistory, RunMemo
from coflux.orchestrator.state import Run, Session
from coflux.orchestrator.writer import Writer
from coflux.storage import Batch

WORKSPACE = 1
FLOW = ("m", "flow", TargetType.WORKFLOW)
TASK = ("m", "child", TargetType.TASK)


class KeptBatches:
    """Stands in for the store: what would be written is kept."""

    def __init__(self) -> None:
        self.batches: list[Batch] = []

    def apply(self, batch: Batch) -> None:
        self.batches.append(batch)


class OneWorkspace:
    def name_of(self, workspace_id: int) -> str:
        return "main"

    def ancestry(self, workspace_id: int) -> list[int]:
        return [workspace_id]

    def dispatchable(self, workspace_id: int) -> bool:
        return True


class Bench:
    def __init__(self) -> None:
        self.clock = FakeClock()
        self.history = MemoryHistory()
        self.events: list[dict[str, Any]] = []
        self.store = KeptBatches()
        self.writer = Writer(self.store, self._before_commit, self._failed)  # type: ignore[arg-type]
        self.engine = Engine(self.writer, self.history, OneWorkspace(), self.clock, self.events.append)

    def _before_commit(self) -> None:
        self.engine.dispatch()
        invariants.check(self.engine)

    @staticmethod
    def _failed(error: Exception) -> None:
        raise error

    def commit(self) -> None:
        self.writer.flush()
        invariants.check(self.engine)

    def session(self, concurrency: int = 1) -> tuple[Session, list[dict[str, Any]]]:
        inbox: list[dict[str, Any]] = []
        targets = {FLOW[:2], TASK[:2]}
        session = Session(SessionId("s"), WORKSPACE, concurrency, {}, targets, inbox.append, None, None, 0.0)
        self.engine.remember_session(session)
        return session, inbox

    def root(self, options: dict[str, Any] | None = None) -> Any:
        run = self.engine.new_run(RunId("R1"), WORKSPACE, None)
        step = self.engine.new_step(run, FLOW, [1], StepOptions.from_json(options or {}), None, None)
        return self.engine.new_execution(step, WORKSPACE)


def on_loop(test: Callable[[Bench], None]) -> None:
    async def scenario() -> None:
        test(Bench())

    asyncio.run(scenario())


def test_a_caller_blocked_on_its_delayed_child_lends_its_slot_and_gets_it_back() -> None:
    def test(bench: Bench) -> None:
        engine = bench.engine
        session, inbox = bench.session(concurrency=1)
        parent = bench.root()
        bench.commit()
        assert parent.session is session and session.busy == 1 and inbox[-1]["type"] == "execute"
        step = engine.new_step(parent.step.run, TASK, [2], StepOptions.from_json({"delay": 5}), parent, 0)
        child = engine.new_execution(step, WORKSPACE, delay=5)
        engine.block(parent)
        bench.commit()
        assert session.busy == 0 and child.session is None  # delayed: not due yet
        bench.clock.advance(5)
        bench.commit()
        assert child.session is session and session.busy == 1  # the caller's slot, lent
        engine.finish(child, {"state": "succeeded", "value": 4}, reported=True)
        engine.unblock(parent)
        bench.commit()
        assert session.busy == 1 and list(session.executions) == [parent.execution_id]
        assert engine.outcome_of(step.step_id) == {"state": "succeeded", "value": 4}

    on_loop(test)


def test_a_timeout_is_the_clocks_and_aborts_the_execution_once_durable() -> None:
    def test(bench: Bench) -> None:
        session, inbox = bench.session()
        execution = bench.root({"timeout": 3})
        bench.commit()
        bench.clock.advance(2.9)
        assert execution.execution_id in bench.engine.executions
        bench.clock.advance(0.1)
        assert execution.state is ExecutionState.TIMED_OUT and session.busy == 0
        assert inbox[-1]["type"] == "execute"  # the abort waits for the commit
        bench.commit()
        assert inbox[-1] == {"type": "abort", "execution_id": execution.execution_id}
        assert not bench.engine.runs and {"type": "run", "run_id": "R1", "status": "failed"} in bench.events

    on_loop(test)


def test_what_is_final_is_read_from_history() -> None:
    def test(bench: Bench) -> None:
        history = bench.history
        history.outcomes["R0:1"] = {"state": "succeeded", "value": "old"}
        history.results["R0:1:1"] = ("succeeded", "old")
        history.attempts["R0:1"] = 3
        history.memos["R0"] = RunMemo({"key": "R0:1"}, True)
        engine = bench.engine
        assert engine.outcome_of("R0:1") == {"state": "succeeded", "value": "old"}
        assert engine.state_of("R0:1:1") == "succeeded" and engine.state_of("R0:2:1") is None
        assert engine.latest_attempt("R0:1") == 3
        restored = Run(RunId("R0"), WORKSPACE, next_number=2)  # as rebuilt after a restart: no memo yet
        assert engine.memo_of(restored) == {"key": "R0:1"} and restored.memo_default is True

    on_loop(test)


def test_a_broken_invariant_is_named() -> None:
    def test(bench: Bench) -> None:
        session, _ = bench.session()
        execution = bench.root()
        bench.commit()
        invariants.check(bench.engine)
        session.busy += 1  # as the slot-accounting bug did on restore
        with pytest.raises(invariants.InvariantBroken, match="counts 2 busy slots, not 1"):
            invariants.check(bench.engine)
        session.busy -= 1
        del session.executions[execution.execution_id]
        broken = invariants.violations(bench.engine)
        assert any("not among its executions" in b for b in broken), broken
        assert any("counts 1 busy slots, not 0" in b for b in broken), broken

    on_loop(test)
