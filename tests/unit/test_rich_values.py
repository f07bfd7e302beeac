"""NumPy arrays as .npy and pandas DataFrames and Series as Parquet, through the value codec."""

from __future__ import annotations

import base64
import subprocess
import sys
from typing import Any

import numpy as np
import pandas as pd
import pytest

from coflux.descriptors import describe
from coflux.errors import BadRequest
from coflux.preview import preview
from coflux.serialization import TAG, canonical, deserialize, serialize
from coflux.trust import needs_trust
from tests.support.blobs import MemoryBlobs


@pytest.fixture
def blobs() -> MemoryBlobs:
    return MemoryBlobs()


def decode(data: Any, blobs: MemoryBlobs) -> Any:
    return deserialize(data, blobs.get, execution=lambda i: ("execution", i), asset=lambda i: ("asset", i))


def round_trip(value: Any, blobs: MemoryBlobs, inline_limit: int = 16_384) -> tuple[Any, Any]:
    encoded = serialize(value, blobs.put, inline_limit=inline_limit)
    return encoded, decode(encoded, blobs)


ARRAYS = [
    np.arange(12, dtype=np.float64).reshape(3, 4),
    np.array([1, -2, 3], dtype=np.int8),
    np.array([[True, False]]),
    np.array(["a", "bc"]),
    np.array([1 + 2j], dtype=np.complex64),
    np.array(["2024-01-02T03:04"], dtype="datetime64[m]"),
    np.zeros((2, 0, 3), dtype=np.uint16),
    np.asfortranarray(np.arange(6).reshape(2, 3)),
    np.array([(1, 2.5)], dtype=[("a", "<i4"), ("b", "<f8")]),
]


@pytest.mark.parametrize("array", ARRAYS, ids=lambda a: f"{a.dtype}{list(a.shape)}")
def test_arrays_travel_as_npy_and_come_back_equal(array: np.ndarray, blobs: MemoryBlobs) -> None:
    encoded, decoded = round_trip(array, blobs)
    assert encoded[TAG] == "ndarray" and encoded["format"] == "npy"
    assert base64.b64decode(encoded["b64"]).startswith(b"\x93NUMPY")
    assert type(decoded) is np.ndarray and decoded.dtype == array.dtype
    np.testing.assert_array_equal(decoded, array)


def test_a_zero_dimensional_array_stays_an_array(blobs: MemoryBlobs) -> None:
    encoded, decoded = round_trip(np.array(3.5), blobs)
    assert encoded["shape"] == []
    assert type(decoded) is np.ndarray and decoded.shape == () and decoded == 3.5


def test_numpy_scalars_and_subclasses_are_pickled(blobs: MemoryBlobs) -> None:
    for value in [np.float64(1.5), np.ma.masked_array([1, 2], mask=[0, 1]), np.rec.array([(1, 2.0)])]:
        encoded, decoded = round_trip(value, blobs)
        assert encoded[TAG] == "pickle"
        assert type(decoded) is type(value)


def test_an_object_array_falls_back_to_pickle(blobs: MemoryBlobs) -> None:
    array = np.array([{"a": 1}, None, "x"], dtype=object)
    encoded, decoded = round_trip(array, blobs)
    assert encoded[TAG] == "pickle" and encoded["class"] == "numpy.ndarray"
    assert list(decoded) == [{"a": 1}, None, "x"]


def mixed_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "i": np.array([1, 2, 3], dtype=np.int64),
            "f": [0.5, np.nan, 2.0],
            "s": ["a", None, "c"],
            "b": [True, False, True],
            "t": pd.to_datetime(["2024-01-01", "2024-02-01", "2024-03-01"]).tz_localize("UTC"),
            "c": pd.Categorical(["x", "y", "x"]),
            "n": pd.array([1, None, 3], dtype="Int64"),
        },
        index=pd.Index(["r1", "r2", "r3"], name="row"),
    )


def test_a_dataframe_with_mixed_dtypes_and_an_index_travels_as_parquet(blobs: MemoryBlobs) -> None:
    frame = mixed_frame()
    encoded, decoded = round_trip(frame, blobs)
    assert encoded[TAG] == "dataframe" and encoded["format"] == "parquet"
    assert base64.b64decode(encoded["b64"])[:4] == b"PAR1"
    pd.testing.assert_frame_equal(decoded, frame)


