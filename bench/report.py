"""The printed tables: our figures against the targets, and the peers with ratios of medians."""

from __future__ import annotations

import math
from dataclasses import dataclass

from bench.cases import Spread
from bench.peers import NOTES, PeerFigures

TARGET_CHAIN_MS = 1.0
TARGET_CACHE_HIT_MS = 0.5
TARGET_FANOUT_PER_S = 2000.0
TARGET_RSS_MB = 200.0


@dataclass(frozen=True)
class Row:
    label: str
    unit: str
    spread: Spread
    target: str = ""
    met: bool | None = None


def number(value: float) -> str:
    """Three significant figures or so, with thousands separators; ``-`` for NaN."""
    if math.isnan(value):
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def spread_text(spread: Spread) -> str:
    if math.isnan(spread.low) or math.isnan(spread.high):
        return "-"
    return f"{number(spread.low)}-{number(spread.high)}"


def status(met: bool | None) -> str:
    return "" if met is None else ("met" if met else "NOT met")


def render_table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(headers[i]), *(len(row[i]) for row in rows)) for i in range(len(headers))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    return "\n".join(lines)


def ours_table(rows: list[Row]) -> str:
    headers = ["case", "unit", "median", "min-max", "target", "status"]
    body = [
        [row.label, row.unit, number(row.spread.median), spread_text(row.spread), row.target, status(row.met)]
        for row in rows
    ]
    return render_table(headers, body)


def speed_ratio(ours_faster_by: float) -> str:
    """``2.1x faster`` / ``3.0x slower`` from a ratio where > 1 means ours is faster."""
    if math.isnan(ours_faster_by) or ours_faster_by <= 0:
        return "-"
    if ours_faster_by >= 1:
        return f"{ours_faster_by:.2f}x faster"
    return f"{1 / ours_faster_by:.2f}x slower"


def peers_table(chain_ms: float, fanout_per_s: float, rss_mb: float, peers: list[PeerFigures]) -> str:
    """Peer figures (median and min-max) and ratios of medians: ours against theirs."""
    headers = ["system", "source", "chain ms/step", "(graph chain)", "fan-out tasks/s", "RSS MB"]
    headers += ["ours vs: chain", "fan-out", "memory"]
    body = []
    nan = float("nan")
    for peer in peers:
        chain = Spread(*peer.chain_roundtrip_ms) if peer.chain_roundtrip_ms else Spread(nan, nan, nan)
        graph = Spread(*peer.chain_graph_ms) if peer.chain_graph_ms else Spread(nan, nan, nan)
        rate = Spread(*peer.fanout_tasks_per_s) if peer.fanout_tasks_per_s else Spread(nan, nan, nan)
        peak = peer.peak_rss_mb if peer.peak_rss_mb is not None else nan
        memory = f"{rss_mb / peak:.2f}x theirs" if peak == peak and peak > 0 else "-"
        body.append(
            [
                peer.system,
                "measured now" if peer.measured else "REFERENCE",
                f"{number(chain.median)} ({spread_text(chain)})",
                f"{number(graph.median)} ({spread_text(graph)})",
                f"{number(rate.median)} ({spread_text(rate)})",
                number(peak),
                speed_ratio(chain.median / chain_ms),
                speed_ratio(fanout_per_s / rate.median),
                memory,
            ]
        )
    return render_table(headers, body)


PEER_FOOTNOTES = (
    "chain ms/step: the peer blocks on each step's result (Ray `ray.get(inc.remote(x))`, Dask\n"
    "  `client.submit(inc, x).result()`), as our workflow does; '(graph chain)' lets the peer's scheduler\n"
    "  resolve the dependencies without a round-trip per step (shown for context, not used in ratios).\n"
    "fan-out: N=1,000 trivial tasks submitted then gathered. Peers are not durable; we commit every task.\n"
    "RSS: ours is server + one worker (with children) after the runs; peers' is the peak of their whole\n"
    "  process tree (driver included) sampled every 50 ms. Ratios are ratios of medians."
)

REFERENCE_NOTE = (
    f"REFERENCE rows are NOT measured in this run: they are copied from {NOTES} (2026-11-26,\n"
    "  same machine class); their RSS is the peak of a cold 200-task script (Prefect: client + server)."
)
