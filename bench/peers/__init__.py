"""Peer orchestrators measured in the same invocation: Ray and Dask distributed, running the
benchmark's shapes with the scripts beside this module (``ray_shapes.py``, ``dask_shapes.py``; each
prints one JSON object per measurement on stdout, see ``_measure.py``).

Each script runs in its own session, so its SIGALRM watchdog (which kills its whole process group)
can never reach us, and under our own timeout; whatever it leaves behind in its group is killed.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.cases import CACHE_HITS_N, CHAIN_STEPS, FANOUT_TASKS

PEERS_DIR = Path(__file__).resolve().parent
REFERENCE = "bench/README.md, 'Reference figures' (2026-11-26, the 2-vCPU development machine)"
VENVS = {"ray": Path("/tmp/venv-ray"), "dask": Path("/tmp/venv-dask")}
PACKAGES = {"ray": ["ray", "psutil"], "dask": ["dask[distributed]", "psutil"]}
NAN = float("nan")  # the notes give no spread for this figure
RAY_ENV = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}


@dataclass
class PeerFigures:
    """One peer's figures. ``measured`` is False for the reference figures from the notes."""

    system: str
    measured: bool
    chain_roundtrip_ms: tuple[float, float, float] | None = None
    chain_graph_ms: tuple[float, float, float] | None = None
    fanout_tasks_per_s: tuple[float, float, float] | None = None
    cache_hit_ms: tuple[float, float, float] | None = None
    peak_rss_mb: float | None = None
    note: str = ""
    raw: list[dict[str, Any]] = field(default_factory=list)


def python_of(venv: str) -> Path:
    return VENVS[venv] / "bin" / "python"


def setup_venvs(timeout: float = 900.0) -> None:
    """Create the missing peer venvs (``python3 -m venv`` + ``pip install``), each under a timeout."""
    for name, path in VENVS.items():
        if python_of(name).exists():
            print(f"{path} exists; not recreating it")
            continue
        print(f"creating {path} (pip install {' '.join(PACKAGES[name])}) ...", flush=True)
        started = time.monotonic()
        try:
            subprocess.run(["python3", "-m", "venv", str(path)], check=True, timeout=120)
            remaining = max(60.0, timeout - (time.monotonic() - started))
            pip = [str(path / "bin" / "pip"), "install", "-q", *PACKAGES[name]]
            subprocess.run(pip, check=True, timeout=remaining)
        except (subprocess.SubprocessError, OSError) as err:
            print(f"  failed: {err}")
            continue
        print(f"  done in {time.monotonic() - started:.0f} s")


def run_script(command: list[str], env: dict[str, str], timeout: float) -> list[dict[str, Any]]:
    """Run a peer script in its own session; its JSON lines, or [] if it failed or timed out."""
    with subprocess.Popen(
        command,
        cwd="/tmp",
        env={**os.environ, **env},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    ) as process:
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            print(f"  timed out after {timeout:.0f} s")
            out, err = b"", b""
        finally:
            _kill_group(process.pid)
            process.wait(10)
    if process.returncode != 0:
        tail = err.decode(errors="replace").strip().splitlines()[-3:]
        print(f"  exit status {process.returncode}: {' | '.join(tail)}")
    records = []
    for line in out.decode(errors="replace").splitlines():
        if line.startswith("{"):
            records.append(json.loads(line))
    return records


def _kill_group(pgid: int) -> None:
    """SIGKILL what is left in the process group we created for a peer script (its id is its pid)."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        return


def _runs(records: list[dict[str, Any]], scenario: str) -> tuple[int, list[float]] | None:
    for record in records:
        if record.get("scenario") == scenario and record.get("runs"):
            return int(record["n"]), [float(run) for run in record["runs"]]
    return None


def _per_item(records: list[dict[str, Any]], scenario: str) -> tuple[float, float, float] | None:
    """Median, min and max of ms per item (step, hit) over the repetitions."""
    found = _runs(records, scenario)
    if found is None:
        return None
    n, runs = found
    return (1000 * statistics.median(runs) / n, 1000 * min(runs) / n, 1000 * max(runs) / n)


def _rate(records: list[dict[str, Any]], scenario: str) -> tuple[float, float, float] | None:
    """Median, min and max of items per second over the repetitions."""
    found = _runs(records, scenario)
    if found is None:
        return None
    n, runs = found
    return (n / statistics.median(runs), n / max(runs), n / min(runs))


def _peak(records: list[dict[str, Any]]) -> float | None:
    for record in records:
        if record.get("scenario") == "peak_rss":
            value = record.get("peak_tree_rss_mb")
            return float(value) if value is not None else None
    return None


def measure_peers(repetitions: int, timeout: float) -> list[PeerFigures]:
    """Ray and Dask (threads, processes), one after the other, at our chain length, fan-out size and
    number of cache hits."""
    sizes = ["--repetitions", str(repetitions), "--fanout", str(FANOUT_TASKS), "--chain", str(CHAIN_STEPS)]
    sizes += ["--hits", str(CACHE_HITS_N), "--timeout", str(int(timeout))]
    plans: list[tuple[str, str, list[str], dict[str, str]]] = []
    if python_of("ray").exists():
        plans.append(("ray", "ray", ["ray_shapes.py"], RAY_ENV))
    if python_of("dask").exists():
        for processes in ("0", "1"):
            label = "dask-processes" if processes == "1" else "dask-threads"
            plans.append((label, "dask", ["dask_shapes.py", "--processes", processes], {}))
    figures = []
    for label, venv, script, env in plans:
        print(f"peer {label}: running {' '.join(script)} ...", flush=True)
        command = [str(python_of(venv)), str(PEERS_DIR / script[0]), *script[1:], *sizes]
        records = run_script(command, env, timeout + 30)
        figures.append(
            PeerFigures(
                system=label,
                measured=bool(records),
                chain_roundtrip_ms=_per_item(records, "chain"),
                chain_graph_ms=_per_item(records, "chain_graph"),
                fanout_tasks_per_s=_rate(records, "fanout"),
                cache_hit_ms=_per_item(records, "cache_hits"),
                peak_rss_mb=_peak(records),
                note="peak RSS: whole process tree incl. driver, sampled every 50 ms",
                raw=records,
            )
        )
    return figures


def reference_figures() -> list[PeerFigures]:
    """The figures stated in bench/README.md ("Reference figures"): NOT measured in this run."""
    note = f"reference only, from {REFERENCE}; not measured in this run"
    return [
        PeerFigures(
            "ray", False, (1.23, 1.17, 1.33), (1.08, 0.99, 1.27), (1785, 1416, 2740), None, 785, note
        ),
        PeerFigures(
            "dask-threads", False, (10.7, 10.6, 11.8), (5.86, 5.75, 6.01), (479, 469, 505), None, 99, note
        ),
        PeerFigures(
            "dask-processes", False, (10.9, NAN, NAN), (5.87, NAN, NAN), (543, 500, 592), None, 226, note
        ),
        PeerFigures(
            "prefect (in-flow)",
            False,
            (2.97, 2.45, 3.06),
            (7.52, 5.94, 9.89),
            (259, 248, 262),
            (3.23, 2.79, 4.69),
            485,
            note,
        ),
    ]
