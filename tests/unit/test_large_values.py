"""Values too large for one message travel as blobs, whatever their type."""

from __future__ import annotations

from typing import Any

from coflux.descriptors import describe
from coflux.errors import TEXT_LIMIT, error_to_data
from coflux.serialization import deserialize, serialize


def _store() -> tuple[dict[str, bytes], Any, Any]:
    import hashlib

    blobs: dict[str, bytes] = {}

    def put(data: bytes) -> str:
        key = hashlib.sha256(data).hexdigest()
        blobs[key] = data
        return key

    return blobs, put, blobs.__getitem__


def _decode(data: Any, get: Any) -> Any:
    return deserialize(data, get, execution=lambda i: i, asset=lambda i: i)


def test_a_large_plain_json_value_becomes_one_json_blob_and_comes_back() -> None:
    blobs, put, get = _store()
    value = {"rows": [{"n": i, "name": f"row {i}", "when": (i, i + 1)} for i in range(40_000)]}
    data = serialize(value, put, large_limit=100_000)
    assert data["$c"] == "json" and data["blob"] in blobs and data["size"] > 100_000
    assert _decode(data, get) == value
    described = describe(data)
    assert isinstance(described, dict) and described.pop("preview")["text"].startswith("{'rows': [{'n': 0,")
    assert described == {"type": "object", "class": "json", "size": data["size"]}


def test_small_values_stay_inline() -> None:
    blobs, put, get = _store()
    value = {"a": [1, 2, 3], "b": (4, 5)}
    data = serialize(value, put)
    assert not blobs and "$c" not in data
    assert _decode(data, get) == value


def test_error_messages_and_tracebacks_are_capped() -> None:
    data = error_to_data(ValueError("x" * (3 * TEXT_LIMIT)))
    assert len(data["message"]) <= TEXT_LIMIT and data["message"].endswith("(truncated)")
    assert len(data["traceback"]) <= TEXT_LIMIT
