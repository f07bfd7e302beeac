"""What the peer scripts share: their arguments, a watchdog, repetitions and the peak memory of the
process tree, and one JSON line per measurement on stdout. Standard library only (psutil if the
peer's venv has it): each script runs in the peer's own venv, not ours.

A line: ``{"system", "scenario", "n", "runs": [seconds per repetition], ...extra}``. ``n`` is the
number of items one repetition does (steps, tasks, hits); ``bench/peers/__init__.py`` turns the runs
into medians and spreads.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any


def arguments(description: str, extra: Callable[[argparse.ArgumentParser], None] | None = None) -> Any:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--repetitions", type=int, default=7)
    parser.add_argument("--fanout", type=int, default=1000, help="tasks in the fan-out")
    parser.add_argument("--chain", type=int, default=100, help="dependent steps in the chain")
    parser.add_argument("--hits", type=int, default=100, help="repeated calls in the cache case")
    parser.add_argument("--timeout", type=int, default=600, help="seconds before the watchdog fires")
    if extra is not None:
        extra(parser)
    return parser.parse_args()


def watchdog(seconds: int) -> None:
    """Kill this process group after ``seconds``, whatever the peer's own threads are doing. The
    caller starts us in a session of our own, so the group is ours alone."""

    def fire(signum: int, frame: object) -> None:
        sys.stderr.write(f"watchdog: {seconds} s elapsed, stopping\n")
        os.killpg(os.getpgrp(), signal.SIGKILL)

    signal.signal(signal.SIGALRM, fire)
    signal.alarm(seconds)


def report(system: str, scenario: str, n: int, runs: list[float], **extra: Any) -> None:
    line = {"system": system, "scenario": scenario, "n": n, "runs": [round(r, 6) for r in runs], **extra}
    print(json.dumps(line), flush=True)


def repeat(repetitions: int, once: Callable[[], object], expected: object) -> list[float]:
    """Wall seconds of each of ``repetitions`` calls of ``once``, each checked against ``expected``."""
    runs = []
    for _ in range(repetitions):
        started = time.perf_counter()
        got = once()
        runs.append(time.perf_counter() - started)
        if got != expected:
            raise AssertionError(f"expected {expected!r}, got {got!r}")
    return runs


class PeakTreeRss:
    """The largest sum of RSS over this process and its descendants, sampled every 50 ms on a
    daemon thread (None without psutil): what the machine pays for the peer, driver included."""

    def __init__(self) -> None:
        self.peak_bytes: int | None = None
        self._stop = threading.Event()
        try:
            import psutil
        except ImportError:
            return
        self.peak_bytes = 0
        threading.Thread(target=self._sample, args=(psutil.Process(),), daemon=True).start()

    def _sample(self, me: Any) -> None:
        while not self._stop.is_set():
            total = 0
            for process in [me, *me.children(recursive=True)]:
                try:
                    total += process.memory_info().rss
                except Exception:  # gone meanwhile
                    continue
            self.peak_bytes = max(self.peak_bytes or 0, total)
            self._stop.wait(0.05)

    def stop(self) -> float | None:
        self._stop.set()
        return None if self.peak_bytes is None else round(self.peak_bytes / 2**20, 1)
