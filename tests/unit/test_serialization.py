from __future__ import annotations

import datetime as dt
import decimal
import enum
import hashlib
import json
import math
import pickle
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import cloudpickle
import pytest

from coflux.descriptors import describe, references
from coflux.errors import BadRequest
from coflux.serialization import TAG, canonical, deserialize, serialize
from tests.support.blobs import MemoryBlobs


@dataclass(frozen=True)
class Handle:
    kind: str
    id: str

    def __coflux_reference__(self) -> tuple[str, str]:
        return (self.kind, self.id)


@dataclass
class Point:
    x: int
    y: int


class Color(enum.IntEnum):
    RED = 1


@pytest.fixture
def blobs() -> MemoryBlobs:
    return MemoryBlobs()


def round_trip(value: Any, blobs: MemoryBlobs, inline_limit: int = 16_384) -> Any:
    encoded = serialize(value, blobs.put, inline_limit=inline_limit)
    wire = json.loads(json.dumps(encoded, allow_nan=False))  # strict JSON survives the wire
    return deserialize(
        wire,
        blobs.get,
        execution=lambda i: Handle("execution", i),
        asset=lambda i: Handle("asset", i),
    )


VALUES = [
    None,
    True,
    0,
    -(2**70),
    1.5,
    "text",
    [],
    [1, "a", None],
    {},
    {"a": 1, "b": [2.5, {"c": None}]},
    (1, 2, (3,)),
    {3, 1, 2},
    frozenset({"x", "y"}),
    {1: "one", (2, 3): "tuple key", None: "none"},
    {"$c": "not a tag", "other": 1},
    dt.datetime(2024, 5, 6, 7, 8, 9, 123456),
    dt.datetime(2024, 5, 6, 7, 8, tzinfo=dt.timezone(dt.timedelta(hours=2))),
    dt.date(2024, 2, 29),
    dt.time(23, 59, 1),
    decimal.Decimal("3.14159265358979323846"),
    uuid.UUID("12345678-1234-5678-1234-567812345678"),
    b"\x00\x01binary",
    Point(1, 2),
    OrderedDict([("b", 1), ("a", 2)]),
    Color.RED,
    {"nested": [{"deep": ({1, 2}, b"x", Point(3, 4))}]},
]


@pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__)
def test_round_trip_keeps_value_and_type(value: Any, blobs: MemoryBlobs) -> None:
    result = round_trip(value, blobs)
    assert result == value
    assert type(result) is type(value)


def test_special_floats_are_tagged_strict_json(blobs: MemoryBlobs) -> None:
    encoded = serialize([math.nan, math.inf, -math.inf], blobs.put)
    assert encoded == [
        {TAG: "float", "value": "nan"},
        {TAG: "float", "value": "inf"},
        {TAG: "float", "value": "-inf"},
    ]
    json.dumps(encoded, allow_nan=False)
    nan, inf, minus_inf = round_trip([math.nan, math.inf, -math.inf], blobs)
    assert math.isnan(nan) and inf == math.inf and minus_inf == -math.inf


def test_plain_json_is_unchanged(blobs: MemoryBlobs) -> None:
    value = {"a": [1, 2.5, "x", None, True], "b": {"c": {}}}
    assert serialize(value, blobs.put) == value


def test_non_str_keys_and_tag_key_use_item_pairs(blobs: MemoryBlobs) -> None:
    assert serialize({1: "a"}, blobs.put) == {TAG: "dict", "items": [[1, "a"]]}
    assert serialize({"$c": 1}, blobs.put) == {TAG: "dict", "items": [["$c", 1]]}


def test_sets_are_sorted_whatever_the_insertion_order(blobs: MemoryBlobs) -> None:
    first = serialize({"b", "a", "c"}, blobs.put)
    second = serialize({"c", "b", "a"}, blobs.put)
    assert first == second == {TAG: "set", "items": ["a", "b", "c"]}


