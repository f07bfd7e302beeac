"""``needs_trust``: would a worker unpickle anything in these arguments? (Never unpickles itself.)"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from fractions import Fraction
from typing import Any

import pytest

from coflux.errors import NotFound
from coflux.serialization import serialize
from coflux.trust import needs_trust


class Store:
    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.fetched: list[str] = []

    def put(self, data: bytes) -> str:
        key = hashlib.sha256(data).hexdigest()
        self.blobs[key] = data
        return key

    def get(self, key: str) -> bytes:
        self.fetched.append(key)
        if key not in self.blobs:
            raise NotFound(f"no blob {key}")
        return self.blobs[key]


def _json_value(store: Store, content: Any) -> dict[str, Any]:
    raw = json.dumps(content).encode()
    return {"$c": "json", "blob": store.put(raw), "size": len(raw)}


@pytest.mark.parametrize(
    "value",
    [
        1,
        "text",
        None,
        [1.5, {"a": [True]}],
        (1, 2),
        {1, 2},
        {3: "int key"},
        dt.date(2026, 1, 1),
        b"bytes",
        float("nan"),
    ],
)
def test_plain_values_need_no_trust(value: Any) -> None:
    store = Store()
    assert needs_trust(serialize(value, store.put), store.get) is False


def test_a_pickle_anywhere_needs_trust() -> None:
    store = Store()
    pickled = serialize(Fraction(1, 3), store.put)
    assert pickled["$c"] == "pickle"
    for data in (pickled, [1, pickled], {"a": {"b": [pickled]}}, {"$c": "tuple", "items": [pickled]}):
        assert needs_trust(data, store.get) is True
    # Even where a decoder would not look (an extra key of a tagged value): no guessing.
    assert needs_trust({"$c": "uuid", "value": "x", "extra": pickled}, store.get) is True
    large = serialize(b"x" * 20_000, store.put)  # bytes kept as a blob: not a pickle
    assert "blob" in large and needs_trust(large, store.get) is False
    big_pickle = serialize(Fraction(1, 3) ** 2000, store.put, inline_limit=10)
    assert big_pickle["$c"] == "pickle" and needs_trust(big_pickle, store.get) is True


def test_json_values_are_looked_into_blob_or_inline() -> None:
    store = Store()
    pickled = serialize(Fraction(1, 3), store.put)
    hidden = _json_value(store, [1, {"deep": pickled}])
    assert needs_trust([hidden], store.get) is True
    nested = _json_value(store, {"inner": _json_value(store, [pickled])})
    assert needs_trust(nested, store.get) is True
    harmless = _json_value(store, list(range(100)))
    assert needs_trust(harmless, store.get) is False
    # A decoder reads "b64" before "blob": both are looked at.
    inline = {**harmless, "b64": base64.b64encode(json.dumps([pickled]).encode()).decode()}
    assert needs_trust(inline, store.get) is True


def test_unreadable_json_content_needs_trust_and_missing_blobs_say_so() -> None:
    store = Store()
    assert needs_trust({"$c": "json", "blob": store.put(b"[NaN]"), "size": 5}, store.get) is True
    assert (
        needs_trust({"$c": "json", "blob": store.put(b"[" * 200 + b"]" * 200), "size": 1}, store.get) is True
    )
    assert needs_trust({"$c": "json", "b64": "not base64!", "blob": "0" * 64, "size": 1}, store.get) is True
    with pytest.raises(NotFound):
        needs_trust({"$c": "json", "blob": "f" * 64, "size": 1}, store.get)


def test_each_blob_is_fetched_once() -> None:
    store = Store()
    harmless = _json_value(store, [1, 2, 3])
    assert needs_trust([harmless] * 50, store.get) is False
    assert store.fetched == [harmless["blob"]]
