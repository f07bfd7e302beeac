"""What the AssetViewer shows of a file, from its bytes (coflux.notebook.filepreview): one test per
kind, and the limits (long text cut, large files not previewed, bad content named, never raised)."""

from __future__ import annotations

import base64
import io
import json

import pytest

from coflux.notebook import filepreview
from coflux.notebook.filepreview import MAX_BYTES, TABLE_ROWS, TEXT_BYTES, kind_of, preview


@pytest.mark.parametrize(
    ("path", "media_type", "kind"),
    [
        ("plot.png", "image/png", "image"),
        ("photo.JPG", "image/jpeg", "image"),
        ("logo.svg", "image/svg+xml", "image"),
        ("notes.md", "application/octet-stream", "markdown"),
        ("README", "text/markdown", "markdown"),
        ("data/x.csv", "text/csv", "csv"),
        ("x.tsv", "text/tab-separated-values", "tsv"),
        ("frame.parquet", "application/octet-stream", "parquet"),
        ("config.json", "application/json", "json"),
        ("log.txt", "text/plain; charset=utf-8", "text"),
        ("page.xml", "application/xml", "text"),
        ("model.bin", "application/octet-stream", "none"),
    ],
)
def test_the_kind_comes_from_the_media_type_then_the_extension(path: str, media_type: str, kind: str) -> None:
    assert kind_of(path, media_type) == kind


def test_an_image_is_sent_as_base64_of_its_bytes() -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 20
    shown = preview("a.png", "image/png", png)
    assert shown["kind"] == "image" and shown["media_type"] == "image/png"
    assert base64.b64decode(shown["b64"]) == png


def test_text_shows_the_beginning_of_a_long_file() -> None:
    data = ("é" * (TEXT_BYTES)).encode()  # two bytes each: the cut falls inside a character
    shown = preview("long.txt", "text/plain", data)
    assert shown["kind"] == "text" and shown["truncated"] is True
    assert set(shown["text"]) == {"é"} and len(shown["text"].encode()) <= TEXT_BYTES
    assert preview("short.txt", "text/plain", b"hello\n") == {
        "kind": "text",
        "text": "hello\n",
        "truncated": False,
    }


def test_markdown_is_rendered_with_the_files_html_escaped() -> None:
    source = (
        b"# Title\n\n*fine* <script>alert(1)</script> <img src=x onerror=alert(2)>\n\n"
        b"[x](javascript:alert(3))"
    )
    shown = preview("notes.md", "text/markdown", source)
    assert shown["kind"] == "markdown"
    assert "<h1>Title</h1>" in shown["html"] and "<em>fine</em>" in shown["html"]
    assert "<script>" not in shown["html"] and "&lt;script&gt;" in shown["html"]
    assert "<img" not in shown["html"] and 'href="javascript' not in shown["html"]


def test_a_csv_is_a_table_of_its_first_rows_with_its_shape() -> None:
    lines = ["city,temp,note"] + [f'c{i},{i},"a, b"' for i in range(50)]
    shown = preview("t.csv", "text/csv", "\n".join(lines).encode())
    assert shown["kind"] == "table"
    assert shown["columns"] == ["city", "temp", "note"]
    assert len(shown["rows"]) == TABLE_ROWS and shown["rows"][0] == ["c0", "0", "a, b"]
    assert shown["shape"] == [50, 3] and shown["truncated"] is True
    tsv = preview("t.tsv", "text/tab-separated-values", b"a\tb\n1\t2\n")
    assert tsv["columns"] == ["a", "b"] and tsv["rows"] == [["1", "2"]] and tsv["truncated"] is False


def test_a_parquet_file_is_a_table_head_with_its_shape_and_dtypes() -> None:
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    frame = pd.DataFrame(
        {"day": range(100), "temp": [float(i) / 2 for i in range(100)], "city": ["Oslo"] * 100}
    )
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    shown = preview("f.parquet", "application/octet-stream", buffer.getvalue())
    assert shown["kind"] == "table" and shown["columns"] == ["day", "temp", "city"]
    assert shown["rows"][:2] == [[0, 0.0, "Oslo"], [1, 0.5, "Oslo"]] and len(shown["rows"]) == TABLE_ROWS
    assert shown["shape"] == [100, 3] and shown["truncated"] is True
    assert shown["dtypes"]["day"] == "int64" and shown["dtypes"]["temp"] == "double"
    assert shown["dtypes"]["city"] in ("string", "large_string")  # pandas 2 / pandas 3


def test_json_is_pretty_printed_and_cut() -> None:
    shown = preview("c.json", "application/json", b'{"b": [1, 2], "a": "\xc3\xa9"}')
    assert shown == {
        "kind": "json",
        "text": '{\n  "b": [\n    1,\n    2\n  ],\n  "a": "é"\n}',
        "truncated": False,
    }
    big = json.dumps(list(range(20_000))).encode()
    cut = preview("big.json", "application/json", big)
    assert cut["truncated"] is True and len(cut["text"]) == TEXT_BYTES


def test_content_that_does_not_parse_says_why_instead_of_raising() -> None:
    bad_json = preview("c.json", "application/json", b"{not json")
    assert bad_json["kind"] == "error" and "c.json" in bad_json["message"] and "json" in bad_json["message"]
    bad_parquet = preview("f.parquet", "application/vnd.apache.parquet", b"PAR1 not really")
    assert bad_parquet["kind"] == "error" and "f.parquet" in bad_parquet["message"]


def test_large_and_binary_files_are_not_previewed() -> None:
    assert not filepreview.needs_bytes("big.csv", "text/csv", MAX_BYTES + 1)
    assert filepreview.needs_bytes("small.csv", "text/csv", 10)
    assert not filepreview.needs_bytes("model.bin", "application/octet-stream", 10)
    large = filepreview.without_bytes("big.csv", "text/csv", 5 * 1024 * 1024)
    assert large == {"kind": "too_large", "message": "too large to preview (5.0 MB): download it"}
    binary = filepreview.without_bytes("model.bin", "application/octet-stream", 10)
    assert binary["kind"] == "none" and "application/octet-stream" in binary["message"]
