"""The orchestrator's clocks: the real one over the asyncio loop, and the fake one tests move."""

from __future__ import annotations

import asyncio
import time

from coflux.orchestrator.clock import FakeClock, LoopClock


def test_a_fake_clock_fires_what_is_due_in_order_each_at_its_time() -> None:
    clock = FakeClock(start=100.0)
    fired: list[tuple[str, float]] = []
    clock.call_later(3, lambda: fired.append(("c", clock.now())))
    clock.call_later(1, lambda: fired.append(("a", clock.now())))
    clock.call_later(1, lambda: fired.append(("b", clock.now())))  # same time: in the order set
    clock.advance(0.5)
    assert fired == [] and clock.now() == 100.5
    clock.advance(2)
    assert fired == [("a", 101.0), ("b", 101.0)] and clock.now() == 102.5
    clock.advance(10)
    assert fired[-1] == ("c", 103.0) and clock.now() == 112.5
    assert clock.pending == 0


def test_a_fake_clock_fires_timers_set_while_it_advances_and_skips_cancelled_ones() -> None:
    clock = FakeClock()
    fired: list[str] = []

    def first() -> None:
        fired.append("first")
        clock.call_later(1, lambda: fired.append("set by first"))  # due within the same advance

    clock.call_later(1, first)
    cancelled = clock.call_later(1.5, lambda: fired.append("cancelled"))
    cancelled.cancel()
    clock.call_later(-5, lambda: fired.append("overdue"))  # a negative delay is due now
    assert clock.pending == 2
    clock.advance(2)
    assert fired == ["overdue", "first", "set by first"]
    assert clock.pending == 0


def test_the_loop_clock_is_wall_time_and_the_running_loops_timers() -> None:
    async def scenario() -> None:
        clock = LoopClock()
        before = time.time()
        assert before <= clock.now() <= time.time()
        done = asyncio.get_running_loop().create_future()
        clock.call_later(0, lambda: done.set_result("fired"))
        never = clock.call_later(0, lambda: done.set_result("cancelled"))
        never.cancel()
        assert await done == "fired"

    asyncio.run(scenario())