def test_a_multi_index_and_a_range_index_come_back(blobs: MemoryBlobs) -> None:
    multi = pd.DataFrame(
        {"v": [1.0, 2.0]}, index=pd.MultiIndex.from_tuples([("a", 1), ("b", 2)], names=["k", "n"])
    )
    ranged = pd.DataFrame({"v": [1, 2, 3]}, index=pd.RangeIndex(10, 13))
    for frame in (multi, ranged):
        encoded, decoded = round_trip(frame, blobs)
        assert encoded[TAG] == "dataframe"
        pd.testing.assert_frame_equal(decoded, frame)


def test_object_columns_and_index_levels_of_strings_stay_object(blobs: MemoryBlobs) -> None:
    frame = pd.DataFrame(
        {"s": np.array(["a", "b"], dtype=object), "t": ["c", "d"]},
        index=pd.MultiIndex.from_arrays([pd.Index(["x", "y"], dtype=object), [1, 2]], names=["k", None]),
    )
    single = pd.DataFrame({"v": [1, 2]}, index=pd.Index(["x", "y"], dtype=object, name="k"))
    for value in (frame, single):
        encoded, decoded = round_trip(value, blobs)
        assert encoded[TAG] == "dataframe"
        pd.testing.assert_frame_equal(decoded, value)
        assert list(decoded.dtypes) == list(value.dtypes)
        assert [decoded.index.get_level_values(i).dtype for i in range(value.index.nlevels)] == [
            value.index.get_level_values(i).dtype for i in range(value.index.nlevels)
        ]


@pytest.mark.parametrize("name", [None, "price"])
def test_a_series_travels_as_parquet_with_its_name(name: str | None, blobs: MemoryBlobs) -> None:
    series = pd.Series([1.5, 2.5], index=pd.Index(["a", "b"], name="k"), name=name)
    encoded, decoded = round_trip(series, blobs)
    assert encoded[TAG] == "series" and encoded["name"] == name
    pd.testing.assert_series_equal(decoded, series)


@pytest.mark.parametrize(
    "value",
    [
        pd.DataFrame({1: [1, 2]}),  # a non-string column name
        pd.DataFrame([[1, 2]], columns=["a", "a"]),  # duplicate columns
        pd.DataFrame({"o": [[1, 2], [3]]}),  # lists would come back as arrays
        pd.DataFrame({"o": [1, "x"]}),  # mixed objects
        pd.DataFrame({"v": [1]}, index=pd.Index([("t", 1)], dtype=object, tupleize_cols=False)),
        pd.Series([1, 2], name=3),  # a non-string series name
        pd.DataFrame({"v": [1]}, index=pd.Index([5], name=7)),  # Parquet would make it "7"
        pd.DataFrame({"v": [1, 2]}, index=pd.date_range("2024-01-01", periods=2, freq="D")),  # its freq
        pd.DataFrame({"s": pd.Series(["a", np.nan], dtype=object)}),  # NaN would come back as None
        pd.DataFrame({"s": pd.Series([None, None], dtype=object)}),
    ],
    ids=[
        "int-column",
        "duplicates",
        "lists",
        "mixed",
        "tuple-index",
        "int-name",
        "int-index-name",
        "freq",
        "nan-in-strings",
        "all-none",
    ],
)
def test_frames_parquet_would_change_are_pickled(value: Any, blobs: MemoryBlobs) -> None:
    encoded, decoded = round_trip(value, blobs)
    assert encoded[TAG] == "pickle"
    if isinstance(value, pd.DataFrame):
        pd.testing.assert_frame_equal(decoded, value)
    else:
        pd.testing.assert_series_equal(decoded, value)


def test_describe_shows_shape_and_dtypes_from_the_tag_alone(blobs: MemoryBlobs) -> None:
    array = serialize(np.zeros((3, 4)), blobs.put)
    frame = serialize(pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}), blobs.put)
    series = serialize(pd.Series([1.0], name="p"), blobs.put)
    sizes = [len(base64.b64decode(v["b64"])) for v in (array, frame, series)]
    for value in (array, frame, series):
        del value["preview"]  # the worker's, tested in tests/unit/test_value_previews.py
    assert describe(array) == {"type": "ndarray", "shape": [3, 4], "dtype": "float64", "size": sizes[0]}
    assert describe(frame) == {
        "type": "dataframe",
        "shape": [2, 2],
        "columns": {"a": "int64", "b": str(pd.Series(["x"]).dtype)},
        "size": sizes[1],
    }
    assert describe(series) == {
        "type": "series",
        "shape": [1],
        "dtype": "float64",
        "name": "p",
        "size": sizes[2],
    }


