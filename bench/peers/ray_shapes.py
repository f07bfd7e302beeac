"""Ray (local, ``num_cpus=2``) doing the benchmark's shapes: a fan-out of trivial tasks gathered at
once, and a chain of dependent steps, both with a round trip per step (as a workflow that uses each
result does) and as an ObjectRef graph the scheduler resolves. Ray keeps no results across calls by
itself, so there is no cache case.

    /tmp/venv-ray/bin/python bench/peers/ray_shapes.py [--repetitions 7] [--fanout 1000] [--chain 100]
"""

from __future__ import annotations

import time

from _measure import PeakTreeRss, arguments, repeat, report, watchdog


def main() -> None:
    args = arguments(__doc__)
    watchdog(args.timeout)
    memory = PeakTreeRss()
    import ray

    @ray.remote
    def noop(i: int) -> int:
        return i

    @ray.remote
    def inc(x: int) -> int:
        return x + 1

    started = time.perf_counter()
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        object_store_memory=256 * 2**20,
        log_to_driver=False,
        _temp_dir="/tmp/ray-bench",
    )
    ray.get([noop.remote(i) for i in range(50)])  # starts the worker processes
    report("ray", "startup", 1, [time.perf_counter() - started], version=ray.__version__)

    def fanout() -> int:
        return sum(ray.get([noop.remote(i) for i in range(args.fanout)]))

    def chain_round_trips() -> int:
        x = 0
        for _ in range(args.chain):
            x = ray.get(inc.remote(x))
        return x

    def chain_graph() -> int:
        ref = inc.remote(0)
        for _ in range(args.chain - 1):
            ref = inc.remote(ref)
        return int(ray.get(ref))

    report(
        "ray", "fanout", args.fanout, repeat(args.repetitions, fanout, args.fanout * (args.fanout - 1) // 2)
    )
    report("ray", "chain", args.chain, repeat(args.repetitions, chain_round_trips, args.chain))
    report("ray", "chain_graph", args.chain, repeat(args.repetitions, chain_graph, args.chain))
    peak = memory.stop()
    ray.shutdown()
    report("ray", "peak_rss", 0, [], peak_tree_rss_mb=peak)


if __name__ == "__main__":
    main()
