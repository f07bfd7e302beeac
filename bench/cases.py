"""The measured cases: each is a workflow started from this process with ``Client.start_run`` and
waited for with ``Run.result()``; a warm-up run, then ``repetitions`` timed runs."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from coflux.client import Client, Run
from coflux.errors import NotFound


@dataclass(frozen=True)
class Spread:
    """Median and min-max of some repetitions."""

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: list[float]) -> Spread:
        return cls(statistics.median(values), min(values), max(values))


@dataclass(frozen=True)
class Case:
    """A workflow to time. ``items`` is what one run does: 100 steps, 1,000 tasks, ..."""

    name: str
    target: str
    argument: int
    items: int
    expected: int


@dataclass
class CaseResult:
    case: Case
    wall_s: list[float] = field(default_factory=list)
    """Client-side: ``start_run`` called until ``Run.result()`` returned (the headline figure)."""
    server_s: list[float] = field(default_factory=list)
    """Server-side: the run's ``created_at`` until its root execution's ``completed_at``."""

    def ms_per_item(self, *, server: bool = False) -> Spread:
        values = self.server_s if server else self.wall_s
        return Spread.of([1000 * value / self.case.items for value in values])

    def items_per_s(self, *, server: bool = False) -> Spread:
        values = self.server_s if server else self.wall_s
        return Spread.of([self.case.items / value for value in values])

    def to_json(self) -> dict[str, Any]:
        return {"case": asdict(self.case), "wall_s": self.wall_s, "server_s": self.server_s}


CHAIN_STEPS = 100
FANOUT_TASKS = 1000

EMPTY = Case("empty run", "bench.flows:empty", 7, 1, 7)
CHAIN = Case("chain", "bench.flows:chain", CHAIN_STEPS, CHAIN_STEPS, CHAIN_STEPS)
CACHE_HITS_N = 100
CACHE_HITS = Case("cache hits", "bench.flows:cache_hits", CACHE_HITS_N, CACHE_HITS_N, 9 * CACHE_HITS_N)
DISTINCT_HITS = Case(
    "distinct hits",
    "bench.flows:distinct_hits",
    CACHE_HITS_N,
    CACHE_HITS_N,
    sum(x * x for x in range(CACHE_HITS_N)),
)
FANOUT = Case(
    "fan-out", "bench.flows:fanout", FANOUT_TASKS, FANOUT_TASKS, FANOUT_TASKS * (FANOUT_TASKS - 1) // 2
)


def server_span(data: dict[str, Any]) -> float:
    """Seconds from the run's creation to its root execution's completion, by the server's clock."""
    root = data["steps"][0]["executions"][-1]
    return float(root["completed_at"]) - float(data["created_at"])


def time_one_run(client: Client, case: Case, timeout: float) -> tuple[float, float]:
    """Run ``case`` once; returns (client wall seconds, server-side seconds). Checks the value."""
    started = time.perf_counter()
    run: Run = client.start_run(case.target, case.argument)
    value = run.result(timeout=timeout)
    wall = time.perf_counter() - started
    if value != case.expected:
        raise AssertionError(f"{case.name}: expected {case.expected}, got {value!r} (run {run.id})")
    return wall, server_span(run.data())


def measure(
    client: Client,
    case: Case,
    repetitions: int,
    timeout: float,
    progress: Callable[[str], None] = print,
) -> CaseResult:
    """One warm-up run (not recorded), then ``repetitions`` timed runs, one after the other."""
    time_one_run(client, case, timeout)
    result = CaseResult(case)
    for index in range(repetitions):
        wall, server = time_one_run(client, case, timeout)
        result.wall_s.append(wall)
        result.server_s.append(server)
        progress(
            f"  {case.name} {index + 1}/{repetitions}: {1000 * wall:8.1f} ms (server {1000 * server:.1f} ms)"
        )
    return result


def wait_for_workflows(client: Client, targets: list[str], timeout: float) -> None:
    """Block until the worker has registered every ``module:workflow`` in ``targets``."""
    wanted = {tuple(target.split(":")) for target in targets}
    deadline = time.monotonic() + timeout
    while True:
        try:
            workflows = client.workflows()
        except NotFound:  # the project appears when the worker first connects
            workflows = []
        listed = {(w.get("module"), w.get("name", w.get("target"))) for w in workflows}
        if wanted <= listed:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"workflows not registered after {timeout:.0f} s: {sorted(wanted - listed)}")
        time.sleep(0.1)
