"""Values people can read, end to end: a real `coflux worker` returns each kind of value (a dict with
non-string keys, a dataclass, bytes, a DataFrame, an array, an image, a figure), passes it to another
step, and `coflux runs show` and the RunTree widget show its readable preview: the text, a table's
head with its shape and dtypes, a thumbnail that decodes as a PNG of at most 256 pixels."""

from __future__ import annotations

import base64
import io
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from coflux.notebook import live
from coflux.notebook.widgets import RunTree
from tests.support.harness import Server, Worker, environment, start_run, wait_for_run, wait_until
from tests.support.notebook import FakeSession
from tests.support.views import NODE, render_in_node

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

SYNCED = ("run", "spawned", "view", "workspace", "workspaces", "expanded", "details", "error", "notice")
X = "\u00d7"

TEXTS = {
    "keys": '{3: 5, (1, 2): "pair"}',
    "dataclass": "Point(x=1, y=2)",
    "bytes": "b'\\x89PNG\\x00\\x01\\x02\\x03",  # the start: the rest is cut
    "dataframe": f"DataFrame 1000{X}3 (a: int64, b: float64, c: ",  # c: object or str (pandas 3)
    "ndarray": f"ndarray 100{X}10 int64: [[  0,   1,   2, ...,   7,   8,   9], [ 10,",
    "image": f"<PIL.Image 640{X}480 RGB>",
    "figure": f"<Figure 640{X}480>",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("previews") / "data").start()
    worker = Worker(server, "preview_flows").start()
    yield server
    worker.stop()
    server.stop()


@pytest.fixture(scope="module")
def runs(server: Server) -> dict[str, dict[str, Any]]:
    """One finished run of ``preview_flows:values`` per kind, by kind."""
    started = {kind: start_run(server, "preview_flows:values", kind) for kind in TEXTS}
    return {kind: wait_for_run(server, run_id, timeout=90) for kind, run_id in started.items()}


def coflux(server: Server, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "coflux.cli", *args],
        env=environment(COFLUX_URL=server.url, COFLUX_TOKEN=server.token),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def thumbnail(image: dict[str, Any]) -> Image.Image:
    assert image["media_type"] == "image/png"
    data = base64.b64decode(image["b64"])
    assert len(data) <= 65_536
    decoded = Image.open(io.BytesIO(data))
    assert decoded.format == "PNG" and max(decoded.size) <= 256
    assert decoded.size == (image["width"], image["height"])
    return decoded


@pytest.mark.parametrize("kind", list(TEXTS))
def test_runs_show_reads_each_kind_of_value_as_its_preview(
    server: Server, runs: dict[str, dict[str, Any]], kind: str
) -> None:
    data = runs[kind]
    assert data["status"] == "succeeded", data.get("error")
    lines = coflux(server, "runs", "show", data["run_id"]).splitlines()
    [received] = [line for line in lines if "preview_flows:receive(" in line]
    [result] = [line for line in lines if line.startswith("  result: ")]
    expected = TEXTS[kind]
    assert received.strip().startswith(f"preview_flows:receive({expected[:30]}")  # the row, in short
    assert result.startswith(f"  result: {expected}")
    assert "object," not in result and "bytes>" not in result  # never the encoding's name and size


def test_the_run_view_carries_the_table_and_the_thumbnail(runs: dict[str, dict[str, Any]]) -> None:
    frame = runs["dataframe"]["result"]["preview"]
    assert frame["table"]["shape"] == [1000, 3] and frame["table"]["columns"] == ["a", "b", "c"]
    assert frame["table"]["rows"][:2] == [[0, 0.5, "x"], [1, 0.5, "y"]]
    assert frame["table"]["dtypes"]["a"] == "int64" and frame["table"]["dtypes"]["b"] == "float64"
    assert thumbnail(runs["image"]["result"]["preview"]["image"]).size == (256, 192)
    red = thumbnail(runs["image"]["result"]["preview"]["image"]).convert("RGB").getpixel((5, 5))
    assert red == (200, 40, 40)  # the thumbnail is of the image itself
    assert thumbnail(runs["figure"]["result"]["preview"]["image"]).size == (256, 192)
    steps = {step["target"]: step for step in runs["image"]["steps"]}
    assert steps["receive"]["arguments"][0]["preview"]["image"]["width"] == 256  # arguments too


