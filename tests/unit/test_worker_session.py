"""Which thread may touch what of a worker's session: the loop's state only on its loop, the
channel from anywhere."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from coflux.errors import CofluxError
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
