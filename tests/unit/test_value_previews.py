"""Previews computed by the worker (coflux.valuepreviews) and stored in a value's tag: what they show
for each kind of value, that they never make a value fail, that the server passes only well-formed
ones on, and that cache keys ignore them."""

from __future__ import annotations

import base64
import collections
import dataclasses
import io
import json
import time
from pathlib import Path
from typing import Any, NamedTuple

import matplotlib
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from coflux import settings, valuepreviews
from coflux.descriptors import describe
from coflux.errors import BadRequest, ConfigurationError
from coflux.preview import preview
from coflux.serialization import TAG, canonical, deserialize, serialize
from coflux.worker import values
from coflux.worker.settings import resolve_settings
from tests.support.blobs import MemoryBlobs

matplotlib.use("Agg")


@dataclasses.dataclass
class Point:
    x: int
    y: int


@dataclasses.dataclass
class Shape:
    name: str
    points: list[Point]


class Unprintable:
    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")


@dataclasses.dataclass(frozen=True)
class AssetLike:
    asset_id: str

    def __coflux_reference__(self) -> tuple[str, str, dict[str, Any]]:
        return ("asset", self.asset_id, {"name": "plots", "entries": 3})


def encoded(value: Any, **limits: int) -> dict[str, Any]:
    data = serialize(value, MemoryBlobs().put, **limits)
    assert isinstance(data, dict)
    return data


def png(preview_image: dict[str, Any]) -> Image.Image:
    data = base64.b64decode(preview_image["b64"])
    assert len(data) <= valuepreviews.IMAGE_BYTES
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    return image


def test_a_pickled_dataclass_shows_its_fields_and_the_server_shows_that() -> None:
    data = encoded(Point(1, 2))
    assert data[TAG] == "pickle" and data["preview"] == {"text": "Point(x=1, y=2)"}
    assert preview(data) == "Point(x=1, y=2)"
    assert describe(data)["preview"] == {"text": "Point(x=1, y=2)"}  # type: ignore[index]
    nested = encoded(Shape("tri", [Point(0, 0), Point(1, 0)]))
    assert preview(nested) == "Shape(name='tri', points=[Point(x=0, y=0), Point(x=1, y=0)])"


class Row(NamedTuple):
    key: str
    values: list[int]


class Settings(dict):  # type: ignore[type-arg]
    pass


def test_named_tuples_containers_and_their_subclasses_read_as_python_shows_them() -> None:
    assert encoded(Row("a", [1, 2]))["preview"]["text"] == "Row(key='a', values=[1, 2])"
    settings = Settings(lr=0.1, epochs=5, name="run")
    assert encoded(settings)["preview"]["text"] == "Settings({'lr': 0.1, 'epochs': 5, 'name': 'run'})"
    counts = collections.defaultdict(int, {i: i for i in range(100_000)})
    text = encoded(counts)["preview"]["text"]
    assert text.startswith("defaultdict({0: 0, 1: 1, 2: 2,") and text.endswith(", 19: 19, ...})")


def test_a_huge_object_costs_a_bounded_repr() -> None:
    huge = Shape("big", [Point(i, i) for i in range(200_000)])
    start = time.perf_counter()
    text = encoded(huge)["preview"]["text"]
    assert time.perf_counter() - start < 5  # pickling dominates; the repr stops after 20 items
    assert text.startswith("Shape(name='big', points=[Point(x=0, y=0), Point(x=1, y=1),")
    assert text.endswith(", ...])") and len(text) < 1000


def test_an_object_whose_repr_raises_has_no_preview_and_still_travels() -> None:
    blobs = MemoryBlobs()
    data = serialize([Unprintable()], blobs.put)
    assert isinstance(data, list) and "preview" not in data[0]
    assert preview(data).startswith(f"[<{__name__}.Unprintable object, ")
    [back] = deserialize(data, blobs.get, execution=str, asset=str)
    assert type(back) is Unprintable


class Shouting:
    def __repr__(self) -> str:
        return "\x1b[31mred\x1b[0m\tand\r\n  more"


def test_control_characters_never_reach_a_terminal() -> None:
    assert encoded(Shouting())["preview"]["text"] == "\ufffd[31mred\ufffd[0m and more"


