"""Fixtures of the unit tests: the scripted fake server and workers connected to it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

import coflux.worker as cf
from tests.support.worker_server import WAIT, FakeServer


@pytest.fixture
def server() -> Iterator[FakeServer]:
    fake = FakeServer()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def worker(server: FakeServer) -> Iterator[Callable[..., cf.Worker]]:
    started: list[cf.Worker] = []

    def start(targets: list[cf.Target[..., Any]], **options: Any) -> cf.Worker:
        options = {"token": "T", "project": "proj", "workspace": "dev", **options}
        instance = cf.Worker(targets, url=server.url, concurrency=2, **options)
        instance.start()
        started.append(instance)
        instance.wait_connected(WAIT)
        server.expect("hello")
        return instance

    yield start
    for instance in started:
        instance.stop(timeout=0.5)
