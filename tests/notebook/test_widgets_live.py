"""The live watcher behind the widgets: polling when the events socket is refused, bursts
coalesced, listeners held weakly, a clean close."""

from __future__ import annotations

import gc
import threading
import time
import weakref

import pytest

from coflux.notebook import live
from coflux.notebook.widgets import RunTree
from tests.support.harness import Server, free_port, start_run, wait_for_run, wait_until
from tests.support.notebook import FakeSession

pytestmark = pytest.mark.e2e


class CountingTree(RunTree):
    """A RunTree that counts the updates the watcher asks of it."""

    updates = 0

    def live_update(self) -> None:
        self.updates += 1
        super().live_update()


class Counter:
    def __init__(self) -> None:
        self.updates = 0
        self.in_update = 0
        self.overlapped = False
        self._lock = threading.Lock()

    def live_update(self) -> None:
        with self._lock:
            self.in_update += 1
            self.overlapped |= self.in_update > 1
        time.sleep(0.05)
        with self._lock:
            self.in_update -= 1
            self.updates += 1


def _collected() -> bool:
    gc.collect()
    return True


def test_the_watcher_polls_while_the_events_socket_is_refused(server: Server, session: FakeSession) -> None:
    refused = free_port()  # nothing listens there
    watcher = live.Watcher(url_of=lambda _endpoint: f"ws://127.0.0.1:{refused}/coflux/ws/events")
    try:
        run_id = start_run(server, "widget_flows:ticks", 3, 0.2)
        tree = CountingTree(run_id, session=session, watcher=watcher)
        assert tree.run["status"] == "running"

        wait_until(lambda: tree.run["status"] == "succeeded", 30, "the tree to succeed by polling")
        endpoint = live.Endpoint.of(session)
        assert not watcher.connected(endpoint)
        assert tree.updates >= 1

        time.sleep(0.2)  # an update may have been due as it finished
        settled = tree.updates
        time.sleep(2.5 * live.POLL_INTERVAL)
        assert tree.updates == settled  # a finished run is no longer polled
        tree.close()
    finally:
        watcher.close()


def test_a_burst_of_events_costs_few_updates_never_two_at_once(server: Server, session: FakeSession) -> None:
    watcher = live.Watcher(poll_interval=600, min_interval=0.1)
    try:
        endpoint = live.Endpoint.of(session)
        run_id = start_run(server, "widget_flows:ticks", 30, 0.0)
        listener = Counter()
        watcher.watch(endpoint, listener, runs=[run_id])
        wait_until(lambda: watcher.connected(endpoint), 10, "the events socket")
        started = time.monotonic()
        wait_for_run(server, run_id)
        time.sleep(0.5)
        elapsed = time.monotonic() - started
        # 30 steps publish well over 60 events; updates are spaced by at least min_interval
        assert 1 <= listener.updates <= elapsed / 0.1 + 3
        assert not listener.overlapped
    finally:
        watcher.close()


def test_a_garbage_collected_listener_is_no_longer_watched(server: Server, session: FakeSession) -> None:
    watcher = live.Watcher()
    try:
        endpoint = live.Endpoint.of(session)
        listener = Counter()
        watcher.watch(endpoint, listener, runs=["Rnothing"])
        assert watcher.watching(endpoint) == [listener]
        wait_until(lambda: watcher.connected(endpoint), 10, "the events socket")

        del listener

        wait_until(lambda: _collected() and watcher.watching(endpoint) == [], 5, "the listener to go")
        wait_until(lambda: not watcher.connected(endpoint), 10, "the unused socket to close")
    finally:
        watcher.close()


def test_a_closed_and_dropped_run_tree_is_collected_and_unwatched(
    server: Server, session: FakeSession
) -> None:
    watcher = live.Watcher()
    try:
        run_id = start_run(server, "widget_flows:ticks", 1, 0.01)
        tree = RunTree(run_id, session=session, watcher=watcher)
        endpoint = live.Endpoint.of(session)
        assert watcher.watching(endpoint) == [tree]
        collected = weakref.ref(tree)

        tree.close()
        del tree

        # An update already under way may hold it a moment; nothing of the watcher's keeps it.
        wait_until(lambda: _collected() and collected() is None, 5, "the tree to be collected")
        assert watcher.watching(endpoint) == []
    finally:
        watcher.close()


def test_close_stops_the_thread_promptly_even_with_sockets_open(server: Server, session: FakeSession) -> None:
    before = set(threading.enumerate())
    watcher = live.Watcher()
    endpoint = live.Endpoint.of(session)
    listener = Counter()
    watcher.watch(endpoint, listener, runs=["Rnothing"])
    wait_until(lambda: watcher.connected(endpoint), 10, "the events socket")
    threads = {t for t in set(threading.enumerate()) - before if t.name == "coflux-live"}
    assert len(threads) == 1

    started = time.monotonic()
    watcher.close()

    assert time.monotonic() - started < live.STOP_TIMEOUT
    assert not any(t.is_alive() for t in threads)
    watcher.watch(endpoint, listener, runs=["Rnothing"])  # after close: ignored, starts nothing
    assert not watcher.connected(endpoint)
    assert watcher.watching(endpoint) == []