def test_long_text_is_one_line_cut_to_the_limit() -> None:
    text = encoded(Shape("x" * 150 + "\n" + "y" * 150, [Point(i, i) for i in range(20)] * 3))
    shown = text["preview"]["text"]
    assert "\n" not in shown and len(shown) <= valuepreviews.TEXT_LIMIT


def test_one_value_holds_previews_within_a_budget() -> None:
    many = serialize([Point(i, i) for i in range(30_000)], MemoryBlobs().put, large_limit=10**9)
    assert isinstance(many, list)
    previews = [item.get("preview") for item in many]  # type: ignore[union-attr]
    assert previews[0] == {"text": "Point(x=0, y=0)"} and previews[-1] is None
    assert sum(len(json.dumps(p, ensure_ascii=False)) for p in previews if p) <= valuepreviews.BUDGET
    budget = valuepreviews.Budget(70)  # room for two texts, not for a thumbnail
    assert budget.take(Image.new("RGB", (64, 64))) == {"text": "<PIL.Image 64×64 RGB>"}  # noqa: RUF001
    assert budget.take(Point(1, 2)) == {"text": "Point(x=1, y=2)"} and budget.take(Point(3, 4)) is None


def test_a_value_kept_as_one_json_blob_shows_its_bounded_repr() -> None:
    data = encoded(list(range(300_000)))
    assert data[TAG] == "json" and "blob" in data
    assert preview(data) == "[" + ", ".join(str(i) for i in range(20)) + ", ...]"


def test_large_bytes_show_their_first_bytes_and_size_small_ones_need_no_preview() -> None:
    big = encoded(b"\x89PNG" + b"x" * 20_000)
    assert "blob" in big and big["preview"]["text"] == f"b'\\x89PNG{'x' * 96}'… (20,004 bytes)"
    assert preview(big) == big["preview"]["text"]
    small = encoded(b"ok")
    assert "preview" not in small and preview(small) == "b'ok'"  # the server reads inline bytes


def test_a_dataframe_shows_its_head_shape_and_dtypes() -> None:
    frame = pd.DataFrame(
        {"a": range(1000), "b": [0.5, np.nan] * 500, "c": ["long" * 40] + ["s"] * 999},
    )
    data = encoded(frame, inline_limit=100)
    assert data[TAG] == "dataframe" and "blob" in data  # the preview goes with a blob too
    shown = data["preview"]
    assert shown["text"] == f"DataFrame 1000×3 (a: int64, b: float64, c: {frame.dtypes['c']})"  # noqa: RUF001
    table = shown["table"]
    assert table["columns"] == ["a", "b", "c"] and table["shape"] == [1000, 3]
    assert table["dtypes"] == {"a": "int64", "b": "float64", "c": str(frame.dtypes["c"])}
    assert len(table["rows"]) == valuepreviews.TABLE_ROWS
    assert table["rows"][1] == [1, None, "s"]  # NaN as null: JSON has no NaN
    assert len(table["rows"][0][2]) == valuepreviews.CELL_LIMIT and table["rows"][0][2].endswith("…")
    assert describe(data)["preview"] == shown  # type: ignore[index]
    assert preview(data) == shown["text"]


def test_a_series_and_a_pickled_frame_show_a_table_too() -> None:
    series = encoded(pd.Series([1.5, 2.5], name="price"))["preview"]
    assert series["text"] == 'Series "price" 2 (float64)'
    assert series["table"] == {
        "columns": ["price"],
        "rows": [[1.5], [2.5]],
        "shape": [2, 1],
        "dtypes": {"price": "float64"},
    }
    counts = encoded(pd.Series([3, 1], index=pd.Index(["p", "q"], name="word"), name="n"))["preview"]
    assert counts["table"]["columns"] == ["word", "n"] and counts["table"]["rows"] == [["p", 3], ["q", 1]]
    assert counts["table"]["dtypes"]["n"] == "int64" and counts["table"]["shape"] == [2, 1]
    pickled = encoded(pd.DataFrame({1: ["x", "y"]}))  # a column name Parquet would change
    assert pickled[TAG] == "pickle" and pickled["preview"]["table"]["columns"] == ["1"]


