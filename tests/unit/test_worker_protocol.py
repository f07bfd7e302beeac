"""The worker against the scripted fake server of ``tests.support.worker_server`` (a real tornado
websocket server on 127.0.0.1 that checks every frame the worker sends and answers as scripted)."""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import coflux.worker as cf
from coflux.errors import ExecutionCancelled, NotFound, Unauthorized
from coflux.protocol import Message
from coflux.worker import transport
from coflux.worker.runner import run_worker
from tests.support.worker_server import WAIT, FakeServer, add, twice

# -- targets the worker serves ----------------------------------------------------------------------


@cf.task(retries=cf.Retries(2, when=lambda e: "transient" in str(e)))
def explode(message: str) -> None:
    raise ValueError(message)


@cf.workflow()
def parent(x: int) -> int:
    awaited = add(x, b=5)  # submit with await: true
    handle = add.submit(x + 2)  # submit, then a separate wait
    return awaited + handle.result()


@cf.workflow()
def careful() -> str:
    try:
        add(1)
    except KeyError as err:
        return f"caught {err.args[0]}"
    except NotFound as err:
        return f"refused: {err.message}"
    except ExecutionCancelled:
        return "child cancelled"
    return "no error"


@cf.workflow()
def fan_out(n: int) -> list[str]:
    handles = [add.submit(i) for i in range(n)]
    return [h.id for h in handles]


@cf.workflow()
def impatient() -> str:
    with cf.group("batch"):
        handle = add.submit(1)
    first = handle.poll(timeout=0.05, default="pending")
    handle.cancel()
    return str(first)


@cf.task()
def chatty() -> int:
    print("hello from the task")
    cf.log_info("processed {count} rows", count=3)
    return 1


@cf.task()
def blocked() -> None:
    add(0)  # never resolved: the server aborts this execution


@cf.task()
def big(data: bytes) -> bytes:
    return data * 2


# -- tests -------------------------------------------------------------------------------------------


def test_hello_execute_complete_ack(server: FakeServer, worker: Callable[..., cf.Worker]) -> None:
    worker([add, parent], register=True, provides={"gpu": ["a100"]})
    hello = server.hellos[0]
    assert hello["protocol"] == 1
    assert hello["workspace"] == "dev"
    assert hello["session_id"] is None
    assert (hello["concurrency"], hello["register"], hello["running"]) == (2, True, [])
    assert hello["provides"] == {"gpu": ["a100"]}
    assert hello["targets"] == [add.definition.to_json(), parent.definition.to_json()]
    headers, project = server.requests[0]
    assert headers["Authorization"] == "token T"
    assert project == "proj"

    server.execute("Rabc:1:1", add, 1, 2)
    # a quick execution goes straight to its outcome: no ``started`` frame
    complete = server.expect("complete", skip=("heartbeat",))
    assert complete["execution_id"] == "Rabc:1:1"
    assert complete["outcome"] == {"state": "succeeded", "value": 3}
    server.send({"type": "ack", "seqs": [complete["seq"]]})
    assert server.expect("heartbeat")["running"] == []


def test_messages_that_share_the_welcomes_frame_are_handled(
    server: FakeServer, worker: Callable[..., cf.Worker]
) -> None:
    server.with_welcome = [
        {
            "type": "execute",
            "execution_id": "Rw:1:1",
            "module": add.module,
            "target": add.name,
            "arguments": [5, 6],
        }
    ]
    worker([add])
    complete = server.expect("complete")
    assert (complete["execution_id"], complete["outcome"]) == ("Rw:1:1", {"state": "succeeded", "value": 11})


def test_an_execution_that_runs_a_while_is_reported_started(
    server: FakeServer, worker: Callable[..., cf.Worker]
) -> None:
    worker([blocked, add])
    server.execute("Rb:1:1", blocked)
    assert server.expect("started", skip=("heartbeat", "submit")) == {
        "type": "started",
        "execution_id": "Rb:1:1",
    }


