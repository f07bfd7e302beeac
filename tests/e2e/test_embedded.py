"""An embedded server never outlives the process that started it, even one killed without cleanup."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.support.harness import environment, wait_until

pytestmark = pytest.mark.e2e

SCRIPT = """
import os
from coflux.embedded import EmbeddedServer
server = EmbeddedServer().__enter__()
print(server._process.pid, flush=True)
os._exit(0)  # no cleanup: what a SIGKILL or a crash leaves behind
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped by init) counts as gone
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


def test_the_embedded_server_stops_when_its_parent_dies_without_cleanup() -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=environment(), capture_output=True, text=True, timeout=60
    )
    pid = int(result.stdout.strip())
    wait_until(lambda: not _alive(pid), 20, f"the orphaned server {pid} to stop")
