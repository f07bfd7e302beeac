"""A fan-out workflow: one workflow starts many tasks in parallel and gathers their results."""

import coflux as cf


@cf.task()
def square(x: int) -> int:
    return x * x


@cf.workflow()
def fanout(n: int) -> int:
    """Sum of squares of 0..n-1, each square computed by its own task."""
    executions = [square.submit(i) for i in range(n)]
    return sum(e.result() for e in executions)
