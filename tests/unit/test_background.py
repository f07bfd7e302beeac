"""The background loop the worker and the live widgets share, and the URL of their websockets."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest

from coflux.background import BackgroundLoop, ThreadOwner, websocket_url
from coflux.errors import CofluxError
from coflux.notebook.live import Endpoint, events_url
from coflux.worker.settings import WorkerSettings


async def _forever(cancelled: threading.Event) -> None:
    try:
        await asyncio.sleep(3600)
    finally:
        cancelled.set()


@pytest.fixture
def background() -> Iterator[BackgroundLoop]:
    loop = BackgroundLoop("coflux-test")
    loop.start()
    yield loop
    loop.stop(5.0)


def test_the_loop_runs_on_a_daemon_thread_of_its_own(background: BackgroundLoop) -> None:
    async def where() -> tuple[str, bool]:
        thread = threading.current_thread()
        return thread.name, thread.daemon

    assert background.run(where, timeout=5.0) == ("coflux-test", True)
    assert threading.current_thread().name != "coflux-test"


def test_call_soon_runs_callbacks_in_order_from_any_thread(background: BackgroundLoop) -> None:
    seen: list[int] = []
    done = threading.Event()
    threads = [threading.Thread(target=background.call_soon, args=(seen.append, i)) for i in range(3)]
    for thread in threads:
        thread.start()
        thread.join()
    background.call_soon(done.set)
    assert done.wait(5.0)
    assert seen == [0, 1, 2]


def test_run_gives_the_result_or_the_error_and_times_out(background: BackgroundLoop) -> None:
    async def add(a: int, b: int) -> int:
        await asyncio.sleep(0)
        return a + b

    async def fail() -> None:
        raise ValueError("no")

    cancelled = threading.Event()
    assert background.run(add, 2, 3, timeout=5.0) == 5
    with pytest.raises(ValueError, match="no"):
        background.run(fail, timeout=5.0)
    with pytest.raises(TimeoutError):
        background.run(_forever, cancelled, timeout=0.05)
    assert cancelled.wait(5.0), "the task that timed out is cancelled"


def test_stop_cancels_what_still_runs_and_ends_the_thread() -> None:
    background = BackgroundLoop("coflux-test-stop")
    background.start()
    cancelled = threading.Event()
    future = background.submit(_forever, cancelled)
    background.stop(5.0)
    assert cancelled.is_set() and future.cancelled()
    assert "coflux-test-stop" not in {t.name for t in threading.enumerate()}
    assert not background.call_soon(print)
    with pytest.raises(CofluxError):
        background.submit(_forever, cancelled)
    background.stop(5.0)  # a second stop does nothing


def test_a_loop_starts_once() -> None:
    background = BackgroundLoop("coflux-test-once")
    background.start()
    try:
        with pytest.raises(CofluxError, match="already started"):
            background.start()
    finally:
        background.stop(5.0)


def test_a_thread_owner_refuses_other_threads_once_claimed() -> None:
    owner = ThreadOwner()
    seen: list[bool] = []
    assert owner.held()  # unclaimed: set-up may happen anywhere
    owner.claim()
    assert owner.held()
    thread = threading.Thread(target=lambda: seen.append(owner.held()))
    thread.start()
    thread.join()
    assert seen == [False]


@pytest.mark.parametrize(
    ("base", "expected"),
    [
        ("http://127.0.0.1:8888/coflux", "ws://127.0.0.1:8888/coflux/ws/events?project=p"),
        ("https://hub.example/user/ana/coflux/", "wss://hub.example/user/ana/coflux/ws/events?project=p"),
        ("ws://h/coflux", "ws://h/coflux/ws/events?project=p"),
        ("http://h/coflux?token=abc", "ws://h/coflux/ws/events?token=abc&project=p"),
        ("http://h/coflux?project=old", "ws://h/coflux/ws/events?project=p"),
    ],
)
def test_a_websocket_url_keeps_the_base_and_its_query(base: str, expected: str) -> None:
    assert websocket_url(base, "ws/events", {"project": "p"}) == expected


def test_the_worker_and_the_widgets_build_their_urls_alike() -> None:
    settings = WorkerSettings(url="http://127.0.0.1:8888/coflux/", project="demo-1")
    assert settings.websocket_url == "ws://127.0.0.1:8888/coflux/ws/worker?project=demo-1"
    endpoint = Endpoint("https://h/coflux", None, "demo-1")
    assert events_url(endpoint) == "wss://h/coflux/ws/events?project=demo-1"
