"""Cache hits end to end: answered ahead of their commit, yet every one is recorded as a ``cached``
step, durably, even when the server is killed mid-run (the worker re-sends what it can't be sure
was committed, pinned to the answer it got)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.harness import Server, Worker, run_data, start_run, wait_for_run, wait_until

pytestmark = pytest.mark.e2e


def _check_hits(data: dict[str, Any], n: int) -> None:
    assert data["status"] == "succeeded" and data["result"] == 42 * n
    children = data["steps"][1:]
    assert len(children) == n  # one step per call: none lost, none doubled
    first = children[0]["executions"][-1]
    assert first["state"] == "succeeded"
    for step in children[1:]:
        [execution] = step["executions"]
        assert execution["state"] == "cached" and execution["cached_from"] == first["execution_id"]


def test_cache_hits_are_recorded_and_survive_a_restart(tmp_path: Path) -> None:
    server = Server(tmp_path / "data").start()
    worker = Worker(server, "e2e_cache_flows").start()
    try:
        run_id = start_run(server, "e2e_cache_flows:hits", 30, 0.0)
        _check_hits(wait_for_run(server, run_id), 30)
        server.stop()  # a clean restart: every hit is in storage
        server.start()
        _check_hits(run_data(server, run_id), 30)
    finally:
        worker.stop()
        server.stop()


def test_cache_hits_survive_the_server_being_killed_mid_run(tmp_path: Path) -> None:
    server = Server(tmp_path / "data").start()
    worker = Worker(server, "e2e_cache_flows").start()
    try:
        # Back to back: the kill often lands while a hit's step is being committed.
        run_id = start_run(server, "e2e_cache_flows:hits", 1500, 0.0)
        wait_until(lambda: len(run_data(server, run_id)["steps"]) >= 10, 30, "some hits")
        server.kill()
        server.start()
        _check_hits(wait_for_run(server, run_id, timeout=60), 1500)
    finally:
        worker.stop()
        server.stop()
