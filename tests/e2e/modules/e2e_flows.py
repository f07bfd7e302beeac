"""Targets used by the end-to-end tests (run by real `coflux worker` processes)."""

import os
import time
from pathlib import Path

import coflux as cf


@cf.task()
def square(x: int) -> int:
    return x * x


@cf.workflow()
def fanout(n: int) -> int:
    return sum(e.result() for e in [square.submit(i) for i in range(n)])


@cf.task()
def explode(message: str) -> None:
    raise ValueError(message)


@cf.workflow()
def catches(message: str) -> str:
    try:
        explode(message)
    except ValueError as err:
        return f"caught ValueError: {err}"
    return "not caught"


@cf.task(retries=2)
def flaky(marker: str) -> str:
    """Fails the first time it runs for a marker file, succeeds after."""
    path = Path(marker)
    if not path.exists():
        path.write_text("failed once")
        raise RuntimeError("first attempt fails")
    return "second time lucky"


@cf.workflow()
def flaky_flow(marker: str) -> str:
    return flaky(marker)


@cf.task(retries=1, requires={"role": "task"})
def slow(marker: str, seconds: float) -> int:
    """Writes its pid to ``marker`` (so a test can kill this worker) and sleeps the first time."""
    path = Path(marker)
    if not path.exists():
        path.write_text(str(os.getpid()))
        time.sleep(seconds)
    return os.getpid()


@cf.task()
def slow_no_retry(marker: str, seconds: float) -> int:
    Path(marker).write_text(str(os.getpid()))
    time.sleep(seconds)
    return os.getpid()


@cf.workflow(requires={"role": "flow"})
def slow_flow(marker: str, seconds: float) -> int:
    return slow(marker, seconds)


@cf.workflow()
def slow_no_retry_flow(marker: str, seconds: float) -> int:
    return slow_no_retry(marker, seconds)


@cf.task()
def inc(x: int) -> int:
    return x + 1


@cf.task()
def nap(x: int, seconds: float) -> int:
    time.sleep(seconds)
    return x


@cf.workflow()
def chain(n: int, seconds: float) -> int:
    """n dependent steps, each sleeping a little, so a server can be killed midway."""
    x = 0
    for _ in range(n):
        x = nap(inc(x), seconds)
    return x


@cf.workflow()
def add(a: int, b: int) -> int:
    return a + b


@cf.task()
def token(previous: str) -> str:
    """A new random value each run: a step run twice would show in its successor's argument."""
    return f"{previous[-9:]}>{os.urandom(4).hex()}"


@cf.workflow()
def tokens(n: int) -> str:
    """n dependent, fast, nondeterministic steps."""
    x = ""
    for _ in range(n):
        x = token(x)
    return x


@cf.task()
def ledger_square(i: int, ledger: str, seconds: float) -> int:
    """Appends its execution id to ``ledger`` (one line, one write) as it runs: what ran, for real."""
    from coflux.worker import context

    current = context.current()
    assert current is not None
    with open(ledger, "a") as handle:
        handle.write(f"{current.execution_id}\n")
    time.sleep(seconds)
    return i * i


@cf.workflow()
def ledger_fanout(n: int, ledger: str, seconds: float) -> int:
    return sum(e.result() for e in [ledger_square.submit(i, ledger, seconds) for i in range(n)])


@cf.workflow()
def leaves_behind(n: int, seconds: float) -> None:
    """Starts n slow children without waiting for them, then fails: they go on after the run."""
    for _ in range(n):
        nap.submit(0, seconds)
    raise RuntimeError("gave up early")


@cf.workflow()
def shout(word: str) -> str:
    print(f"shouting {word}")
    return word
