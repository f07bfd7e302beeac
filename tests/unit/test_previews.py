"""Readable previews of tagged JSON (coflux.preview): one test per kind of value, built by the codec."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import hashlib
import math
import uuid
from typing import Any

import pytest

from coflux.errors import BadRequest
from coflux.preview import preview
from coflux.serialization import TAG, serialize


@dataclasses.dataclass
class Model:
    weights: list[int]


@dataclasses.dataclass(frozen=True)
class Ref:
    tag: str
    ident: str

    def __coflux_reference__(self) -> tuple[str, str]:
        return (self.tag, self.ident)


def _put(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def shown(value: Any, limit: int = 1000) -> str:
    return preview(serialize(value, _put), limit)


def test_plain_json_reads_as_python_with_strings_in_double_quotes() -> None:
    assert (
        shown({"a": [1, 2.5], "b": None, "c": True, "d": "it's"})
        == '{"a": [1, 2.5], "b": None, "c": True, "d": "it\'s"}'
    )
    assert shown("Lisbon") == '"Lisbon"'
    assert shown([]) == "[]" and shown({}) == "{}"


def test_dict_keys_of_any_type() -> None:
    assert shown({3: 5}) == "{3: 5}"
    assert shown({(1, "x"): None, 2.5: [1]}) == '{(1, "x"): None, 2.5: [1]}'
    assert shown({"$c": 1}) == '{"$c": 1}'  # a key that looks like the tag stays a key


def test_tuples_sets_and_frozensets() -> None:
    assert shown((1, 2)) == "(1, 2)"
    assert shown((1,)) == "(1,)"
    assert shown(()) == "()"
    assert shown({2, 1}) == "{1, 2}"
    assert shown(set()) == "set()"
    assert shown(frozenset({1})) == "frozenset({1})"
    assert shown(frozenset()) == "frozenset()"


def test_inline_bytes_and_blob_bytes() -> None:
    assert shown(b"abc") == "b'abc'"
    assert shown(b"\x00\xff") == "b'\\x00\\xff'"
    assert shown(b"x" * 20_000) == f"b'{'x' * 100}'… (20,000 bytes)"  # the worker's preview
    assert preview({TAG: "bytes", "blob": "b" * 64, "size": 20_000}) == "<bytes, 20,000 bytes>"


def test_dates_times_decimals_and_uuids_as_their_reprs() -> None:
    assert shown(dt.datetime(2026, 1, 2, 3, 4)) == "datetime.datetime(2026, 1, 2, 3, 4)"
    assert shown(dt.date(2026, 1, 2)) == "datetime.date(2026, 1, 2)"
    assert shown(dt.time(1, 2, 3)) == "datetime.time(1, 2, 3)"
    assert shown(decimal.Decimal("1.50")) == "Decimal('1.50')"
    assert shown(uuid.UUID(int=5)) == "UUID('00000000-0000-0000-0000-000000000005')"


def test_nan_and_infinities() -> None:
    assert shown([math.nan, math.inf, -math.inf, 0.1]) == "[nan, inf, -inf, 0.1]"


def test_a_pickled_object_is_named_by_its_class_and_size_and_never_unpickled() -> None:
    size = 3025
    data = {TAG: "pickle", "class": "__main__.Model", "blob": "a" * 64, "size": size}
    assert preview(data) == "<__main__.Model object, 3,025 bytes>"
    inline = serialize(Model([1, 2]), _put)
    assert isinstance(inline, dict) and "b64" in inline  # not a blob: its size is read from base64
    del inline["preview"]  # as from a worker that wrote none
    assert preview(inline).startswith(f"<{__name__}.Model object, ") and preview(inline).endswith(" bytes>")
    assert shown(Model([1, 2])) == "Model(weights=[1, 2])"  # the worker's preview, when it wrote one
    # bytes that would fail to unpickle still preview: nothing is unpickled
    assert preview({TAG: "pickle", "class": "x.Y", "b64": "AAAA"}) == "<x.Y object, 3 bytes>"


def test_a_large_value_kept_as_a_json_blob() -> None:
    assert preview({TAG: "json", "blob": "b" * 64, "size": 2_000_000}) == "<value, 2,000,000 bytes>"


def test_execution_and_asset_references_as_their_ids() -> None:
    assert shown([Ref("execution", "R1:2:1"), Ref("asset", "A9")]) == "[<execution R1:2:1>, <asset A9>]"


def test_nested_values() -> None:
    assert shown({"k": [(1, {2: frozenset({b"z"})})]}) == "{\"k\": [(1, {2: frozenset({b'z'})})]}"


def test_past_the_limit_a_preview_is_cut_with_an_ellipsis() -> None:
    assert shown(list(range(10)), 12) == "[0, 1, 2, 3…"
    assert len(shown(list(range(100_000)), 50)) == 50
    assert shown([1, 2], 6) == "[1, 2]"  # exactly full is not cut
    assert shown("x" * 100, 10) == '"xxxxxxxx…'
    assert shown(b"y" * 10_000, 10) == "b'yyyyyyy…"
    assert shown({"a": {"b": "c" * 50}}, 20) == '{"a": {"b": "cccccc…'


def test_malformed_tagged_json_is_refused_as_the_codec_refuses_it() -> None:
    with pytest.raises(BadRequest):
        preview({TAG: "nonsense"})
    with pytest.raises(BadRequest):
        preview({TAG: "bytes", "blob": "not-a-key", "size": 1})