@pytest.mark.parametrize("value", [b"x" * 100, Point(1, 2)], ids=["bytes", "pickle"])
def test_inline_below_limit_blob_at_or_above(value: Any, blobs: MemoryBlobs) -> None:
    raw = value if isinstance(value, bytes) else cloudpickle.dumps(value)
    inline = serialize(value, blobs.put, inline_limit=len(raw) + 1)
    assert "b64" in inline and not blobs.data
    stored = serialize(value, blobs.put, inline_limit=len(raw))
    assert "b64" not in stored
    assert stored["blob"] == hashlib.sha256(raw).hexdigest()
    assert stored["size"] == len(raw)
    assert blobs.data[stored["blob"]] == raw
    assert round_trip(value, blobs, inline_limit=len(raw)) == value


def test_pickle_records_class_name(blobs: MemoryBlobs) -> None:
    encoded = serialize(Point(1, 2), blobs.put)
    assert encoded[TAG] == "pickle"
    assert encoded["class"] == f"{__name__}.Point"


def test_references_are_encoded_and_rebuilt(blobs: MemoryBlobs) -> None:
    value = {"run": Handle("execution", "Rabc:1:1"), "files": [Handle("asset", "A1")]}
    encoded = serialize(value, blobs.put)
    assert encoded == {
        "run": {TAG: "execution", "execution_id": "Rabc:1:1"},
        "files": [{TAG: "asset", "asset_id": "A1"}],
    }
    assert round_trip(value, blobs) == value


def test_references_finds_nested_executions_once(blobs: MemoryBlobs) -> None:
    value = {
        "a": Handle("execution", "R1:1:1"),
        (1, 2): [Handle("execution", "R1:2:1"), Handle("asset", "A1")],
        "b": ({Handle("execution", "R1:3:1")}, Handle("execution", "R1:1:1")),
    }
    assert references(serialize(value, blobs.put)) == ["R1:1:1", "R1:2:1", "R1:3:1"]
    assert references(serialize([1, "R1:1:1", {"x": None}], blobs.put)) == []


def test_describe_gives_readable_json(blobs: MemoryBlobs) -> None:
    value = {
        "tuple": (1, 2),
        "set": {2, 1},
        "when": dt.date(2024, 1, 2),
        "price": decimal.Decimal("1.10"),
        "id": uuid.UUID(int=1),
        "raw": b"abc",
        "child": Handle("execution", "R1:2:1"),
        "asset": Handle("asset", "A9"),
        "nan": math.nan,
        "keys": {1: "a"},
        "tag": {"$c": 1},
    }
    described = describe(serialize(value, blobs.put))
    assert described == {
        "tuple": [1, 2],
        "set": [1, 2],
        "when": "2024-01-02",
        "price": "1.10",
        "id": str(uuid.UUID(int=1)),
        "raw": {"type": "object", "class": "builtins.bytes", "size": 3},
        "child": {"type": "execution", "execution_id": "R1:2:1"},
        "asset": {"type": "asset", "asset_id": "A9"},
        "nan": "nan",
        "keys": {"type": "dict", "items": [[1, "a"]]},
        "tag": {"$c": 1},
    }
    json.dumps(described, allow_nan=False)


def test_describe_blob_uses_recorded_size(blobs: MemoryBlobs) -> None:
    encoded = serialize(b"y" * 50, blobs.put, inline_limit=10)
    assert describe(encoded) == {
        "type": "object",
        "class": "builtins.bytes",
        "size": 50,
        "preview": {"text": f"b'{'y' * 50}' (50 bytes)"},  # the worker's: the server reads no blob
    }


def test_describe_never_unpickles(monkeypatch: pytest.MonkeyPatch) -> None:
    # A pickle of a class from a module that does not exist here: describing it must work (loading
    # it fails, and the server must never even try).
    payload = b"cno_such_module\nCls\n)\x81."
    data = {TAG: "pickle", "class": "no_such_module.Cls", "b64": _b64(payload)}
    with monkeypatch.context() as patch:
        for module in (pickle, cloudpickle):
            patch.setattr(module, "loads", _forbidden_loads)
        described = describe(data)
    assert described == {"type": "object", "class": "no_such_module.Cls", "size": len(payload)}
    with pytest.raises(BadRequest, match="no_such_module"):
        deserialize(data, _no_blobs, execution=str, asset=str)


