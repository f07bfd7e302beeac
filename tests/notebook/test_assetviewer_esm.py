"""The AssetViewer's view and the RunTree's assets section, rendered in node (over the minimal DOM
of dom.mjs) from the state the kernel sends: a preview per kind, download links (straight to the
REST API when the page is served by the kernel's server, else through the kernel), and the
messages the buttons send."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from coflux.notebook import filepreview
from tests.support.views import NODE, render_in_node

pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed")
ASSET_ID = "A" + "0123456789abcdef01234567"


def _png() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 6), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def _parquet() -> bytes:
    import pandas as pd

    buffer = io.BytesIO()
    pd.DataFrame({"day": [1, 2, 3], "temp": [9.5, 11.0, 12.25]}).to_parquet(buffer, index=False)
    return buffer.getvalue()


FILES: dict[str, tuple[str, bytes]] = {
    "plots/plot one.png": ("image/png", b""),
    "temperatures.csv": ("text/csv", b"day,temp\n1,9.5\n2,11\n"),
    "notes.md": ("text/markdown", b"# Notes\n\n<script>alert(1)</script>"),
    "summary.json": ("application/json", b'{"days": 2}'),
    "frame.parquet": ("application/vnd.apache.parquet", b""),
    "model.bin": ("application/octet-stream", b"\x00\x01"),
    "later.txt": ("text/plain", b"not previewed yet"),
}


def _state(api_url: str = "http://127.0.0.1:8888/coflux") -> dict[str, Any]:
    """What ``assetviewer.load`` sends for an asset of FILES (the last one not previewed yet)."""
    files = {
        **FILES,
        "plots/plot one.png": ("image/png", _png()),
        "frame.parquet": (FILES["frame.parquet"][0], _parquet()),
    }
    entries = [{"path": p, "size": len(data), "media_type": m} for p, (m, data) in files.items()]
    previews = {p: filepreview.preview(p, m, data) for p, (m, data) in list(files.items())[:-1]}
    previews["model.bin"] = filepreview.without_bytes("model.bin", "application/octet-stream", 2)
    return {
        "asset": {
            "asset_id": ASSET_ID,
            "name": "report",
            "execution_id": "R1:1:1",
            "created_at": 0,
            "entries": entries,
            "previews": previews,
            "files": f"coflux/api/projects/default/assets/{ASSET_ID}/files/",
            "api_url": api_url,
        },
        "error": "",
        "notice": "",
    }


def _page(base_url: str, href: str) -> str:
    return (
        "globalThis.document.body = document.createElement('body');\n"
        f"document.body.setAttribute('data-base-url', {json.dumps(base_url)});\n"
        f"globalThis.location = {{ href: {json.dumps(href)} }};\n"
    )


RENDER = """
const { model, el, cleanup } = await dom.render(viewPath, state);
const entries = el.querySelectorAll(".coflux-asset-entry");
const byPath = Object.fromEntries(entries.map((e) => [e.getAttribute("data-path"), e]));
const link = (path) => byPath[path].querySelector(".coflux-asset-download");
const out = {
  head: el.querySelector(".coflux-asset-head").textContent,
  kinds: Object.fromEntries(entries.map((e) => [e.getAttribute("data-path"), e.getAttribute("data-kind")])),
  image: byPath["plots/plot one.png"].querySelector("img").getAttribute("src").slice(0, 22),
  csv: byPath["temperatures.csv"].querySelectorAll("th").map((c) => c.textContent),
  csvRows: byPath["temperatures.csv"].querySelectorAll("td").map((c) => c.textContent),
  caption: byPath["temperatures.csv"].querySelector("caption").textContent,
  parquetHead: byPath["frame.parquet"].querySelectorAll("th")
    .map((c) => [c.textContent, c.getAttribute("title")]),
  markdown: byPath["notes.md"].querySelector(".coflux-preview-markdown").innerHTML,
  scripts: el.querySelectorAll("script").length,
  json: byPath["summary.json"].querySelector("pre").textContent,
  binary: byPath["model.bin"].querySelector(".coflux-preview-message").textContent,
  via: link("plots/plot one.png").getAttribute("data-via"),
  href: link("plots/plot one.png").getAttribute("href"),
  download: link("plots/plot one.png").getAttribute("download"),
};
byPath["later.txt"].querySelector("button.coflux-asset-show").click();
link("temperatures.csv").click();
out.sent = model.sent;
model.set("error", "asset_download: the server refused");
out.error = el.querySelector(".coflux-error").textContent;
cleanup();
return out;
"""


def test_the_viewer_shows_a_preview_per_kind_and_asks_for_the_rest(tmp_path: Path) -> None:
    out = render_in_node(tmp_path, RENDER, _state(), "assetviewer.js")

    assert out["head"].startswith(f"report{ASSET_ID}7 files") and out["head"].endswith("persisted by R1:1:1")
    assert out["kinds"] == {
        "plots/plot one.png": "image",
        "temperatures.csv": "table",
        "notes.md": "markdown",
        "summary.json": "json",
        "frame.parquet": "table",
        "model.bin": "none",
        "later.txt": "pending",
    }
    assert out["image"] == "data:image/png;base64,"
    assert out["csv"] == ["day", "temp"] and out["csvRows"] == ["1", "9.5", "2", "11"]
    assert out["caption"] == "2 rows \N{MULTIPLICATION SIGN} 2 columns"
    assert out["parquetHead"] == [["day", "int64"], ["temp", "double"]]
    assert "<h1>Notes</h1>" in out["markdown"] and "&lt;script&gt;" in out["markdown"]
    assert out["scripts"] == 0
    assert out["json"] == '{\n  "days": 2\n}'
    assert "no preview for application/octet-stream" in out["binary"]
    # Outside a Jupyter page nothing tells the view where the REST API is: the kernel sends the file.
    assert out["via"] == "kernel" and out["href"] == "#"
    assert out["sent"] == [
        {"action": "asset_preview", "asset_id": ASSET_ID, "path": "later.txt"},
        {"action": "asset_download", "asset_id": ASSET_ID, "path": "temperatures.csv"},
    ]
    assert out["error"] == "asset_download: the server refused"


def test_in_a_page_of_the_kernels_server_a_download_is_a_link_to_the_rest_api(tmp_path: Path) -> None:
    page = _page("/jupyter/", "http://localhost:8888/jupyter/lab/tree/assets.ipynb")
    state = _state(api_url="http://127.0.0.1:8888/jupyter/coflux")
    out = render_in_node(tmp_path, RENDER, state, "assetviewer.js", page)

    assert out["via"] == "link"
    assert out["href"] == (
        f"http://localhost:8888/jupyter/coflux/api/projects/default/assets/{ASSET_ID}/files/plots/plot%20one.png"
    )
    assert out["download"] == "plot one.png"
    assert out["sent"][1:] == []  # the link itself downloads: nothing for the kernel


@pytest.mark.parametrize(
    ("base_url", "href"),
    [
        ("/", "http://127.0.0.1:9999/lab"),  # another server (port)
        ("/other/", "http://127.0.0.1:8888/other/lab"),  # another base URL
        ("/", "http://example.org:8888/lab"),  # another host
    ],
)
def test_a_page_of_another_server_downloads_through_the_kernel(
    tmp_path: Path, base_url: str, href: str
) -> None:
    out = render_in_node(tmp_path, RENDER, _state(), "assetviewer.js", _page(base_url, href))
    assert out["via"] == "kernel"
    assert out["sent"][1] == {"action": "asset_download", "asset_id": ASSET_ID, "path": "temperatures.csv"}


def test_a_file_the_kernel_sends_is_saved_under_its_name(tmp_path: Path) -> None:
    page = (
        "globalThis.document.body = document.createElement('body');\n"
        "const made = [];\n"
        "const create = document.createElement;\n"
        "document.createElement = (tag) => { const node = create(tag); made.push(node); return node; };\n"
        "globalThis.setTimeout = () => 0;  // the Blob URL's revocation, a minute later\n"
    )
    script = """
const { resolveObjectURL } = await import("node:buffer");
const { model, cleanup } = await dom.render(viewPath, state);
const before = made.length;
const bytes = new TextEncoder().encode("day,temp\\n1,9.5\\n");
for (const handler of model.handlers["msg:custom"] || []) {
  const content = { download: "data/t.csv", asset_id: state.asset.asset_id, media_type: "text/csv" };
  handler(content, [new DataView(bytes.buffer)]);
}
const link = made.slice(before).find((n) => n.tagName === "A");
const blob = resolveObjectURL(link.getAttribute("href"));
cleanup();
return {
  download: link.getAttribute("download"),
  href: link.getAttribute("href").slice(0, 5),
  type: blob.type,
  text: await blob.text(),
};
"""
    out = render_in_node(tmp_path, script, _state(), "assetviewer.js", page)
    assert out["download"] == "t.csv" and out["href"] == "blob:"
    assert out["type"] == "text/csv" and out["text"] == "day,temp\n1,9.5\n"
