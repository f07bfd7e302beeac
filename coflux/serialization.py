"""The value codec: Python values <-> *tagged JSON* (docs/architecture.md, "Values on the wire").

Plain JSON stays as it is; anything else becomes an object with the key ``"$c"`` naming its kind.
Bytes and pickled objects at or above ``inline_limit`` bytes are stored through an injected
``put_blob`` and referenced by their SHA-256 key, so this module stays pure: it does no I/O itself.

The server only ever calls :func:`describe`, :func:`references` and :func:`canonical` (and
:func:`coflux.trust.needs_trust`), none of which unpickles anything; :func:`deserialize` runs on the
trusted user side (workers, clients).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import decimal
import hashlib
import json
import math
import re
import uuid
from collections.abc import Callable
from typing import Any, Final

import cloudpickle

from coflux import richvalues
from coflux.errors import BadRequest
from coflux.models import JSON

BlobPut = Callable[[bytes], str]
"""Stores bytes and returns their 64-hex SHA-256 key."""
BlobGet = Callable[[str], bytes]

TAG: Final = "$c"
DEFAULT_INLINE_LIMIT: Final = 16_384
DEFAULT_LARGE_LIMIT: Final = 1_048_576
"""Tagged JSON longer than this (in characters) travels as one ``json`` blob, so that no value can
make a message too large for the wire."""

BLOB_KEY: Final = re.compile(r"[0-9a-f]{64}")
"""A blob's key: the hex SHA-256 of its bytes."""
_FLOAT_WORDS: Final = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}
_SEQUENCE_TAGS: Final = ("tuple", "set", "frozenset")
_VALUE_TAGS: Final = ("float", "datetime", "date", "time", "decimal", "uuid")
_BINARY_TAGS: Final = ("bytes", "pickle", "json")
_REFERENCE_TAGS: Final = {"execution": "execution_id", "asset": "asset_id"}


# -- encoding -------------------------------------------------------------------------------------


def serialize(
    value: Any,
    put_blob: BlobPut,
    *,
    inline_limit: int = DEFAULT_INLINE_LIMIT,
    large_limit: int = DEFAULT_LARGE_LIMIT,
) -> JSON:
    """Encode ``value`` as tagged JSON (strict JSON: no NaN or infinity survives untagged).

    Types are matched exactly: a subclass of ``int``, ``dict``, ``datetime``... is pickled, so it
    comes back as its own class. Raises :class:`~coflux.errors.BadRequest` for a value that can't be
    encoded (a self-referencing container, an object cloudpickle refuses). A value whose tagged JSON
    is longer than ``large_limit`` becomes ``{"$c": "json", "blob": key, "size": n}``.
    """
    data = _Encoder(put_blob, inline_limit).encode(value)
    if isinstance(data, (list, dict)):
        text = json.dumps(data, separators=(",", ":"))
        if len(text) > large_limit:
            raw = text.encode("utf-8")
            return {TAG: "json", "blob": put_blob(raw), "size": len(raw)}
    return data


class _Encoder:
    def __init__(self, put_blob: BlobPut, inline_limit: int) -> None:
        self._put_blob = put_blob
        self._inline_limit = inline_limit
        self._active: set[int] = set()

    def encode(self, value: Any) -> JSON:
        kind = type(value)
        if value is None or kind in (bool, int, str):
            return value
        if kind is float:
            return _encode_float(value)
        if kind in (list, dict, tuple, set, frozenset):
            return self._container(value)
        reference = _reference_of(value)
        if reference is not None:
            return reference
        scalar = _encode_scalar(value)
        if scalar is not None:
            return scalar
        if kind is bytes:
            return self._binary({TAG: "bytes"}, value)
        rich = richvalues.encode(value)
        if rich is not None:
            tag, fields, data = rich
            return self._binary({TAG: tag, **fields}, data)
        return self._pickle(value)

    def _container(self, value: list[Any] | dict[Any, Any] | tuple[Any, ...] | set[Any]) -> JSON:
        if id(value) in self._active:
            raise BadRequest(f"cannot serialize a self-referencing {type(value).__name__}")
        self._active.add(id(value))
        try:
            if isinstance(value, list):
                return [self.encode(item) for item in value]
            if isinstance(value, dict):
                return self._dict(value)
            items = [self.encode(item) for item in value]
            if isinstance(value, (set, frozenset)):
                items.sort(key=canonical)
            return {TAG: type(value).__name__, "items": items}
        finally:
            self._active.discard(id(value))

    def _dict(self, value: dict[Any, Any]) -> JSON:
        if all(type(key) is str and key != TAG for key in value):
            return {key: self.encode(item) for key, item in value.items()}
        return {TAG: "dict", "items": [[self.encode(k), self.encode(v)] for k, v in value.items()]}

    def _binary(self, head: dict[str, JSON], data: bytes) -> JSON:
        if len(data) < self._inline_limit:
            return {**head, "b64": base64.b64encode(data).decode("ascii")}
        return {**head, "blob": self._put_blob(data), "size": len(data)}

    def _pickle(self, value: Any) -> JSON:
        cls = type(value)
        try:
            data = cloudpickle.dumps(value)
        except Exception as err:
            raise BadRequest(f"cannot serialize a {_class_name(cls)}: {err}") from err
        return self._binary({TAG: "pickle", "class": _class_name(cls)}, data)


