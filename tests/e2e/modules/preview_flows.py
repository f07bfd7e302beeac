"""Targets that return values the server can't read itself (run by a real `coflux worker`): each
kind gets a readable preview from the worker, shown by `coflux runs show` and the RunTree."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

import coflux as cf


@dataclasses.dataclass
class Point:
    x: int
    y: int


def value_of(kind: str) -> Any:
    if kind == "keys":
        return {3: 5, (1, 2): "pair"}
    if kind == "dataclass":
        return Point(1, 2)
    if kind == "bytes":
        return b"\x89PNG" + bytes(range(256)) * 100  # a blob: only the worker can show it
    if kind == "dataframe":
        return pd.DataFrame({"a": range(1000), "b": [0.5] * 1000, "c": ["x", "y"] * 500})
    if kind == "ndarray":
        return np.arange(1000, dtype=np.int64).reshape(100, 10)
    if kind == "image":
        return Image.new("RGB", (640, 480), (200, 40, 40))
    if kind == "figure":
        from matplotlib.figure import Figure

        figure = Figure(figsize=(6.4, 4.8), dpi=100)
        figure.add_subplot().plot([1, 3, 2])
        return figure
    raise ValueError(f"unknown kind {kind!r}")


@cf.task()
def make(kind: str) -> Any:
    return value_of(kind)


@cf.task()
def receive(value: Any) -> str:
    """A step whose argument is the value: its row shows the argument in short."""
    return type(value).__name__


@cf.workflow()
def values(kind: str) -> Any:
    value = make(kind)
    receive(value)
    return value