def test_previews_name_shape_and_dtypes_from_the_tag_alone(blobs: MemoryBlobs) -> None:
    def bare(value: object) -> Any:  # as from a worker that wrote no preview
        data = serialize(value, blobs.put)
        assert isinstance(data, dict)
        return {key: item for key, item in data.items() if key != "preview"}

    frame = bare(pd.DataFrame({"a": [1, 2], "b": [0.5, 1.5]}))
    size = len(base64.b64decode(frame["b64"]))
    assert preview(frame) == f"<DataFrame (2, 2) a: int64, b: float64, {size:,} bytes>"
    assert preview(bare(np.zeros((3, 4)))) == "<ndarray float64 (3, 4), 224 bytes>"
    assert preview(bare(np.arange(100_000))) == "<ndarray int64 (100000,), 800,128 bytes>"
    series = preview(bare(pd.Series([1.0], name="p")))
    assert series.startswith('<Series "p" float64 (1,), ') and series.endswith(" bytes>")


def test_large_values_become_blobs_and_come_back(blobs: MemoryBlobs) -> None:
    array = np.arange(50_000, dtype=np.float64)
    frame = pd.DataFrame({"x": array, "y": array * 2})
    for value in (array, frame):
        encoded = serialize(value, blobs.put)
        assert "b64" not in encoded
        assert blobs.data[encoded["blob"]] and encoded["size"] == len(blobs.data[encoded["blob"]])
        assert describe(encoded)["size"] == encoded["size"]
    np.testing.assert_array_equal(decode(serialize(array, blobs.put), blobs), array)
    pd.testing.assert_frame_equal(decode(serialize(frame, blobs.put), blobs), frame)


def test_the_inline_limit_is_the_callers(blobs: MemoryBlobs) -> None:
    array = np.arange(10)
    assert "b64" in serialize(array, blobs.put)
    assert "blob" in serialize(array, blobs.put, inline_limit=64)


def test_canonical_is_the_same_inline_or_as_a_blob_and_differs_by_content(blobs: MemoryBlobs) -> None:
    frame = mixed_frame()
    inline = serialize(frame, blobs.put)
    as_blob = serialize(frame, blobs.put, inline_limit=1)
    assert canonical(inline) == canonical(as_blob) == canonical(serialize(mixed_frame(), blobs.put))
    changed = mixed_frame()
    changed.loc["r1", "i"] = 7
    assert canonical(serialize(changed, blobs.put)) != canonical(inline)
    assert canonical(serialize(np.arange(3), blobs.put)) != canonical(serialize(np.arange(4), blobs.put))
    assert b"b64" not in canonical(inline)


def test_rich_values_need_no_trust_but_their_pickle_fallback_does(blobs: MemoryBlobs) -> None:
    assert not needs_trust(serialize(np.arange(3), blobs.put), blobs.get)
    assert not needs_trust(serialize(mixed_frame(), blobs.put), blobs.get)
    assert needs_trust(serialize(np.array([None], dtype=object), blobs.put), blobs.get)


def test_malformed_rich_tags_are_refused(blobs: MemoryBlobs) -> None:
    good = serialize(np.arange(3), blobs.put)
    bad = [
        {**good, "format": "pickle"},
        {**good, "shape": [-1]},
        {**good, "shape": "3"},
        {**good, "dtype": 3},
        {**good, "b64": "%%%"},
        {key: value for key, value in good.items() if key != "b64"},
        {**serialize(pd.DataFrame({"a": [1]}), blobs.put), "columns": ["a"]},
        {**serialize(pd.Series([1]), blobs.put), "name": 1},
    ]
    for data in bad:
        with pytest.raises(BadRequest):
            describe(data)
    not_npy = {**good, "b64": base64.b64encode(b"not an array").decode()}
    with pytest.raises(BadRequest, match="malformed npy"):
        decode(not_npy, blobs)
    not_parquet = {**serialize(pd.Series([1]), blobs.put), "b64": base64.b64encode(b"nope").decode()}
    with pytest.raises(BadRequest, match="malformed parquet"):
        decode(not_parquet, blobs)


def test_the_codec_imports_no_numpy_pandas_or_pyarrow_for_other_values() -> None:
    script = (
        "import sys\n"
        "from coflux.serialization import serialize, canonical\n"
        "from coflux.descriptors import describe\n"
        "class Thing: pass\n"
        "data = serialize([1, b'x', {1: 2}, Thing()], lambda b: '0' * 64)\n"
        "describe(data); canonical(data)\n"
        "print(sorted(m for m in ('numpy', 'pandas', 'pyarrow') if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"
