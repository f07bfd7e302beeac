"""Orchestration overhead of Coflux for Jupyter, measured end to end, with peers for comparison.

    .venv/bin/python bench/run.py [--quick] [--json PATH] [--concurrency N] [--setup-peers] [--profile]

Starts a real ``coflux server`` (127.0.0.1, a free port, SQLite WAL in a temporary folder) and one
``coflux worker bench.flows --register``, then starts workflows from this process with
``coflux.Client`` and waits for each with ``Run.result()``:

- chain: 100 dependent ``inc`` calls in one workflow; ms per step = run wall time / 100;
- fan-out: 1,000 ``noop`` tasks submitted, then gathered; tasks/s = 1,000 / run wall time;
- memory: RSS of the server and the worker (each with its children) after the runs.

Each case: a warm-up run, then R repetitions (7; ``--quick``: 3); median and min-max are printed.
Then Ray and Dask run the same shapes (``bench/peers/``) if their venvs exist. Figures are reported
against the targets, never asserted. Raw results go to ``--json`` (default: ``bench/results/``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from types import FrameType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import peers, report
from bench.cases import (
    CACHE_HITS,
    CHAIN,
    DISTINCT_HITS,
    EMPTY,
    FANOUT,
    CaseResult,
    measure,
    time_one_run,
    wait_for_workflows,
)
from bench.procs import MIB, ROOT, PeakRss, Stack
from bench.profiling import Profile, Recording, py_spy
from coflux.client import Client

RESULTS_DIR = ROOT / "bench" / "results"
ALL_CASES = (EMPTY, CHAIN, FANOUT, CACHE_HITS, DISTINCT_HITS)


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="3 repetitions instead of 7")
    parser.add_argument("--repetitions", type=int, default=None, help="override the repetition count")
    parser.add_argument("--json", type=Path, default=None, help="write raw results here")
    parser.add_argument("--concurrency", type=int, default=16, help="the worker's --concurrency (16)")
    parser.add_argument("--run-timeout", type=float, default=120.0, help="seconds allowed per run (120)")
    parser.add_argument("--peer-timeout", type=float, default=600.0, help="seconds allowed per peer (600)")
    parser.add_argument("--no-peers", action="store_true", help="skip Ray and Dask")
    parser.add_argument("--setup-peers", action="store_true", help="create /tmp/venv-ray and /tmp/venv-dask")
    parser.add_argument(
        "--cases",
        type=lambda text: [name.strip() for name in text.split(",") if name.strip()],
        default=None,
        help="only these cases, comma-separated (no peers then): " + ", ".join(c.name for c in ALL_CASES),
    )
    parser.add_argument("--profile", action="store_true", help="py-spy the server, worker and client after")
    parser.add_argument(
        "--experiment",
        choices=["server-nodelay"],
        default=None,
        help="EXPERIMENT: run a patched server (bench/nodelay_server.py); not the shipped code",
    )
    args = parser.parse_args(argv)
    unknown = sorted(set(args.cases or ()) - {c.name for c in ALL_CASES})
    if unknown:
        parser.error(f"unknown case(s): {', '.join(unknown)}")
    return args


def stop_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit so that the ``finally`` blocks stop our subprocesses."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


def measure_coflux(args: argparse.Namespace, repetitions: int, work_dir: Path) -> dict[str, Any]:
    """Start the stack, time the three cases, read memory, optionally profile; always stop the stack."""
    stack = Stack(work_dir, args.concurrency, server_nodelay=args.experiment == "server-nodelay")
    try:
        stack.start()
        print(f"server {stack.url} (pid {stack.server.pid}), worker pid {stack.worker.pid}", flush=True)
        client = Client(url=stack.url, token=stack.token, project="default", workspace="main")
        cases = [c for c in ALL_CASES if args.cases is None or c.name in args.cases]
        wait_for_workflows(client, [c.target for c in cases], timeout=60)
        results: dict[str, CaseResult] = {}
        with PeakRss(stack.processes) as peak:
            for case in cases:
                print(f"{case.name}: warm-up + {repetitions} runs", flush=True)
                results[case.name] = measure(client, case, repetitions, args.run_timeout)
        rss = stack.rss_bytes()
        profiles = profile_stack(stack, client, args.run_timeout) if args.profile else {}
        return {"results": results, "rss": rss, "peak_rss": peak.peak, "profiles": profiles}
    finally:
        stack.stop()


def profile_stack(stack: Stack, client: Client, timeout: float) -> dict[str, str]:
    """py-spy the server, the worker and this process during extra (untimed) runs of each case."""
    executable = py_spy()
    if executable is None:
        print("--profile: py-spy is not installed (.venv/bin/pip install py-spy); skipping")
        return {}
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    reports: dict[str, str] = {}
    for case, runs in ((CHAIN, 10), (FANOUT, 4), (CACHE_HITS, 10)):
        targets = {"server": stack.server.pid, "worker": stack.worker.pid, "client": os.getpid()}
        paths = {name: RESULTS_DIR / f"profile-{stamp}-{case.name}-{name}.txt" for name in targets}
        recordings = [Recording(executable, pid, paths[name]) for name, pid in targets.items()]
        for recording in recordings:
            recording.__enter__()
        try:
            time.sleep(1.0)  # let py-spy attach before the first run
            walls = [time_one_run(client, case, timeout)[0] for _ in range(runs)]
        finally:
            for recording in recordings:
                recording.__exit__(None, None, None)
        median_ms = 1000 * sorted(walls)[len(walls) // 2]
        print(f"\nprofile of {runs} {case.name} runs (median {median_ms:.0f} ms each)")
        for name, path in paths.items():
            text = Profile.read(f"{case.name} / {name}", path).report()
            reports[f"{case.name}/{name}"] = text
            print(text)
    return reports


def coflux_rows(measured: dict[str, Any]) -> tuple[list[report.Row], dict[str, float]]:
    """Our table rows (of the cases measured), and the medians that the peer ratios use."""
    results: dict[str, CaseResult] = measured["results"]
    medians: dict[str, float] = {}
    rows = _timing_rows(results, medians) + _memory_rows(measured, medians)
    return rows, medians


def _timing_rows(results: dict[str, CaseResult], medians: dict[str, float]) -> list[report.Row]:
    """A headline row per case measured (against its target, if it has one), with the server-side
    span under it where the client's polling would blur it; fills ``medians``."""
    rows: list[report.Row] = []
    if CHAIN.name in results:
        chain = results[CHAIN.name].ms_per_item()
        medians["chain_ms"] = chain.median
        target = f"≤ {report.TARGET_CHAIN_MS} ms"
        met = chain.median <= report.TARGET_CHAIN_MS
        rows.append(report.Row("(a) chain: 100 x inc, dependent", "ms/step", chain, target, met))
        rows.append(
            report.Row("    same, server-side span", "ms/step", results[CHAIN.name].ms_per_item(server=True))
        )
    if FANOUT.name in results:
        rate = results[FANOUT.name].items_per_s()
        medians["fanout_per_s"] = rate.median
        target, met = f"≥ {report.TARGET_FANOUT_PER_S:,.0f}/s", rate.median >= report.TARGET_FANOUT_PER_S
        rows.append(report.Row("(b) fan-out: 1,000 x noop", "tasks/s", rate, target, met))
        rows.append(
            report.Row("    same, server-side span", "tasks/s", results[FANOUT.name].items_per_s(server=True))
        )
    if EMPTY.name in results:
        empty = results[EMPTY.name]
        rows.append(report.Row("    empty workflow (fixed cost/run)", "ms/run", empty.ms_per_item()))
        rows.append(report.Row("    empty, server-side span", "ms/run", empty.ms_per_item(server=True)))
    if CACHE_HITS.name in results:
        hits = results[CACHE_HITS.name].ms_per_item()
        medians["cache_hit_ms"] = hits.median
        target, met = f"≤ {report.TARGET_CACHE_HIT_MS} ms", hits.median <= report.TARGET_CACHE_HIT_MS
        rows.append(report.Row("(d) cache hit, seen by the worker", "ms/hit", hits, target, met))
    if DISTINCT_HITS.name in results:  # no call repeats in the run: a round trip each
        distinct = results[DISTINCT_HITS.name].ms_per_item()
        rows.append(report.Row("    100 different hits (round trips)", "ms/hit", distinct))
    return rows


