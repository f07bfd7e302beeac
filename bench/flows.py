"""Targets run by the benchmark's ``coflux worker bench.flows`` process.

The tasks are trivial on purpose: every figure measured with them is pure orchestration overhead.
None of them caches or memoises (so each repetition does the full work), except ``cached_square``,
which exists to time cache hits.
"""

from __future__ import annotations

import coflux as cf


@cf.task()
def inc(x: int) -> int:
    return x + 1


@cf.task()
def noop(i: int) -> int:
    return i


@cf.workflow()
def chain(steps: int) -> int:
    """``steps`` dependent calls: each ``inc`` waits for the previous one's value."""
    x = 0
    for _ in range(steps):
        x = inc(x)
    return x


@cf.workflow()
def fanout(n: int) -> int:
    """Submit ``n`` independent ``noop`` tasks, then gather every result."""
    executions = [noop.submit(i) for i in range(n)]
    return sum(execution.result() for execution in executions)


@cf.workflow()
def empty(value: int) -> int:
    """No child steps: the fixed cost of one run (start, dispatch, complete, poll the result)."""
    return value


@cf.task(cache=True)
def cached_square(x: int) -> int:
    return x * x


@cf.workflow()
def cache_hits(n: int) -> int:
    """``n`` dependent calls of a cached task with the same argument: after the warm-up run
    computed it once, every call is a cache hit seen by this worker process."""
    total = 0
    for _ in range(n):
        total += cached_square(3)
    return total


@cf.workflow()
def distinct_hits(n: int) -> int:
    """``n`` dependent cache hits on ``n`` different calls (the warm-up run computed them): none
    repeats within the run, so each is a round trip to the server (no lease answers it)."""
    total = 0
    for x in range(n):
        total += cached_square(x)
    return total