def _class_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _encode_float(value: float) -> JSON:
    if math.isnan(value):
        return {TAG: "float", "value": "nan"}
    if math.isinf(value):
        return {TAG: "float", "value": "inf" if value > 0 else "-inf"}
    return value


def _encode_scalar(value: Any) -> JSON:
    kind = type(value)
    if kind in (dt.datetime, dt.date, dt.time):
        return {TAG: kind.__name__, "value": value.isoformat()}
    if kind is decimal.Decimal:
        return {TAG: "decimal", "value": str(value)}
    if kind is uuid.UUID:
        return {TAG: "uuid", "value": str(value)}
    return None


def _reference_of(value: Any) -> dict[str, JSON] | None:
    """The tag of an object with ``__coflux_reference__``: ``(tag, id)`` or ``(tag, id, fields)``
    (extra JSON fields merged into the tag)."""
    method = getattr(type(value), "__coflux_reference__", None)
    if method is None:
        return None
    reference = method(value)
    if (
        not isinstance(reference, tuple)
        or len(reference) not in (2, 3)
        or reference[0] not in _REFERENCE_TAGS
        or not isinstance(reference[1], str)
        or (len(reference) == 3 and not isinstance(reference[2], dict))
    ):
        raise BadRequest(f"__coflux_reference__ of {_class_name(type(value))} returned {reference!r}")
    tag, ident = reference[0], reference[1]
    fields = reference[2] if len(reference) == 3 else {}
    extra = {k: v for k, v in fields.items() if k not in (TAG, _REFERENCE_TAGS[tag])}
    return {**extra, TAG: tag, _REFERENCE_TAGS[tag]: ident}


# -- checking tagged JSON -------------------------------------------------------------------------


def tag_of(data: dict[str, JSON]) -> str:
    """Validate a tagged object's shape and return its tag; raise BadRequest if it is malformed."""
    tag = data[TAG]
    if not isinstance(tag, str):
        raise BadRequest(f"malformed tagged value: the tag must be a string, not {tag!r}")
    if tag in _SEQUENCE_TAGS or tag == "dict":
        _require(data, tag, "items", list)
        if tag == "dict" and not all(isinstance(p, list) and len(p) == 2 for p in data["items"]):
            raise BadRequest("malformed tagged dict: each item must be a [key, value] pair")
    elif tag in _VALUE_TAGS:
        _require(data, tag, "value", str)
        decode_value(tag, data["value"])
    elif tag in _REFERENCE_TAGS:
        _require(data, tag, _REFERENCE_TAGS[tag], str)
    elif tag in _BINARY_TAGS:
        _check_binary(data, tag)
    elif tag in richvalues.TAGS:
        richvalues.check(data, tag)
        _check_binary(data, tag)
    else:
        raise BadRequest(f"malformed tagged value: unknown tag {tag!r}")
    return tag


def _plain_items(data: dict[Any, JSON]) -> list[tuple[str, JSON]]:
    """The items of an untagged JSON object, whose keys must be strings."""
    for key in data:
        if not isinstance(key, str):
            raise BadRequest(f"not JSON: an object key {key!r} is not a string")
    return list(data.items())