def _memory_rows(measured: dict[str, Any], medians: dict[str, float]) -> list[report.Row]:
    """Resident memory of the server and the worker after the runs, and its peak while they ran."""
    rss_mb = sum(measured["rss"].values()) / MIB
    medians["rss_mb"] = rss_mb
    parts = " + ".join(f"{name.split()[-1]} {value / MIB:.0f}" for name, value in measured["rss"].items())
    target, met = f"≤ {report.TARGET_RSS_MB:.0f} MB", rss_mb <= report.TARGET_RSS_MB
    peak = report.Spread(*[measured["peak_rss"] / MIB] * 3)
    return [
        report.Row(f"(c) memory: {parts}", "MB RSS", report.Spread(rss_mb, rss_mb, rss_mb), target, met),
        report.Row("    peak while running (100 ms samples)", "MB RSS", peak),
    ]


def compare_peers(args: argparse.Namespace, repetitions: int) -> list[peers.PeerFigures]:
    if args.setup_peers:
        peers.setup_venvs()
    if args.no_peers or args.cases is not None:
        return []
    present = [name for name in peers.VENVS if peers.python_of(name).exists()]
    missing = [str(path) for name, path in peers.VENVS.items() if name not in present]
    measured = peers.measure_peers(repetitions, args.peer_timeout) if present else []
    if missing:
        print(f"peer venvs missing: {', '.join(missing)} (use --setup-peers); showing reference figures")
    # Reference rows (never measured here) for whatever was not measured now; Prefect is always one.
    measured_systems = {figure.system for figure in measured if figure.measured}
    return measured + [f for f in peers.reference_figures() if f.system not in measured_systems]


