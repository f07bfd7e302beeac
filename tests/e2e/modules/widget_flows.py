"""Targets for the notebook widget tests (run by a real `coflux worker`)."""

import time

import coflux as cf


@cf.task()
def tick(i: int, seconds: float) -> int:
    cf.log_info("tick {i}", i=i)
    time.sleep(seconds)
    return i


@cf.workflow()
def ticks(n: int, seconds: float) -> int:
    """n dependent steps, each sleeping a little: a run that lasts a while and then succeeds."""
    return sum(tick(i, seconds) for i in range(n))


@cf.task()
def sleeper(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@cf.workflow()
def hold(seconds: float) -> float:
    """Waits on one long child: cancelling the run cancels the child with it."""
    return sleeper(seconds)


@cf.workflow()
def plus(a: int, b: int) -> int:
    return a + b


@cf.workflow()
def spawner(a: int) -> int:
    """Calls a workflow: a spawned run linked to this execution."""
    return plus(a, 1) * 10


@cf.task()
def boom(message: str) -> None:
    raise ValueError(message)


@cf.workflow()
def fails(message: str) -> None:
    boom(message)


@cf.workflow()
def leaves_behind(n: int, seconds: float) -> None:
    """Starts n long children without waiting for them, then fails: they go on after the run."""
    for _ in range(n):
        sleeper.submit(seconds)
    raise RuntimeError("gave up early")


@cf.task()
def pair(key: tuple[int, int]) -> dict[tuple[int, int], bytes]:
    return {key: b"ab"}


@cf.workflow()
def keyed(n: int) -> dict[int, dict[tuple[int, int], bytes]]:
    """Values that are not JSON: the widget shows their previews."""
    return {n: pair((n, n))}
