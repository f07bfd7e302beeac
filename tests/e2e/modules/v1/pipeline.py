"""Version 1 of a three-task pipeline (production's code)."""

import coflux as cf


@cf.task(cache=True)
def count(n: int) -> int:
    return n


@cf.task(cache=True)
def scale(n: int) -> int:
    return n * 2


@cf.task(cache=True)
def square(n: int) -> int:
    return n * n


@cf.workflow()
def pipeline(n: int) -> list[int]:
    return [count(n), scale(n), square(n)]