WIDGET = """
const { el, cleanup } = await dom.render(viewPath, state);
const rich = (node) => ({
  code: node.querySelector("code").textContent,
  columns: node.querySelectorAll("th").map((th) => th.textContent),
  cells: node.querySelectorAll("td").map((td) => td.textContent),
  shape: node.querySelector(".coflux-value-shape")?.textContent ?? null,
  images: node.querySelectorAll("img").map((img) => ({
    src: img.getAttribute("src"), width: img.getAttribute("width"), alt: img.getAttribute("alt"),
  })),
});
const header = el.querySelector(".coflux-run-header");
const out = {
  header: { ...rich(header), code: header.querySelector(".coflux-run-result").textContent },
  rows: el.querySelectorAll(".coflux-step").map((row) => row.querySelector(".coflux-call-args").textContent),
  results: el.querySelectorAll(".coflux-result").map(rich),
  arguments: el.querySelectorAll(".coflux-argument").map(rich),
  text: el.textContent,
};
cleanup();
return out;
"""


def render_tree(tmp_path: Path, server: Server, run_id: str) -> Any:
    watcher = live.Watcher()
    try:
        tree = RunTree(run_id, session=FakeSession(server), watcher=watcher)
        tree.expanded = [step["step_id"] for step in tree.run["steps"] if step["target"] != "values"]
        tree.refresh()
        wait_until(lambda: all(s.get("executions") for s in tree.run["steps"]), 30, "the run's view")
        state = {name: getattr(tree, name) for name in SYNCED}
        tree.close()
    finally:
        watcher.close()
    return render_in_node(tmp_path, WIDGET, state, "runtree.js")


@pytest.mark.skipif(NODE is None, reason="node is not installed")
@pytest.mark.parametrize("kind", list(TEXTS))
def test_the_run_tree_shows_each_kind_of_value_as_its_preview(
    tmp_path: Path, server: Server, runs: dict[str, dict[str, Any]], kind: str
) -> None:
    out = render_tree(tmp_path, server, runs[kind]["run_id"])
    expected = TEXTS[kind]
    assert out["header"]["code"].startswith(expected)
    assert out["rows"][2].startswith(f"({expected[:20]}")  # receive(...), in short
    make, receive = out["results"]
    assert make["code"].startswith(expected) and receive["code"] == f'"{_type_name(kind)}"'
    assert "null" not in out["text"] and "undefined" not in out["text"]
    if kind == "dataframe":
        for shown in (out["header"], make):  # the result, in the header and in the step's details
            assert shown["columns"][:3] == ["a", "b", "c"] and shown["columns"][3:5] == ["int64", "float64"]
            assert shown["cells"][:6] == ["0", "0.5", "x", "1", "0.5", "y"] and len(shown["cells"]) == 30
            assert shown["shape"] == f"1000 rows {X} 3 columns, the first 10 shown"
        [argument] = out["arguments"]  # receive's argument: the frame, with its table
        assert argument["columns"][:3] == ["a", "b", "c"] and argument["code"].startswith(expected)
    elif kind in ("image", "figure"):
        for shown in (out["header"], make, *out["arguments"]):
            [image] = shown["images"]
            assert image["src"].startswith("data:image/png;base64,") and image["width"] == "256"
            assert image["alt"] == expected
            decoded = Image.open(io.BytesIO(base64.b64decode(image["src"].partition(",")[2])))
            assert decoded.format == "PNG" and decoded.size == (256, 192)
        assert len(out["arguments"]) == 1
    else:
        assert out["header"]["images"] == [] and out["header"]["columns"] == []
        assert out["arguments"] == []  # nothing more to show than the text on the arguments line


def _type_name(kind: str) -> str:
    return {
        "keys": "dict",
        "dataclass": "Point",
        "bytes": "bytes",
        "dataframe": "DataFrame",
        "ndarray": "ndarray",
        "image": "Image",
        "figure": "Figure",
    }[kind]


def test_a_workers_inline_limit_decides_what_goes_to_the_blob_store(server: Server) -> None:
    assert server.request("POST", "api/projects", {"name": "limits"}).status == 201
    worker = Worker(server, "preview_flows", "--inline-limit", "32", project="limits").start()
    try:
        run_id = start_run(server, "preview_flows:values", "dataclass", project="limits")
        data = wait_for_run(server, run_id, project="limits")
    finally:
        worker.stop()
    assert data["status"] == "succeeded", data.get("error")
    stored = data["result_value"]  # the tagged JSON: this ~60-byte pickle went to the blob store
    assert "blob" in stored and "b64" not in stored and stored["size"] > 32
    assert data["result_preview"] == "Point(x=1, y=2)"  # its preview stays beside it
    default = wait_for_run(server, start_run(server, "preview_flows:values", "dataclass"))["result_value"]
    assert "b64" in default and "blob" not in default  # the same value, under the default limit
