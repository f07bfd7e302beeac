"""End to end with real processes: a DataFrame returned by one task arrives equal in the next."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from tests.support.harness import Server, Worker, start_run, wait_for_run

pytestmark = pytest.mark.e2e

DATES = str(pd.date_range("2024-01-01", periods=1, freq="h").dtype)  # ns before pandas 3, us since


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    server = Server(tmp_path / "data").start()
    yield server
    server.stop()


@pytest.fixture
def workers(server: Server) -> Iterator[list[Worker]]:
    started = [Worker(server, "e2e_rich_flows").start(), Worker(server, "e2e_rich_flows").start()]
    yield started
    for worker in started:
        worker.stop()


@pytest.mark.parametrize("rows", [4, 20_000], ids=["inline", "blob"])
def test_a_dataframe_returned_by_a_task_arrives_equal_in_the_next(
    server: Server, workers: list[Worker], rows: int
) -> None:
    run_id = start_run(server, "e2e_rich_flows:frames", rows)
    data = wait_for_run(server, run_id)
    assert data["error"] is None and data["status"] == "succeeded"
    assert data["result"] == f"DataFrame equal: {rows} rows"
    steps = {step["target"]: step for step in data["steps"]}
    [made] = steps["make_frame"]["executions"]
    # The server describes the frame from its tag: shape and dtypes, no pandas needed to decode it.
    preview = made["result"].pop("preview")  # the worker's: tests/e2e/test_value_previews.py
    assert made["result"] == {
        "type": "dataframe",
        "shape": [rows, 4],
        "columns": {"x": "float64", "n": "int32", "city": "category", "day": DATES},
        "size": made["result"]["size"],
    }
    assert preview["table"]["shape"] == [rows, 4] and len(preview["table"]["rows"]) == min(rows, 10)
    assert (made["result"]["size"] >= 16_384) is (rows > 4)  # the large one travelled as a blob
    assert steps["check_frame"]["arguments"] == [{**made["result"], "preview": preview}, rows]
    assert made["result_preview"].startswith(f"DataFrame {rows}\u00d74 (x: float64, n: int32, city: category")