def print_summary(
    rows: list[report.Row], medians: dict[str, float], peer_figures: list[peers.PeerFigures], header: str
) -> None:
    print("\n" + "=" * 100)
    print(header)
    print(report.ours_table(rows))
    print("Headline figures are client wall time (start_run → Run.result() returned) and include result")
    print("polling; 'server-side span' is the run's created_at → root completed_at on the server's clock.")
    print("Targets: chain ≤ 1.0 ms/step, fan-out ≥ 2,000 tasks/s, server + one worker ≤ 200 MB RSS.")
    if peer_figures and "chain_ms" in medians and "fanout_per_s" in medians:
        print("\nPeers (same shapes)")
        print(report.peers_table(medians, peer_figures))
        print(report.PEER_FOOTNOTES)
        if any(not figure.measured for figure in peer_figures):
            print(report.REFERENCE_NOTE)
    print("=" * 100)


def source_state() -> dict[str, Any]:
    """The commit measured, and the files that differ from it (the tree may carry uncommitted work)."""
    commands = {
        "commit": ["git", "rev-parse", "HEAD"],
        "dirty": ["git", "status", "--short"],
        "diff": ["git", "diff", "HEAD", "--", "coflux", "jupyter_ext"],
    }
    state: dict[str, Any] = {}
    for key, command in commands.items():
        try:
            done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=10, check=False)
        except (OSError, subprocess.SubprocessError):
            continue
        if key == "diff":  # a fingerprint of uncommitted changes, to tell runs of the same commit apart
            state["diff_sha256"] = hashlib.sha256(done.stdout.encode()).hexdigest()[:16]
        else:
            state[key] = done.stdout.strip() if key == "commit" else done.stdout.splitlines()
    return state


def write_json(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=1, default=str))
    print(f"raw results: {path}")


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    stop_on_sigterm()
    repetitions = args.repetitions or (3 if args.quick else 7)
    started = time.strftime("%Y-%m-%dT%H:%M:%S")
    source = source_state()  # before the server starts: the code it imports
    with tempfile.TemporaryDirectory(prefix="coflux-bench-") as folder:
        measured = measure_coflux(args, repetitions, Path(folder))
    rows, medians = coflux_rows(measured)
    peer_figures = compare_peers(args, repetitions)
    header = (
        f"Coflux for Jupyter, {started}: server + 1 worker (--concurrency {args.concurrency}), client in "
        f"this process; {repetitions} repetitions after 1 warm-up; {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}"
    )
    if args.experiment:
        header += f"\n*** EXPERIMENT {args.experiment}: a patched server, NOT the shipped code ***"
    print_summary(rows, medians, peer_figures, header)
    payload = {
        "started": started,
        "source": source,
        "experiment": args.experiment,
        "repetitions": repetitions,
        "concurrency": args.concurrency,
        "coflux": {name: result.to_json() for name, result in measured["results"].items()},
        "rss_bytes": measured["rss"],
        "peak_rss_bytes": measured["peak_rss"],
        "medians": medians,
        "rows": [asdict(row) for row in rows],
        "peers": [asdict(figure) for figure in peer_figures],
        "profiles": measured["profiles"],
    }
    write_json(args.json or RESULTS_DIR / f"run-{time.strftime('%Y%m%d-%H%M%S')}.json", payload)
    return 0


if __name__ == "__main__":
    sys.exit(main())
