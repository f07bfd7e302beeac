"""The printed tables: our figures against the targets, and the peers with ratios of medians."""

from __future__ import annotations

import math
from dataclasses import dataclass

from bench.cases import Spread
from bench.peers import REFERENCE, PeerFigures

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


def _with_spread(spread: Spread) -> str:
    return "-" if math.isnan(spread.median) else f"{number(spread.median)} ({spread_text(spread)})"


def _spread(figures: tuple[float, float, float] | None) -> Spread:
    nan = float("nan")
    return Spread(*figures) if figures else Spread(nan, nan, nan)


def peers_table(medians: dict[str, float], peers: list[PeerFigures]) -> str:
    """Peer figures (median and min-max) and ratios of medians: ours against theirs. ``medians``
    holds ours: ``chain_ms``, ``fanout_per_s``, ``rss_mb`` and, if measured, ``cache_hit_ms``."""
    chain_ms, fanout_per_s, rss_mb = medians["chain_ms"], medians["fanout_per_s"], medians["rss_mb"]
    hit_ms = medians.get("cache_hit_ms", float("nan"))
    headers = ["system", "source", "chain ms/step", "(graph chain)", "fan-out tasks/s", "cache ms/hit"]
    headers += ["RSS MB", "ours vs: chain", "fan-out", "cache", "memory"]
    body = []
    nan = float("nan")
    for peer in peers:
        chain, graph = _spread(peer.chain_roundtrip_ms), _spread(peer.chain_graph_ms)
        rate, hits = _spread(peer.fanout_tasks_per_s), _spread(peer.cache_hit_ms)
        peak = peer.peak_rss_mb if peer.peak_rss_mb is not None else nan
        memory = f"{rss_mb / peak:.2f}x theirs" if peak == peak and peak > 0 else "-"
        body.append(
            [
                peer.system,
                "measured now" if peer.measured else "REFERENCE",
                _with_spread(chain),
                _with_spread(graph),
                _with_spread(rate),
                _with_spread(hits),
                number(peak),
                speed_ratio(chain.median / chain_ms),
                speed_ratio(fanout_per_s / rate.median),
                speed_ratio(hits.median / hit_ms),
                memory,
            ]
        )
    return render_table(headers, body)


PEER_FOOTNOTES = (
    "chain ms/step: the peer blocks on each step's result (Ray `ray.get(inc.remote(x))`, Dask\n"
    "  `client.submit(inc, x).result()`), as our workflow does; '(graph chain)' lets the peer's scheduler\n"
    "  resolve the dependencies without a round-trip per step (shown for context, not used in ratios).\n"
    "fan-out: N=1,000 trivial tasks submitted then gathered. Peers are not durable; we commit every task.\n"
    "cache: 100 identical calls in a row. Dask reuses a result it still holds in memory (`pure=True`),\n"
    "  Prefect persists one (`cache_policy=INPUTS`); Ray has no such thing. Ours is durable.\n"
    "RSS: ours is server + one worker (with children) after the runs; peers' is the peak of their whole\n"
    "  process tree (driver included) sampled every 50 ms. Ratios are ratios of medians."
)

REFERENCE_NOTE = (
    "REFERENCE rows are NOT measured in this run: they are stated in\n"
    f"  {REFERENCE};\n"
    "  their RSS is the peak of a cold 200-task script (Prefect: client + server)."
)