def test_describe_does_not_fetch_blobs() -> None:
    data = {TAG: "pickle", "class": "x.Y", "blob": "a" * 64, "size": 99}
    assert describe(data) == {"type": "object", "class": "x.Y", "size": 99}


def test_canonical_is_independent_of_key_order(blobs: MemoryBlobs) -> None:
    first = serialize({"a": 1, "b": {"x": 1, "y": 2}, 3: "three", 4: "four"}, blobs.put)
    second = serialize({4: "four", 3: "three", "b": {"y": 2, "x": 1}, "a": 1}, blobs.put)
    assert first != second
    assert canonical(first) == canonical(second)
    assert canonical(first) == canonical(json.loads(json.dumps(first)))
    assert b" " not in canonical(first)


def test_canonical_distinguishes_different_values(blobs: MemoryBlobs) -> None:
    values = [1, 1.0, "1", [1], (1,), {1}, {"a": 1}, {"a": 2}, True]
    encodings = {canonical(serialize(v, blobs.put)) for v in values}
    assert len(encodings) == len(values)


def test_canonical_refuses_untagged_nan() -> None:
    with pytest.raises(BadRequest):
        canonical([math.nan])


def test_self_referencing_container_is_refused(blobs: MemoryBlobs) -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(BadRequest, match="self-referencing"):
        serialize(loop, blobs.put)
    shared = [1]
    assert serialize([shared, shared], blobs.put) == [[1], [1]]


def test_unpicklable_value_raises_bad_request(blobs: MemoryBlobs) -> None:
    import threading

    with pytest.raises(BadRequest, match=r"_thread\.lock"):
        serialize(threading.Lock(), blobs.put)


MALFORMED = [
    {TAG: "nope"},
    {TAG: 3},
    {TAG: ["list"]},
    {TAG: "tuple"},
    {TAG: "tuple", "items": "abc"},
    {TAG: "dict", "items": [[1]]},
    {TAG: "float", "value": "big"},
    {TAG: "datetime", "value": "yesterday"},
    {TAG: "decimal", "value": "x1"},
    {TAG: "uuid", "value": 5},
    {TAG: "bytes", "b64": "***"},
    {TAG: "bytes", "blob": "../../etc/passwd", "size": 1},
    {TAG: "bytes", "blob": "a" * 64, "size": -1},
    {TAG: "pickle", "b64": ""},
    {TAG: "execution"},
    {1: "non-string key"},
    {"a": {1, 2}},
]


@pytest.mark.parametrize("data", MALFORMED, ids=repr)
def test_malformed_input_raises_bad_request(data: Any) -> None:
    with pytest.raises(BadRequest):
        deserialize(data, _no_blobs, execution=str, asset=str)


UNHASHABLE = [
    {TAG: "dict", "items": [[[1], 2]]},
    {TAG: "set", "items": [[1]]},
]


@pytest.mark.parametrize("data", UNHASHABLE, ids=repr)
def test_unhashable_members_raise_bad_request(data: Any) -> None:
    with pytest.raises(BadRequest, match="unhashable"):
        deserialize(data, _no_blobs, execution=str, asset=str)


@pytest.mark.parametrize("data", MALFORMED, ids=repr)
def test_malformed_input_refused_by_describe_and_canonical(data: Any) -> None:
    with pytest.raises(BadRequest):
        describe(data)
    with pytest.raises(BadRequest):
        canonical(data)


def _forbidden_loads(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("describe unpickled a value")


def _no_blobs(key: str) -> bytes:
    raise AssertionError(f"unexpected blob read {key}")


def _b64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode()


def test_a_blob_key_must_be_exactly_64_hex_digits() -> None:
    key = "a" * 64
    assert describe({TAG: "bytes", "blob": key, "size": 1})["size"] == 1
    for bad in (key + "\n", key + "0", key[:63], key.upper()):
        with pytest.raises(BadRequest, match="64 hex digits"):
            describe({TAG: "bytes", "blob": bad, "size": 1})
