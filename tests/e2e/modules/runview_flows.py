"""Targets for the JupyterLab run view test (run by a real `coflux worker`): a workflow with a
group of steps, a task that logs and persists an asset, a spawned run; a run that waits long enough
to be cancelled; a fan-out of 100."""

import time
from pathlib import Path

import coflux as cf


@cf.task()
def measure(i: int) -> dict[str, int]:
    cf.log_info("measuring sample {i}", i=i)
    return {"sample": i, "square": i * i}


@cf.task()
def chart(values: list[dict[str, int]]) -> cf.Asset:
    rows = "".join(f"{v['sample']},{v['square']}\n" for v in values)
    Path("squares.csv").write_text(f"sample,square\n{rows}")
    cf.log_info("charted {n} samples", n=len(values))
    return cf.asset(name="squares")


@cf.workflow()
def double(n: int) -> int:
    return n * 2


@cf.workflow()
def survey(n: int) -> dict[str, int]:
    """n grouped measurements, a chart of them (an asset) and a spawned run."""
    with cf.group("samples"):
        handles = [measure.submit(i) for i in range(n)]
    values = [h.result() for h in handles]
    chart(values)
    return {"total": sum(v["square"] for v in values), "doubled": double(n)}


@cf.task()
def wait(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@cf.workflow()
def slow(seconds: float) -> float:
    return wait(seconds)


@cf.workflow()
def fanout(n: int) -> int:
    return sum(h.result()["square"] for h in [measure.submit(i) for i in range(n)])
