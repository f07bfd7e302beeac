"""A/B: the same cases on two checkouts at once, runs interleaved, for a noisy machine.

    git worktree add /tmp/base HEAD              # A: what to compare against (any checkout)
    .venv/bin/python bench/ab.py /tmp/base       # B: this checkout
    .venv/bin/python bench/ab.py /tmp/base --rounds 11 --cases "cache hits,chain"

Both stacks (a ``coflux server`` and a ``coflux worker`` each, see :mod:`bench.procs`) run side by
side, each from its own checkout (its folder is the processes' working folder and ``PYTHONPATH``).
After two warm-up runs each, every round runs each case once on A and once on B, alternating which
goes first, so that whatever else loads the machine weighs on both alike. Prints median and min-max
per item (ms/step, ms/hit, ms/task) and B's median relative to A's.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.cases import (
    CACHE_HITS,
    CHAIN,
    DISTINCT_HITS,
    EMPTY,
    FANOUT,
    Case,
    time_one_run,
    wait_for_workflows,
)
from bench.procs import ROOT, Stack
from coflux.client import Client

CASES = (CACHE_HITS, DISTINCT_HITS, CHAIN, FANOUT, EMPTY)


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("a", type=Path, help="the checkout to compare against (A)")
    parser.add_argument("--b", type=Path, default=ROOT, help="the checkout measured (B; default: this one)")
    parser.add_argument("--rounds", type=int, default=9, help="timed runs per case and side (9)")
    parser.add_argument(
        "--cases",
        default="cache hits,chain",
        help="comma-separated: " + ", ".join(c.name for c in CASES) + " (default: cache hits,chain)",
    )
    parser.add_argument("--concurrency", type=int, default=16, help="each worker's --concurrency (16)")
    parser.add_argument("--run-timeout", type=float, default=120.0, help="seconds allowed per run (120)")
    args = parser.parse_args(argv)
    names = [name.strip() for name in args.cases.split(",") if name.strip()]
    unknown = sorted(set(names) - {c.name for c in CASES})
    if unknown:
        parser.error(f"unknown case(s): {', '.join(unknown)}")
    args.cases = [c for c in CASES if c.name in names]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    roots = {"A": args.a.resolve(), "B": args.b.resolve()}
    cases: list[Case] = args.cases
    stacks: dict[str, Stack] = {}
    with tempfile.TemporaryDirectory(prefix="coflux-ab-") as folder:
        try:
            clients: dict[str, Client] = {}
            for side, root in roots.items():
                work = Path(folder) / side
                work.mkdir()
                stack = stacks[side] = Stack(work, args.concurrency, root=root)
                stack.start()
                clients[side] = Client(url=stack.url, token=stack.token, project="default", workspace="main")
                print(f"{side}: {root} (server pid {stack.server.pid}, worker pid {stack.worker.pid})")
            for client in clients.values():
                wait_for_workflows(client, [c.target for c in cases], timeout=60)
                for case in cases:
                    for _ in range(2):
                        time_one_run(client, case, args.run_timeout)
            per_item: dict[tuple[str, str], list[float]] = {(s, c.name): [] for s in roots for c in cases}
            for index in range(args.rounds):
                order = ["A", "B"] if index % 2 == 0 else ["B", "A"]
                for case in cases:
                    for side in order:
                        wall, _ = time_one_run(clients[side], case, args.run_timeout)
                        per_item[(side, case.name)].append(1000 * wall / case.items)
        finally:
            for stack in stacks.values():
                stack.stop()
    print(f"\n{args.rounds} interleaved rounds; ms per item (step, hit, task; the empty run: ms per run)")
    for case in cases:
        medians = {}
        for side in roots:
            values = per_item[(side, case.name)]
            medians[side] = statistics.median(values)
            spread = f"{min(values):.3f}-{max(values):.3f}"
            print(f"  {case.name:12s} {side}: median {medians[side]:.3f}  min-max {spread}")
        print(f"  {case.name:12s} B/A: {medians['B'] / medians['A']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
