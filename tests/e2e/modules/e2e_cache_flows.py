"""Targets of tests/e2e/test_cache_hits.py (run by a real `coflux worker`)."""

import time

import coflux as cf


@cf.task(cache=True)
def cached_double(x: int) -> int:
    return 2 * x


@cf.workflow()
def hits(n: int, pause: float) -> int:
    """``n`` calls of a cached task with the same argument: the first computes, the rest hit."""
    total = 0
    for _ in range(n):
        total += cached_double(21)
        time.sleep(pause)
    return total
