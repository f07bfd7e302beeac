"""Version 2 of the pipeline (dev's code): only ``scale`` differs."""

import coflux as cf


@cf.task(cache=True)
def count(n: int) -> int:
    # the same code as version 1: comments and formatting don't change a task's version
    return n


@cf.task(cache=True)
def scale(n: int) -> int:
    return n * 3


@cf.task(cache=True)
def square(n: int) -> int:
    return n * n


@cf.workflow()
def pipeline(n: int) -> list[int]:
    return [count(n), scale(n), square(n)]