def test_an_array_shows_its_shape_dtype_and_first_values() -> None:
    data = encoded(np.arange(1000).reshape(100, 10))
    text = data["preview"]["text"]
    assert text.startswith("ndarray 100×10 int64: [[  0,   1,   2, ...,   7,   8,   9], [ 10,")  # noqa: RUF001
    assert text.endswith("[990, 991, 992, ..., 997, 998, 999]]")
    assert preview(data) == text
    assert encoded(np.float32(2.5))["preview"]["text"] == "np.float32(2.5)"


def test_a_pillow_image_gets_a_png_thumbnail_within_the_limits() -> None:
    noise = Image.frombytes("RGB", (1024, 768), np.random.default_rng(1).bytes(1024 * 768 * 3))
    shown = encoded(noise)["preview"]
    assert shown["text"] == "<PIL.Image 1024×768 RGB>"  # noqa: RUF001
    thumbnail = png(shown["image"])
    assert max(thumbnail.size) <= 256 and thumbnail.size == (
        shown["image"]["width"],
        shown["image"]["height"],
    )
    deep = encoded(Image.new("I;16", (300, 100)))["preview"]  # whatever Pillow can't resize: the text
    assert deep["text"] == "<PIL.Image 300×100 I;16>"  # noqa: RUF001
    cmyk = encoded(Image.new("CMYK", (300, 100)))["preview"]
    assert png(cmyk["image"]).size == (256, 85)
    small = encoded(Image.new("L", (40, 20), 128))["preview"]
    assert small["text"] == "<PIL.Image 40×20 L>" and png(small["image"]).size == (40, 20)  # noqa: RUF001


def test_a_matplotlib_figure_gets_a_png_thumbnail() -> None:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 4.8), dpi=100)
    figure.add_subplot().plot([1, 3, 2])
    shown = encoded(figure)["preview"]
    assert shown["text"] == "<Figure 640×480>"  # noqa: RUF001
    assert png(shown["image"]).size == (256, 192)


def test_cache_keys_ignore_previews() -> None:
    data = serialize([Point(1, 2), np.arange(3), pd.DataFrame({"a": [1]})], MemoryBlobs().put)
    assert isinstance(data, list) and all("preview" in item for item in data)  # type: ignore[operator]
    bare = [{k: v for k, v in item.items() if k != "preview"} for item in data]  # type: ignore[union-attr]
    other = [{**item, "preview": {"text": "something else"}} for item in bare]
    assert canonical(data) == canonical(bare) == canonical(other)
    assert canonical(encoded(Point(1, 2))) != canonical(encoded(Point(1, 3)))


HOSTILE: list[Any] = [
    "just a string",
    {"text": 5},
    {"text": "x" * 1001},
    {"text": "ok", "script": "<script>"},
    {"text": "two\nlines"},
    {"text": "\x1b[31mred\x1b[0m"},
    {"text": "ok", "table": {"columns": ["a"], "rows": [[1, 2]], "shape": [1, 1], "dtypes": {}}},
    {"text": "ok", "table": {"columns": ["a"], "rows": [[1]] * 11, "shape": [11, 1], "dtypes": {}}},
    {"text": "ok", "table": {"columns": ["a"], "rows": [[{"x": 1}]], "shape": [1, 1], "dtypes": {}}},
    {"text": "ok", "table": {"columns": ["a"], "rows": [["x" * 101]], "shape": [1, 1], "dtypes": {}}},
    {"text": "ok", "table": {"columns": ["a"], "rows": [], "shape": [-1, 1], "dtypes": {}}},
    {"text": "ok", "image": {"media_type": "image/svg+xml", "b64": "", "width": 1, "height": 1}},
    {"text": "ok", "image": {"media_type": "image/png", "b64": "not base64!", "width": 1, "height": 1}},
    {"text": "ok", "image": {"media_type": "image/png", "b64": "R0lGODlh", "width": 1, "height": 1}},
    {"text": "ok", "image": {"media_type": "image/png", "b64": "A" * 100_000, "width": 1, "height": 1}},
    {"text": "ok", "image": {"media_type": "image/png", "b64": "iVBORw0KGgo=", "width": 999, "height": 1}},
]


@pytest.mark.parametrize("hostile", HOSTILE)
def test_a_malformed_or_oversized_preview_is_dropped_and_the_value_kept(hostile: Any) -> None:
    data = {TAG: "pickle", "class": "evil.Thing", "b64": "AAAA", "preview": hostile}
    assert describe(data) == {"type": "object", "class": "evil.Thing", "size": 3}
    assert preview(data) == "<evil.Thing object, 3 bytes>"
    assert canonical(data) == canonical({k: v for k, v in data.items() if k != "preview"})


