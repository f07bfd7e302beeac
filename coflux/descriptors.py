"""What the server reads of a value (tagged JSON, :mod:`coflux.serialization`) without decoding it:
:func:`describe` (plain JSON for people and the REST run view, with the worker's preview when it is
well formed) and :func:`references` (the executions a value refers to). Neither unpickles anything
nor reads a blob."""

from __future__ import annotations

from coflux import richvalues, valuepreviews
from coflux.models import JSON
from coflux.serialization import (
    BINARY_TAGS,
    REFERENCE_TAGS,
    SEQUENCE_TAGS,
    TAG,
    VALUE_TAGS,
    binary_size,
    decode_b64,
    not_json,
    plain_items,
    tag_of,
)


def describe(data: JSON) -> JSON:
    """Plain JSON for display. Tuples and sets become lists; dates ISO strings; decimals and UUIDs
    strings; NaN and infinities the strings ``"nan"``/``"inf"``/``"-inf"``. Bytes and pickles become
    ``{"type": "object", "class", "size"}``, references ``{"type": "execution" | "asset", ...}``,
    a dict with non-string keys ``{"type": "dict", "items": [[k, v], ...]}``. A tag's preview, if
    well formed and small (:func:`coflux.valuepreviews.checked`), goes on as ``"preview"``; any other
    is left out. Never unpickles."""
    if data is None or isinstance(data, (bool, int, float, str)):
        return data
    if isinstance(data, list):
        return [describe(item) for item in data]
    if not isinstance(data, dict):
        raise not_json(data)
    if TAG not in data:
        return {key: describe(item) for key, item in plain_items(data)}
    return _describe_tagged(tag_of(data), data)


def _describe_tagged(tag: str, data: dict[str, JSON]) -> JSON:
    if tag in VALUE_TAGS:
        return data["value"]
    if tag in SEQUENCE_TAGS:
        return [describe(item) for item in data["items"]]
    if tag in REFERENCE_TAGS:
        return _with_preview(_describe_reference(tag, data), data)
    if tag in BINARY_TAGS:
        size = len(decode_b64(data["b64"])) if "b64" in data else data["size"]
        name = {"bytes": "builtins.bytes", "json": "json"}.get(tag) or data["class"]
        return _with_preview({"type": "object", "class": name, "size": size}, data)
    if tag in richvalues.TAGS:
        return _with_preview(richvalues.describe(data, tag, binary_size(data)), data)
    pairs = data["items"]
    if all(isinstance(key, str) for key, _ in pairs):
        return {key: describe(value) for key, value in pairs}
    return {"type": "dict", "items": [[describe(k), describe(v)] for k, v in pairs]}


def _describe_reference(tag: str, data: dict[str, JSON]) -> dict[str, JSON]:
    key = REFERENCE_TAGS[tag]
    described: dict[str, JSON] = {"type": tag, key: data[key]}
    if tag == "asset":
        name, entries = data.get("name"), data.get("entries")
        if isinstance(name, str) or (name is None and "name" in data):
            described["name"] = name
        if type(entries) is int and entries >= 0:
            described["entries"] = entries
    return described


def _with_preview(described: JSON, data: dict[str, JSON]) -> JSON:
    """``described`` with the worker's preview of the value, if it is well formed (a malformed or
    oversized one is left out: the value stays)."""
    preview = valuepreviews.checked(data.get("preview"))
    if preview is None or not isinstance(described, dict):
        return described
    return {**described, "preview": preview}


def references(data: JSON) -> list[str]:
    """The execution ids referenced anywhere in ``data``, once each, in order of appearance."""
    found: dict[str, None] = {}
    _collect_references(data, found)
    return list(found)


def _collect_references(data: JSON, found: dict[str, None]) -> None:
    if isinstance(data, list):
        for item in data:
            _collect_references(item, found)
    elif isinstance(data, dict):
        if TAG not in data:
            for _, item in plain_items(data):
                _collect_references(item, found)
            return
        tag = tag_of(data)
        if tag == "execution":
            found[data["execution_id"]] = None
        elif tag in SEQUENCE_TAGS or tag == "dict":
            _collect_references(data["items"], found)
    elif not (data is None or isinstance(data, (bool, int, float, str))):
        raise not_json(data)
