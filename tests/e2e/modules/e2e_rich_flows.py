"""Targets that pass a pandas DataFrame between tasks (run by real `coflux worker` processes)."""

import numpy as np
import pandas as pd

import coflux as cf


def expected_frame(rows: int) -> pd.DataFrame:
    """A frame of mixed dtypes with a named string index, large enough to travel as a blob."""
    numbers = np.random.default_rng(rows).normal(size=rows)
    return pd.DataFrame(
        {
            "x": numbers,
            "n": np.arange(rows, dtype=np.int32),
            "city": pd.Categorical(["Lisbon", "Porto"] * (rows // 2)),
            "day": pd.date_range("2024-01-01", periods=rows, freq="h"),
        },
        index=pd.Index([f"r{i}" for i in range(rows)], name="row"),
    )


@cf.task()
def make_frame(rows: int) -> pd.DataFrame:
    return expected_frame(rows)


@cf.task()
def check_frame(frame: pd.DataFrame, rows: int) -> str:
    pd.testing.assert_frame_equal(frame, expected_frame(rows))
    return f"{type(frame).__name__} equal: {frame.shape[0]} rows"


@cf.workflow()
def frames(rows: int) -> str:
    return check_frame(make_frame(rows), rows)
