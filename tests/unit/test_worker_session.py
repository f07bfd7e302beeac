"""Which thread may touch what of a worker's session: the loop's state only on its loop, the
channel from anywhere."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator

import pytest

from coflux.errors import CofluxError
from coflux.models import ExecutionId
from coflux.worker import outbox
from coflux.worker import session as session_module
from coflux.worker.settings import WorkerSettings
from coflux.worker.worker import Worker


@pytest.fixture
def nowhere() -> Iterator[str]:
    """A URL where nothing listens (the port is held, never listened on)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/coflux"


def test_the_sessions_loop_side_refuses_other_threads(nowhere: str) -> None:
    worker = Worker(settings=WorkerSettings(url=nowhere, project="p"))
    worker.start()
    try:
        status = worker._session.board.wait(lambda s: s.state == "waiting", 10.0)  # type: ignore[union-attr]
        assert status.state == "waiting"
        session = worker._session
        assert session is not None
        with pytest.raises(AssertionError, match="off the session's loop thread"):
            session.received({"type": "ack", "seqs": []})
        with pytest.raises(AssertionError, match="off the session's loop thread"):
            session.hello()
    finally:
        worker.stop(2.0)


def test_the_channel_takes_calls_from_any_thread_and_refuses_them_once_stopped(nowhere: str) -> None:
    worker = Worker(settings=WorkerSettings(url=nowhere, project="p"))
    worker.start()
    session = worker._session
    assert session is not None
    requests = []

    def ask() -> None:
        message = {"type": "wait", "request_id": session.channel.next_request_id(), "execution_id": "R:1:1"}
        requests.append(session.channel.request(message, None))

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for thread in threads:
        thread.start()
        thread.join()
    worker.stop(2.0)
    late = session.channel.request({"type": "wait", "request_id": 99, "execution_id": "R:1:1"}, None)
    for request in [*requests, late]:
        with pytest.raises(CofluxError, match="the worker has stopped"):
            request.wait_finished(1.0)


def test_an_item_posted_once_the_loop_has_closed_is_left_for_stop_not_raised() -> None:
    """The window between the loop's end and ``Worker.stop`` closing the outbox: an execution
    thread's post must not raise the loop's ``RuntimeError``; the item stays for stop to fail."""
    loop = asyncio.new_event_loop()
    loop.close()
    box = outbox.Outbox(lambda: session_module._call_soon(loop, lambda: None))
    item = outbox.Log(ExecutionId("R:1:1"), {"message": "late"})
    assert box.post(item)
    assert box.close() == [item]
