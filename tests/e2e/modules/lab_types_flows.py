"""Targets whose runs show every shape of the REST API the JupyterLab extension reads (groups,
assets, logs, a failure, a cache hit, a spawned run, previews), for the types check."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import coflux as cf


@dataclass
class Point:
    x: int
    y: int


@cf.task(cache=True)
def square(x: int) -> int:
    print(f"squaring {x}")
    cf.log_info("squared {x}", x=x)
    return x * x


@cf.task()
def files() -> cf.Asset:
    Path("table.csv").write_text("a,b\n1,2\n")
    return cf.asset("table.csv", name="table")


@cf.task()
def reads(asset: cf.Asset) -> int:
    return len(asset.restore()["table.csv"].read_text())


@cf.task()
def frame() -> object:
    import pandas as pd

    return pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})


@cf.task()
def picture() -> object:
    from PIL import Image

    return Image.new("RGB", (8, 4), (10, 200, 30))


@cf.task()
def point() -> Point:
    return Point(1, 2)


@cf.task()
def fails() -> None:
    raise ValueError("bad row 3")


@cf.workflow()
def child(n: int) -> int:
    return square(n)


@cf.workflow()
def shapes(n: int = 2, label: str = "x") -> list[object]:
    with cf.group("squares"):
        values = [square.submit(i) for i in range(n)]
    again = square(0)  # a cache hit
    with contextlib.suppress(cf.ExecutionError):  # its failure shows in the run, not the result
        fails()
    table = files()
    return [
        sum(v.result() for v in values),
        again,
        table,
        reads(table),
        frame(),
        picture(),
        point(),
        child(3),
        label,
    ]
