"""One project's worker floods the server; how fast does another project's REST request answer?

    .venv/bin/python bench/flood.py                       # this checkout
    .venv/bin/python bench/flood.py --root /tmp/base      # another checkout (e.g. the version before)

Starts a real ``coflux server``. A flooder process connects to project ``flood`` as a worker (a
``hello``, then frames of N ``heartbeat`` messages each, 462,607 by default: a 15 MiB frame) and
sends such frames back to back for ``--seconds``, reading whatever the server answers. Meanwhile
this process starts a ``GET projects/quiet/workspaces`` every 50 ms and records each latency.
Prints the median and maximum latency with no flood, then during the flood, and how many frames
the server took (answered or not). Never run as a test: timings depend on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.procs import HOST, ROOT, ManagedProcess, child_environment, coflux_command, free_port, wait_until

HEARTBEAT = '{"type":"heartbeat","running":[]}'


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout to run (default: this one)")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long to flood (20)")
    parser.add_argument("--messages", type=int, default=462_607, help="heartbeats per frame (462,607)")
    parser.add_argument("--flooder", nargs=2, metavar=("URL", "TOKEN"), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


async def flood(url: str, token: str, seconds: float, messages: int) -> None:
    """The flooder's side: hello, then frames of heartbeats for ``seconds`` (connecting again
    whenever the server closes the connection); prints what it saw."""
    from tornado import httpclient, websocket

    request = httpclient.HTTPRequest(
        url.replace("http://", "ws://") + "/ws/worker?project=flood",
        headers={"Authorization": f"token {token}"},
    )
    hello = {"type": "hello", "protocol": 1, "workspace": "main", "concurrency": 1, "targets": []}
    counts = {"frames": 0, "errors": 0, "connections": 0}

    async def read(conn: websocket.WebSocketClientConnection) -> None:
        while (frame := await conn.read_message()) is not None:
            parsed = json.loads(frame)
            for message in parsed if isinstance(parsed, list) else [parsed]:
                counts["errors"] += message.get("type") == "error"

    frame = "[" + ",".join([HEARTBEAT] * messages) + "]"
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        conn = await websocket.websocket_connect(request, max_message_size=64 * 2**20)
        counts["connections"] += 1
        reader = asyncio.get_running_loop().create_task(read(conn))
        try:
            await conn.write_message(json.dumps(hello))
            while time.monotonic() < deadline:
                await conn.write_message(frame)
                counts["frames"] += 1
            await asyncio.sleep(1.0)
        except websocket.WebSocketClosedError:
            pass  # e.g. closed for want of a valid heartbeat: connect again
        conn.close()
        reader.cancel()
    print(json.dumps(counts), flush=True)


def get(url: str, token: str) -> float:
    """Seconds one ``GET projects/quiet/workspaces`` took."""
    request = urllib.request.Request(f"{url}/api/projects/quiet/workspaces")
    request.add_header("Authorization", f"token {token}")
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=120) as response:
        response.read()
    return time.perf_counter() - started


def probe(url: str, token: str, seconds: float, interval: float = 0.05) -> list[float]:
    """Latencies of requests started every ``interval`` s for ``seconds`` (an open loop: a stall
    delays every request that arrives during it, as it would for independent users)."""
    with ThreadPoolExecutor(max_workers=256) as pool:
        futures = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            futures.append(pool.submit(get, url, token))
            time.sleep(interval)
        return [future.result() for future in futures]


def summary(latencies: list[float]) -> str:
    median, worst = statistics.median(latencies), max(latencies)
    return f"{len(latencies)} requests, median {1000 * median:.1f} ms, max {1000 * worst:.1f} ms"


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    if args.flooder:
        asyncio.run(flood(*args.flooder, args.seconds, args.messages))
        return 0
    root = args.root.resolve()
    token, port = "flood-token", free_port()
    url = f"http://{HOST}:{port}/coflux"
    with tempfile.TemporaryDirectory(prefix="coflux-flood-") as folder:
        arguments = ["--port", str(port), "--data-dir", f"{folder}/data", "--token", token]
        server = ManagedProcess(
            "coflux server",
            [*coflux_command(), "server", *arguments],
            Path(folder) / "server.log",
            root,
        )
        server.start()
        try:
            wait_until(lambda: _answers(url, token), 60, "the server to answer")
            for name in ("quiet", "flood"):
                _create(url, token, name)
            print(f"{root}: server pid {server.pid}")
            print("no flood:    ", summary(probe(url, token, 5.0)))
            options = ["--seconds", str(args.seconds), "--messages", str(args.messages)]
            flooder = subprocess.Popen(
                [sys.executable, __file__, "--flooder", url, token, *options],
                env=child_environment(root),
                stdout=subprocess.PIPE,
            )
            time.sleep(0.5)  # connected and sending
            print("during flood:", summary(probe(url, token, args.seconds - 1.0)))
            out, _ = flooder.communicate(timeout=args.seconds + 300)
            print("flooder:     ", out.decode().strip())
            print("after flood: ", summary(probe(url, token, 3.0)))
        finally:
            server.stop()
    return 0


def _answers(url: str, token: str) -> bool:
    request = urllib.request.Request(f"{url}/api/projects")
    request.add_header("Authorization", f"token {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _create(url: str, token: str, project: str) -> None:
    request = urllib.request.Request(
        f"{url}/api/projects", data=json.dumps({"name": project}).encode(), method="POST"
    )
    request.add_header("Authorization", f"token {token}")
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()


if __name__ == "__main__":
    sys.exit(main())
