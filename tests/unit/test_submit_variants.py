"""A worker's ``submit`` is read once into the variant it is; a combination that means nothing is
refused before anything is made."""

from __future__ import annotations

from typing import Any

import pytest

from coflux.errors import BadRequest, ProtocolError
from coflux.orchestrator.calls import parse
from coflux.protocol import AnsweredSubmit, AwaitedSubmit, Call, CarriedSubmit, PlainSubmit


def submit(**fields: Any) -> dict[str, Any]:
    message = {
        "type": "submit",
        "request_id": 4,
        "parent_execution_id": "R1:1:1",
        "module": "m",
        "target": "child",
        "target_type": "task",
        "arguments": [1],
        "call_index": 0,
        "options": {"cache": None},
    }
    return {**message, **fields}


CALL = Call(4, "R1:1:1", 0, "m", "child", "task", [1], {"cache": None})


def test_each_variant_is_read_with_what_it_carries() -> None:
    assert parse(submit()) == PlainSubmit(CALL)
    assert parse(submit(**{"await": False, "cached_from": "R0:2:1"})) == PlainSubmit(CALL)
    assert parse(submit(**{"await": True})) == AwaitedSubmit(CALL, None)
    assert parse(submit(**{"await": True, "cached_from": "R0:2:1"})) == AwaitedSubmit(CALL, "R0:2:1")
    answered = submit(**{"await": True, "answered": True, "cached_from": "R0:2:1"})
    assert parse(answered) == AnsweredSubmit(CALL, "R0:2:1")
    carried = submit(
        **{"await": True, "execution_id": "R1:2:1", "outcome": {"state": "succeeded", "value": 3}}
    )
    assert parse(carried) == CarriedSubmit(CALL, "R1:2:1", {"state": "succeeded", "value": 3})
    assert parse(submit(call_index=None)).call == Call(
        4, "R1:1:1", None, "m", "child", "task", [1], {"cache": None}
    )


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"answered": True, "await": True}, "an answered submit needs call_index, await and cached_from"),
        ({"answered": True, "cached_from": "R0:2:1"}, "an answered submit needs call_index, await"),
        (
            {"outcome": {"state": "succeeded", "value": 1}, "execution_id": "R1:2:1"},
            "needs call_index, await",
        ),
        ({"outcome": {"state": "succeeded", "value": 1}, "await": True}, "needs the execution_id"),
        (
            {"outcome": {"state": "failed", "error": {}}, "await": True, "execution_id": "R1:2:1"},
            "only a succeeded",
        ),
    ],
)
def test_a_combination_that_means_nothing_is_refused(fields: dict[str, Any], error: str) -> None:
    with pytest.raises(BadRequest, match=error):
        parse(submit(**fields))


def test_a_call_index_out_of_range_is_malformed_whatever_the_variant() -> None:
    with pytest.raises(ProtocolError, match="call_index must be an integer"):
        parse(submit(call_index=-1, answered=True))
