"""Strict JSON at the edges: what a worker frame or a request body may hold."""

from __future__ import annotations

import json

import pytest

from coflux import protocol
from coflux.errors import ProtocolError


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        ('"x"', 0),
        ("[]", 1),
        ('[1, {"a": "[[[[{"}, [[]]]', 3),
        ('{"a": "\\"[["}', 1),
        ('["a\\\\", [["b"]]]', 3),
    ],
)
def test_depth_ignores_brackets_inside_strings(text: str, depth: int) -> None:
    assert protocol.depth(text) == depth


@pytest.mark.parametrize("text", ["NaN", "[Infinity]", '{"a": -Infinity}', "1e999", "[-1e400]"])
def test_non_finite_numbers_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="finite"):
        protocol.loads(text)


def test_nesting_beyond_the_limit_is_refused_and_at_the_limit_accepted() -> None:
    limit = protocol.MAX_JSON_DEPTH
    assert protocol.loads("[" * limit + "]" * limit) is not None
    with pytest.raises(ValueError, match="nested more than"):
        protocol.loads("[" * (limit + 1) + "]" * (limit + 1))
    with pytest.raises(ValueError, match="nested more than"):
        protocol.loads("[" * 100_000)  # unbalanced: refused before the parser recurses


def test_strings_and_finite_numbers_pass_unchanged() -> None:
    value = {"a": [1.5, 1e300, -0.0, "NaN", "[[[["], "b": {"c": None}}
    assert protocol.loads(json.dumps(value)) == value


def test_a_worker_frame_with_nan_or_deep_nesting_is_malformed() -> None:
    for frame in ['{"type": "heartbeat", "running": [NaN]}', '{"type": "heartbeat", "running": ' + "[" * 500]:
        with pytest.raises(ProtocolError) as caught:
            protocol.decode_batch_from_worker(frame)
        assert caught.value.code == "malformed"
