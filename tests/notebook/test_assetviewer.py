"""AssetViewer and the RunTree's assets against a real server and a real worker that persists an
asset with a file of each kind (module asset_files): the previews the kernel sends, the download
link and the download through the kernel. Built in-process (no kernel: custom messages are
delivered as the comm would, and what the widget sends the view is recorded)."""

from __future__ import annotations

import base64
import io
import json
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from coflux.assets import Asset
from coflux.client import Client
from coflux.errors import BadRequest, NotFound
from coflux.notebook import live
from coflux.notebook.assetviewer import AssetViewer
from coflux.notebook.filepreview import MAX_BYTES, TABLE_ROWS
from coflux.notebook.widgets import RunTree
from tests.support.harness import Server, Worker, start_run, wait_for_run
from tests.support.notebook import FakeSession
from tests.support.views import NODE, render_in_node

pytestmark = pytest.mark.e2e

Frontend = Callable[[Any, dict[str, Any]], None]
ROWS = 25
MARKDOWN_SCRIPT = "<script>"


class RecordingViewer(AssetViewer):
    """An AssetViewer whose messages to the view are kept (there is no comm in-process)."""

    def __init__(self, asset: Any, *, client: Client | None = None) -> None:
        self.sent: list[tuple[Any, list[bytes] | None]] = []
        super().__init__(asset, client=client)

    def send(self, content: Any, buffers: list[bytes] | None = None) -> None:
        self.sent.append((content, buffers))


@pytest.fixture(scope="module")
def samples(server: Server) -> Iterator[str]:
    """The id of a run of ``asset_files:samples``, succeeded, by its own worker."""
    worker = Worker(server, "asset_files").start()
    try:
        run_id = start_run(server, "asset_files:samples", ROWS)
        data = wait_for_run(server, run_id, timeout=90)
        assert data["status"] == "succeeded", data
        yield run_id
    finally:
        worker.stop()


@pytest.fixture
def asset(server: Server, samples: str) -> Asset:
    found = Client(server.url, server.token).get_run(samples).result(timeout=30)
    assert isinstance(found, Asset)
    return found


def test_the_viewer_shows_each_file_with_a_preview_of_its_kind(asset: Asset, session: FakeSession) -> None:
    viewer = AssetViewer(asset, client=session.client())
    shown = viewer.asset
    assert shown["asset_id"] == asset.id and shown["name"] == "samples"
    entries = {e["path"]: e for e in shown["entries"]}
    assert set(entries) == {
        "plots/plot.png",
        "table.csv",
        "table.parquet",
        "notes.md",
        "summary.json",
        "readme.txt",
        "weights.bin",
        "big.txt",
    }
    assert entries["plots/plot.png"]["media_type"] == "image/png"
    assert entries["weights.bin"]["size"] == 256
    kinds = {path: p["kind"] for path, p in shown["previews"].items()}
    assert kinds == {
        "plots/plot.png": "image",
        "table.csv": "table",
        "table.parquet": "table",
        "notes.md": "markdown",
        "summary.json": "json",
        "readme.txt": "text",
        "weights.bin": "none",
        "big.txt": "too_large",
    }
    previews = shown["previews"]
    from PIL import Image

    image = Image.open(io.BytesIO(base64.b64decode(previews["plots/plot.png"]["b64"])))
    assert image.size == (40, 30)
    csv_table = previews["table.csv"]
    assert csv_table["columns"] == ["day", "temp"] and csv_table["shape"] == [ROWS, 2]
    assert csv_table["rows"][0] == ["1", "10.0"] and len(csv_table["rows"]) == TABLE_ROWS
    parquet = previews["table.parquet"]
    assert parquet["columns"] == ["day", "temp"] and parquet["shape"] == [ROWS, 2]
    assert parquet["rows"][1] == [2, 10.5] and parquet["dtypes"] == {"day": "int64", "temp": "double"}
    markdown = previews["notes.md"]["html"]
    assert "<h1>Notes</h1>" in markdown and "<em>measured</em>" in markdown
    assert MARKDOWN_SCRIPT not in markdown and "&lt;script&gt;" in markdown
    assert json.loads(previews["summary.json"]["text"]) == {"rows": ROWS, "mean": 16.0}
    assert previews["readme.txt"]["text"] == "plain text\n"
    assert entries["big.txt"]["size"] > MAX_BYTES and "too large to preview" in previews["big.txt"]["message"]
    assert "samples" in viewer.text() and "plots/plot.png" in viewer.text()
    viewer.close()


def test_the_viewer_takes_an_asset_id_and_says_what_is_wrong_with_others(
    server: Server, asset: Asset, session: FakeSession
) -> None:
    viewer = AssetViewer(asset.id, client=session.client())
    assert len(viewer.asset["entries"]) == len(asset)
    viewer.close()
    # A cf.Asset read by a client is viewed through that client (here: no kernel session at all).
    elsewhere = Client(server.url, server.token, "default").asset(asset.id)
    viewer = AssetViewer(elsewhere)
    assert viewer.asset["api_url"] == server.url and len(viewer.asset["previews"]) == len(asset)
    viewer.close()
    with pytest.raises(BadRequest, match="not an asset id"):
        AssetViewer("../etc/passwd", client=session.client())
    with pytest.raises(NotFound):
        AssetViewer("A" + "0" * 24, client=session.client())


