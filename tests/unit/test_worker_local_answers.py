"""A child this worker runs for an awaited call of its own answers that call here, as it completes
(against the scripted fake server of ``tests.support.worker_server``): the caller goes on without a
``resolved``; the call stays pending until one arrives, and after a reconnect it is re-sent with
the outcome its caller used, before any result."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import coflux.worker as cf
from coflux.protocol import Message
from tests.support.worker_server import FakeServer, add, twice

_BACKGROUND = ("heartbeat", "started", "log")


@cf.task(timeout=30)
def patient(x: int) -> int:
    return x + 1


@cf.workflow()
def waits_on_patient(x: int) -> int:
    return patient(x)


@cf.task()
def fails(x: int) -> int:
    raise ValueError(f"no {x}")


@cf.workflow()
def catches(x: int) -> str:
    try:
        fails(x)
    except ValueError as err:
        return f"caught {err}"
    return "no error"


@cf.task()
def nested(x: int) -> int:
    return add(x)  # a call of its own


@cf.workflow()
def calls_nested(x: int) -> int:
    return nested(x)


@cf.task()
def slow(x: int) -> int:
    time.sleep(0.4)
    return x


@cf.workflow()
def waits_on_slow(x: int) -> int:
    return slow(x)


def _run_child(server: FakeServer, submit: Message, number: int, target: cf.Target[..., Any]) -> str:
    """The server makes the call's child and has this worker run it (naming the call it answers)."""
    execution_id = f"Rt:{number}:1"
    server.send(
        {
            "type": "execute",
            "execution_id": execution_id,
            "step_id": f"Rt:{number}",
            "run_id": "Rt",
            "module": target.module,
            "target": target.name,
            "arguments": submit["arguments"],
            "workspace": "dev",
            "attempt": 1,
            "parent_execution_id": submit["parent_execution_id"],
            "call_index": submit["call_index"],
        }
    )
    return execution_id


def _resolve(server: FakeServer, submit: Message, execution_id: str, outcome: dict[str, Any]) -> None:
    message = {"type": "resolved", "request_id": submit["request_id"], "execution_id": execution_id}
    server.send({**message, "outcome": outcome})


def test_a_child_run_here_answers_its_caller_without_a_round_trip(
    server: FakeServer, worker: Callable[..., cf.Worker]
) -> None:
    worker([add, twice])
    server.execute("Rt:1:1", twice, 1)
    first = server.expect("submit")
    one = _run_child(server, first, 2, add)
    done = server.expect("complete")
    assert done["execution_id"] == one and done["outcome"]["value"] == 101
    # The caller has it, so it goes on with no ``resolved``; the server is told which call.
    assert done["answered"] == {"caller": "Rt:1:1", "request_id": first["request_id"]}
    second = server.expect("submit")
    two = _run_child(server, second, 3, add)
    assert server.expect("complete")["answered"] == {"caller": "Rt:1:1", "request_id": second["request_id"]}
    parent = server.expect("complete")
    assert parent["execution_id"] == "Rt:1:1" and parent["outcome"]["value"] == 101 + 102

    server.drop()  # nothing acknowledged yet: the server may have lost the children
    assert sorted(server.expect("hello")["running"]) == ["Rt:1:1", one, two]
    # Re-sent with the outcomes the caller used, before any result reaches the server.
    assert server.expect("submit") == {**first, "execution_id": one, "outcome": done["outcome"]}
    again = server.expect("submit")
    assert again["call_index"] == 1 and again["outcome"]["value"] == 102
    completes = [server.expect("complete") for _ in range(3)]
    assert [c["execution_id"] for c in completes] == [one, two, "Rt:1:1"]
    _resolve(server, first, one, done["outcome"])  # the re-sent call, answered after its commit
    server.send({"type": "ack", "seqs": [completes[1]["seq"]]})  # the second child's result: durable
    server.quiet(0.2)
    server.drop()
    server.expect("hello")
    resent = [server.expect("complete")["execution_id"] for _ in range(2)]
    assert resent == [one, "Rt:1:1"]
    server.quiet(0.3)  # but no call: both were proven, one by ``resolved``, one by the ``ack``


def test_a_child_with_a_timeout_or_a_failure_waits_for_the_server(
    server: FakeServer, worker: Callable[..., cf.Worker]
) -> None:
    worker([patient, waits_on_patient, fails, catches])
    server.execute("Rp:1:1", waits_on_patient, 1)
    submit = server.expect("submit")
    child = _run_child(server, submit, 2, patient)
    complete = server.expect("complete")
    assert "answered" not in complete  # the server may time it out while the result travels
    server.quiet(0.2, skip=_BACKGROUND)  # the caller still waits
    _resolve(server, submit, child, complete["outcome"])
    assert server.expect("complete")["outcome"]["value"] == 2

    server.execute("Rc:1:1", catches, 3)
    submit = server.expect("submit")
    child = _run_child(server, submit, 3, fails)
    complete = server.expect("complete")
    assert complete["outcome"]["state"] == "failed" and "answered" not in complete  # retries are the server's
    server.quiet(0.2, skip=_BACKGROUND)
    _resolve(server, submit, child, complete["outcome"])
    assert server.expect("complete")["outcome"]["value"] == "caught no 3"


def test_a_child_with_calls_of_its_own_waits_for_the_server(
    server: FakeServer, worker: Callable[..., cf.Worker]
) -> None:
    """Its calls, re-sent after a reconnect, need it still running on the server: were it made
    again from its outcome instead, they would be refused."""
    worker([add, nested, calls_nested])
    server.execute("Rn:1:1", calls_nested, 1)
    outer = server.expect("submit")
    middle = _run_child(server, outer, 2, nested)
    inner = server.expect("submit")
    assert inner["parent_execution_id"] == middle
    leaf = _run_child(server, inner, 3, add)
    assert server.expect("complete")["answered"] == {"caller": middle, "request_id": inner["request_id"]}
    done = server.expect("complete")  # the leaf answered its caller here; the caller made a call
    assert done["execution_id"] == middle and done["outcome"]["value"] == 101 and "answered" not in done
    server.quiet(0.2, skip=_BACKGROUND)
    _resolve(server, outer, middle, done["outcome"])
    assert server.expect("complete")["outcome"]["value"] == 101
    assert leaf


def test_a_child_running_across_a_reconnect_no_longer_answers_its_caller(
    server: FakeServer, worker: Callable[..., cf.Worker]
) -> None:
    worker([slow, waits_on_slow])
    server.execute("Rs:1:1", waits_on_slow, 5)
    submit = server.expect("submit")
    child = _run_child(server, submit, 2, slow)
    server.drop()  # while the child runs: the server may make the call's step anew
    server.expect("hello")
    assert server.expect("submit") == submit  # re-sent as it was
    complete = server.expect("complete")
    assert complete["execution_id"] == child and "answered" not in complete
    server.quiet(0.2, skip=_BACKGROUND)
    _resolve(server, submit, child, complete["outcome"])
    assert server.expect("complete")["outcome"]["value"] == 5