def test_unacknowledged_results_are_resent_after_a_reconnect(
    server: FakeServer, worker: Callable[..., cf.Worker]
) -> None:
    instance = worker([add])
    server.execute("Rabc:1:1", add, 40, 2)
    first = server.expect("complete")
    server.drop()  # before acknowledging

    second_hello = server.expect("hello")
    assert second_hello["session_id"] == "S1"
    assert second_hello["running"] == ["Rabc:1:1"]  # still held: don't abandon it
    again = server.expect("complete")
    assert again == first
    server.send({"type": "ack", "seqs": [first["seq"]]})

    server.execute("Rabc:2:1", add, 1)
    later = server.expect("complete")
    assert (later["execution_id"], later["seq"]) == ("Rabc:2:1", first["seq"] + 1)
    server.send({"type": "ack", "seqs": [later["seq"]]})
    server.quiet(0.3)
    server.drop()
    assert server.expect("hello")["running"] == []
    server.quiet(0.5)  # acknowledged results are not sent again
    assert instance.connected


def test_child_submit_and_resolved_round_trip(server: FakeServer, worker: Callable[..., cf.Worker]) -> None:
    worker([add, parent])
    server.execute("Rp:1:1", parent, 10)

    awaited = server.expect("submit")
    assert awaited["parent_execution_id"] == "Rp:1:1"
    assert awaited["call_index"] == 0
    assert (awaited["module"], awaited["target"], awaited["target_type"]) == (
        add.module,
        "add",
        "task",
    )
    assert awaited["arguments"] == [10, 5]
    assert awaited["await"] is True
    assert awaited["options"] == add.definition.options.to_json()
    server.send(
        {
            "type": "submitted",
            "request_id": awaited["request_id"],
            "execution_id": "Rp:2:1",
            "step_id": "Rp:2",
        }
    )
    server.send(
        {
            "type": "resolved",
            "request_id": awaited["request_id"],
            "execution_id": "Rp:2:1",
            "outcome": {"state": "succeeded", "value": 15},
        }
    )

    submitted = server.expect("submit")
    assert (submitted["call_index"], submitted["await"], submitted["arguments"]) == (
        1,
        False,
        [12, 100],
    )
    server.send({"type": "submitted", "request_id": submitted["request_id"], "execution_id": "Rp:3:1"})
    wait = server.expect("wait")
    assert (wait["execution_id"], wait["from_execution_id"]) == ("Rp:3:1", "Rp:1:1")
    assert wait["request_id"] not in (awaited["request_id"], submitted["request_id"])
    outcome = {"state": "succeeded", "value": 112}
    server.send(
        {
            "type": "resolved",
            "request_id": wait["request_id"],
            "execution_id": "Rp:3:1",
            "outcome": outcome,
        }
    )

    complete = server.expect("complete")
    assert complete["outcome"] == {"state": "succeeded", "value": 127}


def test_submits_are_pipelined(server: FakeServer, worker: Callable[..., cf.Worker]) -> None:
    """A fan-out doesn't wait for each submit's answer: all 300 arrive before any is answered."""
    worker([add, fan_out])
    server.execute("Rf:1:1", fan_out, 300)
    submits = [server.expect("submit") for _ in range(300)]
    assert [s["call_index"] for s in submits] == list(range(300))
    for number, submit in enumerate(submits, start=2):
        server.send(
            {
                "type": "submitted",
                "request_id": submit["request_id"],
                "execution_id": f"Rf:{number}:1",
            }
        )
    complete = server.expect("complete")
    assert complete["outcome"]["value"] == [f"Rf:{n}:1" for n in range(2, 302)]


