"""What the worker writes stays within the server's limits and order (against the scripted fake
server of ``tests.support.worker_server``, which refuses a frame as the real one does): a burst larger
than a frame may hold is split, and log lines kept while disconnected go before the results
re-sent after a reconnect."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

import coflux.worker as cf
from coflux import protocol
from coflux.errors import ProtocolError
from tests.support.worker_server import WAIT, FakeServer

RELEASE = threading.Event()


@cf.task()
def noop(i: int) -> int:
    return i


@cf.workflow()
def wide(n: int) -> int:
    handles = [noop.submit(i) for i in range(n)]  # sent at once, answered later (never, here)
    return len([h.id for h in handles])


@cf.task()
def late_printer() -> int:
    RELEASE.wait(WAIT)
    print("printed while disconnected")
    return 7


def _wait_until(predicate: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_a_burst_beyond_a_frames_limit_is_split(server: FakeServer, worker: Callable[..., cf.Worker]) -> None:
    """10,500 unanswered submits, re-sent at once after a reconnect, arrive in frames the server
    takes (each at most ``MAX_FRAME_MESSAGES``), in order."""
    count = protocol.MAX_FRAME_MESSAGES + 500
    worker([noop, wide])
    server.execute("Rw:1:1", wide, count)
    first = [server.expect("submit", skip=("heartbeat", "started"))["call_index"] for _ in range(count)]
    server.drop()
    assert server.expect("hello")["running"] == ["Rw:1:1"]
    again = [server.expect("submit", skip=("heartbeat",))["call_index"] for _ in range(count)]
    assert first == again == list(range(count))


def test_log_lines_kept_while_disconnected_precede_the_resent_result(
    server: FakeServer, worker: Callable[..., cf.Worker]
) -> None:
    """The server keeps log lines only of executions assigned to the worker: the lines an
    execution wrote while the worker was away must reach it before the execution's result."""
    RELEASE.clear()
    instance = worker([late_printer])
    server.execute("Rp:1:1", late_printer)
    server.expect("started", skip=("heartbeat",))
    server.hold_welcome = True
    server.drop()
    server.expect("hello", skip=("heartbeat",))  # back, but not welcomed yet
    RELEASE.set()  # it prints and returns while the worker waits for its welcome
    session = instance._session
    assert session is not None
    _wait_until(lambda: session._unacked, "the result")
    server.release()
    log = server.expect("log", skip=("heartbeat",))
    assert [e["message"] for e in log["entries"]] == ["printed while disconnected"]
    assert server.expect("complete", skip=("heartbeat",))["outcome"]["value"] == 7


def test_frames_split_by_message_count_and_size() -> None:
    small = ['{"type":"heartbeat","running":[]}'] * (2 * protocol.MAX_FRAME_MESSAGES + 1)
    frames = protocol.frames(small)
    assert [len(protocol.decode_batch_from_worker(f)) for f in frames] == [
        protocol.MAX_FRAME_MESSAGES,
        protocol.MAX_FRAME_MESSAGES,
        1,
    ]
    third = protocol.MAX_FRAME_BYTES // 3
    big = [f'{{"type":"heartbeat","running":["{c * third}"]}}' for c in "abcd"]
    frames = protocol.frames(big)
    assert all(len(f) <= protocol.MAX_FRAME_BYTES for f in frames) and len(frames) == 2
    assert [m["running"][0][0] for f in frames for m in protocol.decode_batch_from_worker(f)] == list("abcd")
    assert protocol.frames([]) == []


def test_a_frame_is_read_in_slices_and_refused_past_the_limit() -> None:
    frame = " [ " + " , ".join(['{"type":"heartbeat","running":[]}'] * 5) + " ] "
    reader = protocol.FrameReader(frame)
    assert [len(reader.read(2)) for _ in range(3)] == [2, 2, 1] and reader.done
    over = "[" + ",".join(['{"type":"heartbeat","running":[]}'] * (protocol.MAX_FRAME_MESSAGES + 1)) + "]"
    with pytest.raises(ProtocolError) as caught:
        protocol.decode_batch_from_worker(over)
    assert caught.value.code == "too_large"
    assert protocol.decode_batch_from_worker("[]") == []
    for bad in ("[", "[1,]", '[{"type":"heartbeat","running":[]}] x', '[{"type":"heartbeat","running":[]}}'):
        with pytest.raises(ProtocolError) as caught:
            protocol.decode_batch_from_worker(bad)
        assert caught.value.code == "malformed"


def test_a_message_of_an_array_nests_one_level_less_than_a_frame() -> None:
    limit = protocol.MAX_JSON_DEPTH
    inner = "[" * (limit - 2) + "]" * (limit - 2)  # 126 levels in running, 127 in the message
    ok = '[{"type":"heartbeat","running":' + inner + "}]"
    assert protocol.decode_batch_from_worker(ok)[0]["type"] == "heartbeat"
    deeper = '[{"type":"heartbeat","running":[' + inner + "]}]"
    with pytest.raises(ProtocolError, match="nested more than"):
        protocol.decode_batch_from_worker(deeper)
    with pytest.raises(ProtocolError, match="nested more than"):
        protocol.decode_batch_from_worker("[" + "[" * 100_000)
