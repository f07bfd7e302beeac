"""Quick start: an embedded server, a worker in this process, a fan-out workflow and its run tree.

scripts/setup && .venv/bin/python examples/quickstart.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import coflux as cf
from coflux.embedded import EmbeddedServer
from examples.fanout import fanout, square


def main(n: int = 10) -> int:
    with EmbeddedServer() as server:
        print(f"server: {server.url} (data in {server.data_dir})")
        # The server's own token only makes tokens: the worker (and this script) get a worker token.
        token = cf.Client(url=server.url, token=server.token).create_token("worker")["token"]
        worker = cf.Worker([fanout, square], url=server.url, token=token, register=True)
        with worker:
            client = cf.Client(url=server.url, token=token)
            started = time.perf_counter()
            run = _start(client, n)
            value = run.result(timeout=60)
            elapsed = time.perf_counter() - started
            print(f"run {run.id}: fanout({n}) = {value} in {elapsed * 1000:.0f} ms\n")
            print(run.text_tree())
    return 0


def _start(client: cf.Client, n: int) -> cf.Run:
    """Start the run once the worker has registered the workflow (it connects in the background)."""
    deadline = time.monotonic() + 30
    while True:
        try:
            return client.start_run("examples.fanout:fanout", n)
        except cf.NotFound:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 10))