def test_failed_task_sends_type_message_and_traceback(
    server: FakeServer, worker: Callable[..., cf.Worker]
) -> None:
    worker([explode])
    server.execute("Re:1:1", explode, "transient glitch")
    outcome = server.expect("complete")["outcome"]
    assert outcome["state"] == "failed"
    assert outcome["retryable"] is True  # the Retries.when predicate ran on the worker
    error = outcome["error"]
    assert (error["type"], error["message"]) == ("builtins.ValueError", "transient glitch")
    assert "in explode" in error["traceback"]
    assert "ValueError: transient glitch" in error["traceback"]

    server.execute("Re:2:1", explode, "bad input")
    assert server.expect("complete")["outcome"]["retryable"] is False


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (
            {
                "outcome": {
                    "state": "failed",
                    "error": {"type": "builtins.KeyError", "message": "k"},
                }
            },
            "caught k",
        ),
        ({"outcome": {"state": "cancelled"}}, "child cancelled"),
        ({"error": {"code": "not_found", "message": "no target add"}}, "refused: no target add"),
    ],
)
def test_child_failures_raise_in_the_parent(
    server: FakeServer,
    worker: Callable[..., cf.Worker],
    answer: dict[str, Any],
    expected: str,
) -> None:
    worker([careful])
    server.execute("Rc:1:1", careful)
    submit = server.expect("submit")
    if "error" in answer:
        server.send({"type": "error", "request_id": submit["request_id"], **answer["error"]})
    else:
        resolved = {
            "type": "resolved",
            "request_id": submit["request_id"],
            "execution_id": "Rc:2:1",
        }
        server.send({**resolved, **answer})
    assert server.expect("complete")["outcome"] == {"state": "succeeded", "value": expected}


def test_poll_cancel_and_group(server: FakeServer, worker: Callable[..., cf.Worker]) -> None:
    worker([impatient])
    server.execute("Ri:1:1", impatient)
    submit = server.expect("submit")
    assert submit["options"]["group"] == "batch"
    server.send({"type": "submitted", "request_id": submit["request_id"], "execution_id": "Ri:2:1"})
    wait = server.expect("wait")
    assert wait["execution_id"] == "Ri:2:1"
    # the poll timed out: the wait is withdrawn, so the server counts the parent as busy again
    assert server.expect("unwait") == {"type": "unwait", "request_id": wait["request_id"]}
    cancel = server.expect("cancel")
    assert cancel["execution_id"] == "Ri:2:1"
    server.send({"type": "reply", "request_id": cancel["request_id"]})
    assert server.expect("complete")["outcome"] == {"state": "succeeded", "value": "pending"}


def test_pending_submit_is_resent_after_a_reconnect(
    server: FakeServer, worker: Callable[..., cf.Worker]
) -> None:
    worker([add, careful])
    server.execute("Rr:1:1", careful)
    first = server.expect("submit")
    server.drop()
    assert server.expect("hello")["running"] == ["Rr:1:1"]
    again = server.expect("submit")
    assert again == first  # same request_id and call_index: the server de-duplicates
    server.send(
        {
            "type": "resolved",
            "request_id": again["request_id"],
            "execution_id": "Rr:2:1",
            "outcome": {"state": "succeeded", "value": 2},
        }
    )
    assert server.expect("complete")["outcome"]["value"] == "no error"


def _resolve(server: FakeServer, submit: Message, value: Any, **extra: Any) -> None:
    server.send(
        {
            "type": "resolved",
            "request_id": submit["request_id"],
            "execution_id": f"Rt:{submit['call_index'] + 2}:1",
            "outcome": {"state": "succeeded", "value": value},
            **extra,
        }
    )


