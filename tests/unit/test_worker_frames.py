"""What the worker writes stays within the server's limits (against the scripted fake server of
``test_worker_protocol``, which refuses a frame as the real one does): a burst larger than a frame
may hold is split; and how frames are read."""

from __future__ import annotations

from collections.abc import Callable

import pytest

import coflux.worker as cf
from coflux import protocol
from coflux.errors import ProtocolError
from tests.unit.test_worker_protocol import FakeServer, server, worker

__all__ = ["server", "worker"]  # the fixtures this module uses


@cf.task()
def noop(i: int) -> int:
    return i


@cf.workflow()
def wide(n: int) -> int:
    handles = [noop.submit(i) for i in range(n)]  # sent at once, answered later (never, here)
    return len([h.id for h in handles])


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