def test_a_well_formed_image_preview_passes_through() -> None:
    image = encoded(Image.new("RGB", (10, 10)))["preview"]
    data = {TAG: "pickle", "class": "PIL.Image.Image", "b64": "AAAA", "preview": image}
    assert describe(data) == {"type": "object", "class": "PIL.Image.Image", "size": 3, "preview": image}


def test_a_reference_may_carry_fields_and_an_asset_reads_as_its_file_list() -> None:
    data = encoded(AssetLike("A" + "0" * 24))
    assert data == {TAG: "asset", "asset_id": "A" + "0" * 24, "name": "plots", "entries": 3}
    assert describe(data) == {"type": "asset", "asset_id": "A" + "0" * 24, "name": "plots", "entries": 3}
    assert preview(data) == "<asset plots: 3 files>"
    listed = {
        **data,
        "preview": {"text": "<asset plots: 3 files: a.csv, b.png, c.txt>"},
    }  # as cf.Asset writes it
    assert preview(listed) == "<asset plots: 3 files: a.csv, b.png, c.txt>"
    assert canonical(listed) == canonical(data)
    assert preview({TAG: "asset", "asset_id": "A1"}) == "<asset A1>"


@dataclasses.dataclass(frozen=True)
class BadReference:
    fields: Any

    def __coflux_reference__(self) -> tuple[str, str, Any]:
        return ("asset", "A1", self.fields)


@pytest.mark.parametrize("fields", [{"$c": "pickle"}, {"asset_id": "A2"}, ["name"], {1: 2}])
def test_reference_fields_may_not_replace_the_tag_or_the_id(fields: Any) -> None:
    with pytest.raises(BadRequest, match="__coflux_reference__"):
        serialize(BadReference(fields), MemoryBlobs().put)


# -- the limits: worker settings ------------------------------------------------------------------


class LimitedChannel:
    """The part of a worker's channel that :func:`coflux.worker.values.encode` uses."""

    def __init__(self, inline_limit: int, large_limit: int) -> None:
        self.blobs = MemoryBlobs()
        self.limits = (inline_limit, large_limit)

    def put_blob(self, data: bytes) -> str:
        return self.blobs.put(data)

    def value_limits(self) -> tuple[int, int]:
        return self.limits


def test_a_changed_inline_limit_changes_where_a_value_goes() -> None:
    value = b"z" * 1000
    default = values.encode(value, LimitedChannel(16_384, 1_048_576))  # type: ignore[arg-type]
    lowered = values.encode(value, LimitedChannel(100, 1_048_576))  # type: ignore[arg-type]
    assert isinstance(default, dict) and "b64" in default
    assert isinstance(lowered, dict) and "blob" in lowered and lowered["size"] == 1000
    many = list(range(3000))
    assert values.encode([many], LimitedChannel(100, 100))[TAG] == "json"  # type: ignore[arg-type,index]


@pytest.fixture
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for key in settings.KEYS:
        monkeypatch.delenv(f"COFLUX_{key.upper()}", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_limits_come_from_flags_then_environment_then_coflux_toml(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (resolve_settings().inline_limit, resolve_settings().large_limit) == (16_384, 1_048_576)
    (isolated / "coflux.toml").write_text("[coflux]\ninline_limit = 500\nlarge_limit = 9000\n")
    assert (resolve_settings().inline_limit, resolve_settings().large_limit) == (500, 9000)
    monkeypatch.setenv("COFLUX_INLINE_LIMIT", "64")
    assert resolve_settings().inline_limit == 64
    assert resolve_settings(inline_limit=7).inline_limit == 7


def test_a_bad_limit_is_refused_naming_where_it_came_from(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COFLUX_INLINE_LIMIT", "lots")
    with pytest.raises(
        ConfigurationError, match=r"inline limit must be .* 'lots' \(from COFLUX_INLINE_LIMIT\)"
    ):
        resolve_settings()
    monkeypatch.delenv("COFLUX_INLINE_LIMIT")
    (isolated / "coflux.toml").write_text('large_limit = "big"\n')
    with pytest.raises(ConfigurationError, match="large_limit must be an integer"):
        resolve_settings()