def test_a_submit_answered_ahead_is_resent_pinned_until_its_commit_is_proven(
    server: FakeServer, worker: Callable[..., cf.Worker]
) -> None:
    """A ``resolved`` with ``ahead`` answers the caller at once, but the server may still lose the
    step: until a later message proves that commit, a reconnect re-sends the submit, pinned with
    ``cached_from`` to the result it was answered with, before the parent's result."""
    worker([add, twice])
    server.execute("Rt:1:1", twice, 1)
    first = server.expect("submit")
    _resolve(server, first, 101, ahead=7, cached_from="Rs:2:1")
    second = server.expect("submit")  # the caller went on with the value
    assert second["call_index"] == 1
    server.send(
        {"type": "execute", "execution_id": "Rx:1:1", "module": "m", "target": "nope", "arguments": []}
    )
    failed = server.expect("complete")  # an ``execute`` proves no commit: nothing is forgotten
    server.drop()

    assert server.expect("hello")["running"] == ["Rt:1:1", "Rx:1:1"]
    assert server.expect("submit") == {**first, "cached_from": "Rs:2:1"}
    assert server.expect("complete") == failed  # unacknowledged
    assert server.expect("submit") == second  # then what was never answered
    server.send({"type": "ack", "seqs": [failed["seq"]]})
    _resolve(server, first, 101)  # the server had it (or made it again): answered after a commit
    _resolve(server, second, 102, ahead=1, cached_from="Rs:3:1")  # a new connection counts anew
    complete = server.expect("complete")
    assert complete["outcome"] == {"state": "succeeded", "value": 203}
    server.drop()  # before the parent's result is acknowledged

    assert server.expect("hello")["running"] == ["Rt:1:1"]
    assert server.expect("submit") == {**second, "cached_from": "Rs:3:1"}  # before the result
    assert server.expect("complete") == complete
    server.send({"type": "ack", "seqs": [complete["seq"]]})  # sent after a commit: proves it
    server.quiet(0.3)
    server.drop()
    assert server.expect("hello")["running"] == []
    server.quiet(0.5)


def test_a_later_batch_proves_the_commit_of_an_earlier_answer(
    server: FakeServer, worker: Callable[..., cf.Worker]
) -> None:
    worker([add, twice])
    server.execute("Rt:1:1", twice, 1)
    first = server.expect("submit")
    _resolve(server, first, 101, ahead=7, cached_from="Rs:2:1")
    second = server.expect("submit")
    _resolve(server, second, 102, ahead=8, cached_from="Rs:3:1")  # batch 7 has committed
    complete = server.expect("complete")
    server.drop()
    assert server.expect("hello")["running"] == ["Rt:1:1"]
    assert server.expect("submit") == {**second, "cached_from": "Rs:3:1"}  # only batch 8's
    assert server.expect("complete") == complete


def test_frames_are_written_through_the_public_api_without_a_frame_writer() -> None:
    """The worker writes frames through tornado's frame writer when the protocol has one (see
    ``transport._write_text``); without one it falls back to ``write_message``."""
    written: list[str] = []

    class Plain:
        protocol = object()  # no ``_write_frame``

        def write_message(self, text: str) -> asyncio.Future[None]:
            written.append(text)
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            future.set_result(None)
            return future

    async def write() -> None:
        transport._write_text(Plain(), '{"type":"heartbeat","running":[]}')  # type: ignore[arg-type]

    asyncio.run(write())
    assert written == ['{"type":"heartbeat","running":[]}']


def test_print_and_log_calls_go_to_the_execution_log(
    server: FakeServer, worker: Callable[..., cf.Worker]
) -> None:
    worker([chatty])
    server.execute("Rl:1:1", chatty)
    entries: list[dict[str, Any]] = []
    while len(entries) < 2:
        log = server.expect("log", skip=("heartbeat", "started"))
        assert log["execution_id"] == "Rl:1:1"
        entries.extend(log["entries"])
    assert [(e["level"], e["message"]) for e in entries] == [
        ("stdout", "hello from the task"),
        ("info", "processed 3 rows"),
    ]
    assert all(isinstance(e["timestamp"], float) for e in entries)
    server.expect("complete", skip=("heartbeat", "log"))