def test_a_download_link_fetches_the_file_and_the_kernel_can_send_it_too(
    server: Server, asset: Asset, session: FakeSession, frontend: Frontend, tmp_path: Path
) -> None:
    viewer = RecordingViewer(asset, client=session.client())
    expected = asset["table.csv"].restore(at=tmp_path).read_bytes()

    # The link the view builds under the Jupyter base URL (here the server's root) serves the file.
    root = server.url.removesuffix("coflux")
    link = root + viewer.asset["files"] + urllib.parse.quote("table.csv")
    assert viewer.asset["api_url"] == server.url
    request = urllib.request.Request(link, headers={"Authorization": f"token {server.token}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.read() == expected
        assert response.headers["Content-Type"].startswith("text/csv")

    # Without a base URL the view asks the kernel, which sends the bytes.
    frontend(viewer, {"action": "asset_download", "asset_id": asset.id, "path": "table.csv"})
    assert viewer.error == "", viewer.error
    [(content, buffers)] = viewer.sent
    assert content == {"download": "table.csv", "asset_id": asset.id, "media_type": "text/csv"}
    assert buffers is not None and bytes(buffers[0]) == expected

    frontend(viewer, {"action": "asset_download", "asset_id": asset.id, "path": "nope.csv"})
    assert "has no file 'nope.csv'" in viewer.error and len(viewer.sent) == 1
    viewer.close()


def test_the_run_tree_lists_the_asset_a_step_persisted_and_views_it_inline(
    server: Server, samples: str, asset: Asset, session: FakeSession, frontend: Frontend
) -> None:
    watcher = live.Watcher()
    try:
        tree = RunTree(samples, session=session, watcher=watcher)
        persist = next(s for s in tree.run["steps"] if s["target"] == "persist")
        [execution] = persist["executions"]
        assert execution["assets"] == [{"asset_id": asset.id, "name": "samples", "entries": len(asset)}]
        assert execution["result"]["type"] == "asset" and execution["result"]["asset_id"] == asset.id

        frontend(tree, {"action": "asset", "asset_id": asset.id})
        assert tree.error == "", tree.error
        shown = tree.assets[asset.id]
        assert shown["previews"]["plots/plot.png"]["kind"] == "image"
        assert shown["previews"]["table.csv"]["shape"] == [ROWS, 2]

        frontend(tree, {"action": "asset", "asset_id": "not-an-asset"})
        assert "not an asset id" in tree.error
        tree.close()
    finally:
        watcher.close()


TREE_ASSETS = """
const { model, el, cleanup } = await dom.render(viewPath, state);
const item = () => el.querySelector(".coflux-asset-item");
const out = { before: el.querySelectorAll(".coflux-asset-item").length };
el.querySelectorAll(".coflux-step").find((row) => row.textContent.includes("asset_files:persist")).click();
out.items = el.querySelectorAll(".coflux-asset-item")
  .map((i) => [i.getAttribute("data-asset-id"), i.getAttribute("data-how")]);
out.row = item().querySelector(".coflux-asset-row").textContent;
item().querySelector("button.coflux-asset-view").click();
out.loading = item().querySelectorAll(".coflux-loading").length;
out.sent = model.sent;
model.set("assets", state.loaded);
out.paths = item().querySelectorAll(".coflux-asset-entry").map((e) => e.getAttribute("data-path"));
out.images = item().querySelectorAll("img.coflux-preview-image").length;
out.tables = item().querySelectorAll("table.coflux-preview-table").length;
item().querySelector("button.coflux-asset-view").click();
out.hidden = item().querySelectorAll(".coflux-asset-entry").length;
out.sentAfter = model.sent.length;
cleanup();
return out;
"""


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_the_run_trees_view_lists_a_steps_asset_and_shows_it_on_view(
    tmp_path: Path, samples: str, asset: Asset, session: FakeSession, frontend: Frontend
) -> None:
    watcher = live.Watcher()
    try:
        tree = RunTree(samples, session=session, watcher=watcher)
        frontend(tree, {"action": "asset", "asset_id": asset.id})
        names = (
            "run",
            "spawned",
            "view",
            "workspace",
            "workspaces",
            "expanded",
            "details",
            "error",
            "notice",
        )
        state: dict[str, Any] = {name: getattr(tree, name) for name in names}
        state |= {"assets": {}, "loaded": tree.assets}  # as before "View", and what it then loads
        tree.close()
    finally:
        watcher.close()

    out = render_in_node(tmp_path, TREE_ASSETS, state, "runtree.js")

    assert out["before"] == 0  # inside the step's details only
    assert out["items"] == [[asset.id, "persisted"]]  # persisted and returned: listed once
    assert out["row"].startswith(f"samples{asset.id}{len(asset)} files")
    assert out["loading"] == 1 and out["sent"] == [{"action": "asset", "asset_id": asset.id}]
    assert sorted(out["paths"]) == sorted(asset.entries)
    assert out["images"] == 1 and out["tables"] == 2
    assert out["hidden"] == 0 and out["sentAfter"] == 1
