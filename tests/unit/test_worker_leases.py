"""Cache leases, the worker's side (against the scripted fake server of ``tests.support.worker_server``):
an answer with a lease lets identical calls of the same run be answered here, each sent
``answered`` and pinned, kept until ``recorded`` and re-sent after a reconnect; ``uncache``, the
hit's max age and a dropped connection end the lease."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import coflux.worker as cf
from coflux.protocol import Message
from coflux.worker.leases import LIMIT, Leases
from tests.support.worker_server import FakeServer

SOURCE = "Rs:2:1"
_RESENT = ("heartbeat", "log", "started", "complete")


@cf.task()
def square(x: int) -> int:
    return x * x


@cf.workflow()
def squares(n: int, x: int) -> list[int]:
    return [square(x) for _ in range(n)]


def _submit_of(server: FakeServer, parent: str) -> Message:
    """The next submit of ``parent``, past what the reconnect re-sent for earlier executions
    (their results and calls, never acknowledged in these tests)."""
    resent = []
    for _ in range(50):
        message = server.expect("submit", skip=_RESENT)
        if message["parent_execution_id"] == parent:
            return message
        resent.append(message)
    raise AssertionError(f"no submit of {parent}; got {resent}")


def _answer(server: FakeServer, submit: Message, value: Any, lease: dict[str, Any] | None) -> None:
    message = {
        "type": "resolved",
        "request_id": submit["request_id"],
        "execution_id": f"Rl:{submit['call_index'] + 2}:1",
        "outcome": {"state": "succeeded", "value": value},
        "ahead": 3,
        "cached_from": SOURCE,
    }
    if lease is not None:
        message["lease"] = lease
    server.send(message)


def _leased_run(server: FakeServer, execution_id: str, n: int, ttl: float | None = None) -> Message:
    """``squares(n, 4)`` whose first call is answered with a lease; returns that first submit."""
    server.execute(execution_id, squares, n, 4)
    first = server.expect("submit")
    assert "answered" not in first
    _answer(server, first, 16, {"key": "K", "ttl": ttl})
    return first


def test_identical_calls_of_the_run_are_answered_here_and_recorded(
    server: FakeServer, worker: Callable[..., cf.Worker]
) -> None:
    worker([square, squares])
    first = _leased_run(server, "Rl:1:1", 3)
    answered = [server.expect("submit") for _ in range(2)]
    for call_index, message in enumerate(answered, start=1):
        assert message == {
            **first,
            "request_id": message["request_id"],
            "call_index": call_index,
            "cached_from": SOURCE,
            "answered": True,
        }
    complete = server.expect("complete")
    assert complete["outcome"] == {"state": "succeeded", "value": [16, 16, 16]}

    server.send({"type": "ack", "seqs": []})  # proves batch 3, but only ``recorded`` the calls
    server.quiet(0.1)
    server.drop()  # before ``recorded``: both are re-sent, before the result
    assert server.expect("hello")["running"] == ["Rl:1:1"]
    assert [server.expect("submit") for _ in range(2)] == answered
    assert server.expect("complete") == complete
    server.send({"type": "recorded", "request_ids": [m["request_id"] for m in answered]})
    server.send({"type": "ack", "seqs": [complete["seq"]]})
    server.quiet(0.2)
    server.drop()
    assert server.expect("hello")["running"] == []
    server.quiet(0.3)  # nothing left to re-send


def test_no_lease_means_every_call_goes_to_the_server(
    server: FakeServer, worker: Callable[..., cf.Worker]
) -> None:
    worker([square, squares])
    server.execute("Rl:1:1", squares, 2, 4)
    first = server.expect("submit")
    _answer(server, first, 16, None)  # e.g. memo decides this call: no lease
    second = server.expect("submit")
    assert "answered" not in second and second["call_index"] == 1
    _answer(server, second, 16, None)
    assert server.expect("complete")["outcome"]["value"] == [16, 16]


def test_uncache_another_run_and_a_dropped_connection_end_the_lease(
    server: FakeServer, worker: Callable[..., cf.Worker]
) -> None:
    worker([square, squares])
    _leased_run(server, "Rl:1:1", 1)
    server.expect("complete")
    server.execute("Rl:5:1", squares, 1, 4)  # the same run: answered here
    assert server.expect("submit")["answered"] is True
    server.expect("complete")
    server.execute("Rm:1:1", squares, 1, 4)  # another run: asked
    other = server.expect("submit")
    assert "answered" not in other
    _answer(server, other, 16, None)
    server.expect("complete")

    server.send({"type": "uncache", "keys": ["K"]})
    server.execute("Rl:6:1", squares, 1, 4)
    asked = server.expect("submit")
    assert "answered" not in asked
    _answer(server, asked, 16, {"key": "K", "ttl": None})  # leased again
    server.expect("complete")
    server.send({"type": "uncache", "all": True})
    server.execute("Rl:7:1", squares, 1, 4)
    asked = server.expect("submit")
    assert "answered" not in asked
    _answer(server, asked, 16, {"key": "K", "ttl": None})
    server.expect("complete")

    server.drop()  # a revocation could be lost with the connection: the lease goes too
    server.expect("hello")
    server.execute("Rl:8:1", squares, 1, 4)
    message = _submit_of(server, "Rl:8:1")
    assert "answered" not in message


def test_a_lease_ends_with_the_hits_max_age(server: FakeServer, worker: Callable[..., cf.Worker]) -> None:
    worker([square, squares])
    _leased_run(server, "Rl:1:1", 2, ttl=0.4)
    assert server.expect("submit")["answered"] is True  # within the max age
    server.expect("complete")
    time.sleep(0.45)
    server.execute("Rl:5:1", squares, 1, 4)
    assert "answered" not in server.expect("submit")


def test_leases_grant_only_on_success_and_keep_a_bounded_number() -> None:
    leases = Leases()
    answer = {"cached_from": SOURCE, "lease": {"key": "K", "ttl": None}}
    leases.grant("failed", answer, {"state": "failed", "error": {}})
    leases.grant("unpinned", {"lease": {"key": "K", "ttl": None}}, {"state": "succeeded", "value": 1})
    leases.grant(
        "too old", {**answer, "lease": {"key": "K", "ttl": 0.01}}, {"state": "succeeded", "value": 1}
    )
    assert len(leases) == 0
    for index in range(LIMIT + 10):
        leases.grant(index, answer, {"state": "succeeded", "value": index})
    assert len(leases) == LIMIT
    assert leases.get(0) is None and leases.get(LIMIT + 9) is not None  # the oldest went first
    leases.revoke(["other"])
    assert len(leases) == LIMIT
    leases.revoke(["K"])
    assert len(leases) == 0