def test_abort_drops_the_result_and_wakes_blocked_waits(
    server: FakeServer, worker: Callable[..., cf.Worker]
) -> None:
    worker([blocked, add])
    server.execute("Ra:1:1", blocked)
    server.expect("submit")
    assert server.expect("heartbeat")["running"] == ["Ra:1:1"]
    server.send({"type": "abort", "execution_id": "Ra:1:1"})
    server.execute("Ra:2:1", add, 1)
    complete = server.expect("complete")
    assert complete["execution_id"] == "Ra:2:1"  # nothing for the aborted one
    server.send({"type": "ack", "seqs": [complete["seq"]]})
    assert server.expect("heartbeat")["running"] == []
    server.quiet(0.3)


def test_large_values_travel_as_blobs(server: FakeServer, worker: Callable[..., cf.Worker]) -> None:
    worker([big])
    data = b"0123456789" * 5_000
    key = hashlib.sha256(data).hexdigest()
    server.blobs[key] = data
    server.execute("Rb:1:1", big, {"$c": "bytes", "blob": key, "size": len(data)})
    value = server.expect("complete")["outcome"]["value"]
    assert value["$c"] == "bytes"
    assert server.blobs[value["blob"]] == data * 2


def test_unknown_target_fails_the_execution(server: FakeServer, worker: Callable[..., cf.Worker]) -> None:
    worker([add])
    server.execute("Ru:1:1", chatty)
    outcome = server.expect("complete")["outcome"]
    assert outcome["state"] == "failed"
    assert outcome["error"]["type"] == "coflux.errors.NotFound"


def test_a_refused_handshake_is_reported(server: FakeServer) -> None:
    server.refuse_with = "unauthorized"
    instance = cf.Worker([add], url=server.url, token="wrong", project="proj")
    with instance, pytest.raises(Unauthorized):
        instance.wait_connected(WAIT)


def test_a_final_refusal_ends_the_attempts(server: FakeServer) -> None:
    server.refuse_with = "unauthorized"
    instance = cf.Worker([add], url=server.url, token="wrong", project="proj")
    with instance:
        with pytest.raises(Unauthorized):
            instance.wait_connected(WAIT)
        time.sleep(1.0)  # the backoff (0.1 s doubling) would have made several more attempts
        assert len(server.hellos) == 1
        status = instance.status()
        assert status is not None and (status.state, status.reason) == ("refused", "no")


def test_a_handshake_refused_for_now_is_retried(server: FakeServer) -> None:
    server.refuse_with = "conflict"  # e.g. a session of another workspace: the next hello starts afresh
    instance = cf.Worker([add], url=server.url, token="T", project="proj")
    with instance:
        deadline = time.monotonic() + WAIT
        while not server.hellos and time.monotonic() < deadline:
            time.sleep(0.01)
        status = instance.status()
        assert status is not None and status.state in ("connecting", "waiting")
        server.refuse_with = None
        instance.wait_connected(WAIT)
    assert len(server.hellos) >= 2 and server.hellos[-1]["session_id"] is None


def test_run_worker_serves_a_module_file_and_reloads_it(server: FakeServer, tmp_path: Path) -> None:
    module = tmp_path / "flows_under_test.py"
    module.write_text(
        "import coflux.worker as cf\n\n@cf.workflow()\ndef hello(name):\n    return 'hi ' + name\n"
    )
    stop = threading.Event()
    runner = threading.Thread(
        target=run_worker,
        args=([str(module)], "proj", "dev", server.url, "T"),
        kwargs={"dev": True, "stop": stop},
    )
    runner.start()
    try:
        hello = server.expect("hello")
        [target] = hello["targets"]
        assert (target["module"], target["name"], hello["register"]) == (
            "flows_under_test",
            "hello",
            True,
        )
        time.sleep(0.3)  # let the watcher start
        module.write_text(module.read_text().replace("'hi '", "'hello '"))
        declare = server.expect("declare")
        assert declare["register"] is True
        assert declare["targets"][0]["version"] != target["version"]
    finally:
        stop.set()
        runner.join(WAIT)
    assert not runner.is_alive()
