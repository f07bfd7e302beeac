"""The server SIGKILLed again and again during a run: nothing acknowledged is lost, every call is
one step, and what the server records as succeeded really ran (real processes)."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from tests.support.harness import Server, Worker, start_run, wait_for_run

pytestmark = pytest.mark.e2e

STEPS = 2000
KILLS = 3


@pytest.mark.timeout(400)
@pytest.mark.parametrize("seed", [11, 23, 37])
def test_a_fanout_survives_repeated_server_kills(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    ledger = tmp_path / "ledger"
    server = Server(tmp_path / "data").start()
    worker = Worker(server, "e2e_flows", "--concurrency", "4").start()
    try:
        run_id = start_run(server, "e2e_flows:ledger_fanout", STEPS, str(ledger), 0.02)
        for _ in range(KILLS):
            # A random moment of the run: while children are being submitted, run, or gathered.
            time.sleep(rng.uniform(0.2, 3.0))
            server.kill()
            server.start()
        data = wait_for_run(server, run_id, timeout=300)
        assert data["status"] == "succeeded", data["error"]
        assert data["result"] == sum(i * i for i in range(STEPS))
        children = data["steps"][1:]
        assert len(children) == STEPS  # every call is exactly one step
        assert sorted(s["arguments"][0] for s in children) == list(range(STEPS))
        ran = set(ledger.read_text().split())
        for step in children:
            succeeded = [e for e in step["executions"] if e["state"] == "succeeded"]
            assert len(succeeded) == 1, step
            assert succeeded[0]["execution_id"] in ran, f"{succeeded[0]['execution_id']} never ran"
    finally:
        worker.stop()
        server.stop()
