"""Targets for the AssetViewer tests (run by a real `coflux worker`): an asset with a file of each
kind the viewer previews, and one too large to preview."""

import io
import json
from pathlib import Path

import coflux as cf

MARKDOWN = "# Notes\n\n*measured* daily <script>alert('x')</script>\n"


def _png() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (30, 90, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


def _write(rows: int) -> None:
    import pandas as pd

    frame = pd.DataFrame({"day": list(range(1, rows + 1)), "temp": [10.0 + i / 2 for i in range(rows)]})
    Path("plots").mkdir()
    Path("plots/plot.png").write_bytes(_png())
    frame.to_csv("table.csv", index=False)
    frame.to_parquet("table.parquet", index=False)
    Path("notes.md").write_text(MARKDOWN)
    Path("summary.json").write_text(json.dumps({"rows": rows, "mean": float(frame["temp"].mean())}))
    Path("readme.txt").write_text("plain text\n")
    Path("weights.bin").write_bytes(bytes(range(256)))
    Path("big.txt").write_bytes(b"x" * (3 * 1024 * 1024))


@cf.task()
def persist(rows: int) -> cf.Asset:
    _write(rows)
    return cf.asset(name="samples")


@cf.workflow()
def samples(rows: int) -> cf.Asset:
    return persist(rows)
