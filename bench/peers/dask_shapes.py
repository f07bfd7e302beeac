"""Dask distributed (a ``LocalCluster``) doing the benchmark's shapes: a fan-out of trivial tasks
gathered at once; a chain of dependent steps, with a round trip per step and as a graph of futures;
and repeated identical calls with ``pure=True``, which Dask answers from the result it still holds
in memory (not durable, and gone once no future refers to it: the nearest it has to a cache hit).

    /tmp/venv-dask/bin/python bench/peers/dask_shapes.py --processes 0   # 1 worker, 2 threads
    /tmp/venv-dask/bin/python bench/peers/dask_shapes.py --processes 1   # 2 worker processes
"""

from __future__ import annotations

import argparse
import time

from _measure import PeakTreeRss, arguments, repeat, report, watchdog


def noop(i: int) -> int:
    return i


def inc(x: int) -> int:
    return x + 1


def square(x: int) -> int:
    return x * x


def _processes(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--processes", type=int, choices=[0, 1], required=True)


def main() -> None:
    args = arguments(__doc__, _processes)
    watchdog(args.timeout)
    system = "dask-processes" if args.processes else "dask-threads"
    memory = PeakTreeRss()
    import distributed

    started = time.perf_counter()
    if args.processes:
        cluster = distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, host="127.0.0.1"
        )
    else:
        cluster = distributed.LocalCluster(
            n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
        )
    client = distributed.Client(cluster)
    client.gather([client.submit(noop, i, pure=False) for i in range(50)])  # pickles, connections
    report(system, "startup", 1, [time.perf_counter() - started], version=distributed.__version__)

    def fanout() -> int:
        return sum(client.gather([client.submit(noop, i, pure=False) for i in range(args.fanout)]))

    def chain_round_trips() -> int:
        x = 0
        for _ in range(args.chain):
            x = client.submit(inc, x, pure=False).result()
        return x

    def chain_graph() -> int:
        future = client.submit(inc, 0, pure=False)
        for _ in range(args.chain - 1):
            future = client.submit(inc, future, pure=False)
        return int(future.result())

    held = client.submit(square, 3, pure=True)  # computed once and kept: the calls below reuse it
    held.result()

    def hits() -> int:
        return sum(client.submit(square, 3, pure=True).result() for _ in range(args.hits))

    report(
        system, "fanout", args.fanout, repeat(args.repetitions, fanout, args.fanout * (args.fanout - 1) // 2)
    )
    report(system, "chain", args.chain, repeat(args.repetitions, chain_round_trips, args.chain))
    report(system, "chain_graph", args.chain, repeat(args.repetitions, chain_graph, args.chain))
    report(system, "cache_hits", args.hits, repeat(args.repetitions, hits, 9 * args.hits))
    del held
    client.close()
    cluster.close()
    report(system, "peak_rss", 0, [], peak_tree_rss_mb=memory.stop())


if __name__ == "__main__":
    main()