def _require(data: dict[str, JSON], tag: str, key: str, kind: type) -> None:
    if not isinstance(data.get(key), kind):
        raise BadRequest(f"malformed tagged {tag}: {key!r} must be a {kind.__name__}")


def _check_binary(data: dict[str, JSON], tag: str) -> None:
    if tag == "pickle":
        _require(data, tag, "class", str)
    if "b64" in data and tag != "json":
        _require(data, tag, "b64", str)
        decode_b64(data["b64"])
        return
    blob, size = data.get("blob"), data.get("size")
    if not isinstance(blob, str) or not BLOB_KEY.fullmatch(blob):
        raise BadRequest(f"malformed tagged {tag}: needs 'b64' or a 'blob' key of 64 hex digits")
    if type(size) is not int or size < 0:
        raise BadRequest(f"malformed tagged {tag}: 'size' must be a non-negative integer")


def decode_b64(text: str) -> bytes:
    """Strict base64; malformed text raises BadRequest."""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as err:
        raise BadRequest(f"malformed base64 in tagged value: {err}") from err


def _not_json(data: Any) -> BadRequest:
    return BadRequest(f"not JSON: a {type(data).__name__} in tagged JSON")


# -- decoding -------------------------------------------------------------------------------------


def deserialize(
    data: JSON,
    get_blob: BlobGet,
    *,
    execution: Callable[[str], Any],
    asset: Callable[[str], Any],
) -> Any:
    """Rebuild the Python value of tagged JSON. ``execution`` and ``asset`` turn referenced ids into
    handles. Unpickles: call it only on values from a trusted side. Malformed input: BadRequest."""
    return _Decoder(get_blob, execution, asset).decode(data)


class _Decoder:
    def __init__(
        self,
        get_blob: BlobGet,
        execution: Callable[[str], Any],
        asset: Callable[[str], Any],
    ) -> None:
        self._get_blob = get_blob
        self._references = {"execution": execution, "asset": asset}

    def decode(self, data: JSON) -> Any:
        if data is None or isinstance(data, (bool, int, float, str)):
            return data
        if isinstance(data, list):
            return [self.decode(item) for item in data]
        if not isinstance(data, dict):
            raise _not_json(data)
        if TAG not in data:
            return {key: self.decode(item) for key, item in _plain_items(data)}
        return self._tagged(tag_of(data), data)

    def _tagged(self, tag: str, data: dict[str, JSON]) -> Any:
        if tag in _REFERENCE_TAGS:
            return self._references[tag](data[_REFERENCE_TAGS[tag]])
        if tag in _BINARY_TAGS:
            raw = self._bytes(data)
            if tag == "json":
                return self.decode(_load_json(raw))
            return raw if tag == "bytes" else _unpickle(raw, data["class"])
        if tag in richvalues.TAGS:
            return richvalues.decode(data, tag, self._bytes(data))
        if tag in _VALUE_TAGS:
            return decode_value(tag, data["value"])
        try:
            if tag == "dict":
                return {self.decode(k): self.decode(v) for k, v in data["items"]}
            items = [self.decode(item) for item in data["items"]]
            return {"tuple": tuple, "set": set, "frozenset": frozenset}[tag](items)
        except TypeError as err:  # an unhashable key or set member
            raise BadRequest(f"malformed tagged {tag}: {err}") from err

    def _bytes(self, data: dict[str, JSON]) -> bytes:
        if "b64" in data:
            return decode_b64(data["b64"])
        return self._get_blob(data["blob"])


def _load_json(raw: bytes) -> JSON:
    try:
        return json.loads(raw)
    except ValueError as err:
        raise BadRequest(f"malformed json blob: {err}") from err


def _unpickle(raw: bytes, class_name: str) -> Any:
    try:
        return cloudpickle.loads(raw)
    except Exception as err:
        raise BadRequest(f"cannot unpickle a {class_name}: {err}") from err


def decode_value(tag: str, text: str) -> Any:
    """The value of a ``float``, date, time, ``decimal`` or ``uuid`` tag (safe on any side)."""
    try:
        if tag == "float":
            if text not in _FLOAT_WORDS:
                raise ValueError(text)
            return _FLOAT_WORDS[text]
        if tag == "datetime":
            return dt.datetime.fromisoformat(text)
        if tag == "date":
            return dt.date.fromisoformat(text)
        if tag == "time":
            return dt.time.fromisoformat(text)
        if tag == "uuid":
            return uuid.UUID(text)
        return decimal.Decimal(text)
    except (ValueError, decimal.InvalidOperation) as err:
        raise BadRequest(f"malformed tagged {tag}: {text!r}") from err


