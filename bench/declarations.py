"""How much memory do declared targets hold in the server, and is it given back when the workers go?

    .venv/bin/python bench/declarations.py                   # this checkout
    .venv/bin/python bench/declarations.py --root /tmp/base  # another checkout

Starts a real ``coflux server`` (reconnect timeout 1 s) and prints its resident memory: at rest,
after scripted workers declared ``--targets`` targets (48,000 by default, each with five parameters
and the options a worker sends), and after those workers left and the reconnect timeout passed;
``--rounds`` times over, with new names each round.
The targets go in one ``declare`` each from sessions of at most ``--per-session`` (1,000: the
server's cap; ``--per-session 48000`` tries them all in one session). Never run as a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.procs import HOST, MIB, ROOT, child_environment, coflux_command, free_port, wait_until

OPTIONS = {"retries": {"limit": 0, "backoff_min": 0.0, "backoff_max": 0.0, "when": []}, "version": "0" * 16}


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout to run (default: this one)")
    parser.add_argument("--targets", type=int, default=48_000, help="targets declared in all (48,000)")
    parser.add_argument("--per-session", type=int, default=1000, help="targets per session (1,000)")
    parser.add_argument("--parameters", type=int, default=5, help="parameters per target (5)")
    parser.add_argument("--rounds", type=int, default=3, help="declare and leave this many times (3)")
    return parser.parse_args(argv)


def target(index: int, parameter_count: int) -> dict[str, Any]:
    parameters = [
        {"name": f"p{n}", "kind": "positional_or_keyword", "has_default": False}
        for n in range(parameter_count)
    ]
    return {
        "module": "bench.declared",
        "name": f"workflow_{index}",
        "type": "workflow",
        "parameters": parameters,
        "options": OPTIONS,
        "version": "0" * 16,
    }


async def declare(url: str, token: str, names: range, per_session: int, parameters: int) -> list[Any]:
    """Sessions that declared targets ``names`` between them (printing any refusal)."""
    from tornado import httpclient, websocket

    request = httpclient.HTTPRequest(
        url.replace("http://", "ws://") + "/ws/worker?project=default",
        headers={"Authorization": f"token {token}"},
    )
    hello = {"type": "hello", "protocol": 1, "workspace": "main", "concurrency": 1, "targets": []}
    sessions = []
    for start in range(names.start, names.stop, per_session):
        conn = await websocket.websocket_connect(request, max_message_size=64 * MIB)
        await conn.write_message(json.dumps(hello))
        await conn.read_message()  # welcome
        targets = [target(i, parameters) for i in range(start, min(names.stop, start + per_session))]
        await conn.write_message(json.dumps({"type": "declare", "targets": targets, "request_id": 1}))
        answer = json.loads(await conn.read_message() or "null")
        if answer is None or answer.get("type") != "reply":
            print(f"  a declare of {len(targets)} targets was answered {answer}")
        sessions.append(conn)
    return sessions


def workflows(url: str, token: str) -> int:
    request = urllib.request.Request(f"{url}/api/projects/default/workspaces/main/workflows")
    request.add_header("Authorization", f"token {token}")
    with urllib.request.urlopen(request, timeout=60) as response:
        return len(json.loads(response.read())["workflows"])


def rss(pid: int) -> str:
    return f"{psutil.Process(pid).memory_info().rss / MIB:.0f} MB"


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    token, port = "declare-token", free_port()
    url = f"http://{HOST}:{port}/coflux"
    with (
        tempfile.TemporaryDirectory(prefix="coflux-declare-") as folder,
        open(f"{folder}/server.log", "wb") as log,
    ):
        arguments = ["--port", str(port), "--data-dir", f"{folder}/data", "--token", token]
        env = {**child_environment(args.root), "COFLUX_RECONNECT_TIMEOUT": "1"}
        server = subprocess.Popen(
            [*coflux_command(), "server", *arguments], cwd=args.root, env=env, stdout=log, stderr=log
        )
        try:
            wait_until(lambda: _up(url, token), 60, "the server to answer")
            _create_main(url, token)
            print(f"{args.root}: at rest {rss(server.pid)}")
            loop = asyncio.new_event_loop()
            for round_ in range(args.rounds):  # new names each round
                names = range(round_ * args.targets, (round_ + 1) * args.targets)
                sessions = loop.run_until_complete(
                    declare(url, token, names, args.per_session, args.parameters)
                )
                print(f"  round {round_ + 1}: declared ({workflows(url, token)} listed): {rss(server.pid)}")
                for conn in sessions:
                    conn.close()
                loop.run_until_complete(asyncio.sleep(0.5))
                deadline = time.monotonic() + 5
                while workflows(url, token) and time.monotonic() < deadline:
                    time.sleep(0.5)
                print(
                    f"  round {round_ + 1}: workers gone ({workflows(url, token)} listed): {rss(server.pid)}"
                )
            loop.close()
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(30)
    return 0


def _create_main(url: str, token: str) -> None:
    body = json.dumps({"name": "main", "base": None}).encode()
    request = urllib.request.Request(f"{url}/api/projects/default/workspaces", data=body, method="POST")
    request.add_header("Authorization", f"token {token}")
    with urllib.request.urlopen(request, timeout=60) as response:
        response.read()


def _up(url: str, token: str) -> bool:
    request = urllib.request.Request(f"{url}/api/projects")
    request.add_header("Authorization", f"token {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return bool(response.status == 200)
    except OSError:
        return False


if __name__ == "__main__":
    sys.exit(main())