# -- server side: describe, references, canonical -------------------------------------------------


def describe(data: JSON) -> JSON:
    """Plain JSON for display. Tuples and sets become lists; dates ISO strings; decimals and UUIDs
    strings; NaN and infinities the strings ``"nan"``/``"inf"``/``"-inf"``. Bytes and pickles become
    ``{"type": "object", "class", "size"}``, references ``{"type": "execution" | "asset", ...}``,
    a dict with non-string keys ``{"type": "dict", "items": [[k, v], ...]}``. Never unpickles."""
    if data is None or isinstance(data, (bool, int, float, str)):
        return data
    if isinstance(data, list):
        return [describe(item) for item in data]
    if not isinstance(data, dict):
        raise _not_json(data)
    if TAG not in data:
        return {key: describe(item) for key, item in _plain_items(data)}
    return _describe_tagged(tag_of(data), data)


def _describe_tagged(tag: str, data: dict[str, JSON]) -> JSON:
    if tag in _VALUE_TAGS:
        return data["value"]
    if tag in _SEQUENCE_TAGS:
        return [describe(item) for item in data["items"]]
    if tag in _REFERENCE_TAGS:
        key = _REFERENCE_TAGS[tag]
        return {"type": tag, key: data[key]}
    if tag in _BINARY_TAGS:
        size = len(decode_b64(data["b64"])) if "b64" in data else data["size"]
        name = {"bytes": "builtins.bytes", "json": "json"}.get(tag) or data["class"]
        return {"type": "object", "class": name, "size": size}
    if tag in richvalues.TAGS:
        return richvalues.describe(data, tag, _binary_size(data))
    pairs = data["items"]
    if all(isinstance(key, str) for key, _ in pairs):
        return {key: describe(value) for key, value in pairs}
    return {"type": "dict", "items": [[describe(k), describe(v)] for k, v in pairs]}


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
            for _, item in _plain_items(data):
                _collect_references(item, found)
            return
        tag = tag_of(data)
        if tag == "execution":
            found[data["execution_id"]] = None
        elif tag in _SEQUENCE_TAGS or tag == "dict":
            _collect_references(data["items"], found)
    elif not (data is None or isinstance(data, (bool, int, float, str))):
        raise _not_json(data)


def canonical(data: JSON) -> bytes:
    """Deterministic bytes of tagged JSON, for cache and memo keys: keys sorted, no whitespace, and
    the items of tagged dicts and sets in a fixed order, so equal values give equal bytes."""
    try:
        return _dumps(_normalize(data)).encode("utf-8")
    except ValueError as err:  # NaN or infinity outside a float tag
        raise BadRequest(f"not strict JSON: {err}") from err


def _dumps(data: JSON) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _normalize(data: JSON) -> JSON:
    if isinstance(data, list):
        return [_normalize(item) for item in data]
    if not isinstance(data, dict):
        if data is None or isinstance(data, (bool, int, float, str)):
            return data
        raise _not_json(data)
    if TAG not in data:
        return {key: _normalize(item) for key, item in _plain_items(data)}
    tag = tag_of(data)
    if tag == "dict" or tag in ("set", "frozenset"):
        items = [_normalize(item) for item in data["items"]]
        items.sort(key=_dumps)
        return {**data, "items": items}
    if tag == "tuple":
        return {**data, "items": _normalize(data["items"])}
    if tag in richvalues.TAGS:
        return _content_addressed(data)
    return data


def _binary_size(data: dict[str, JSON]) -> int:
    return len(decode_b64(data["b64"])) if "b64" in data else data["size"]


def _content_addressed(data: dict[str, JSON]) -> JSON:
    """An array, frame or series by the SHA-256 of its bytes, inline or not: the same value gives
    the same key whatever the inline limit of the worker that encoded it."""
    digest = hashlib.sha256(decode_b64(data["b64"])).hexdigest() if "b64" in data else data["blob"]
    fields = {key: value for key, value in data.items() if key not in ("b64", "blob", "size")}
    return {**fields, "sha256": digest}
