"""Restart and handshake edge cases."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from coflux.errors import ProtocolError
from tests.support.service import FLOW, TASK, FakeWorker, open_service, run, start_parent, submit_child


def test_a_restored_execution_loses_its_timeout(tmp_path: Path) -> None:
    """Engine.assign arms the timeout timer (engine.py:329); ProjectService._restore re-creates
    assigned executions without it, so after a server restart a hung step never times out."""

    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            worker = FakeWorker(service)
            session = worker.hello(concurrency=4)
            parent = await start_parent(service, worker)
            worker.say(**submit_child(parent, 1, 0, timeout=0.3))
            child = await worker.next("execute")
        async with open_service(tmp_path) as service:
            worker = FakeWorker(service)
            worker.hello(
                session_id=session.session_id, running=[parent["execution_id"], child["execution_id"]]
            )
            await asyncio.sleep(0.8)
            view = await service.get_run(parent["run_id"])
            assert view["steps"][1]["executions"][0]["state"] == "timed_out"

    run(scenario)


def test_a_refused_hello_leaves_a_connected_session_behind(tmp_path: Path) -> None:
    """sessions.py:connect registers the session and installs send/close (lines 62-68) before
    _provides() validates 'provides' (line 71). The hello is refused, the socket closed, but the
    session stays in engine.sessions marked connected (its send is a dead socket), so the project
    never goes idle and, for a resumed session id, the live connection it replaced was closed."""

    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            hello = {
                "type": "hello",
                "protocol": 1,
                "workspace": "main",
                "concurrency": 1,
                "targets": [FLOW, TASK],
                "provides": ["gpu"],  # must be an object
            }
            with pytest.raises(ProtocolError):
                service.connect(hello, lambda m: None, lambda c, r: None)
            assert not service.engine.sessions, service.engine.sessions

    run(scenario)


def test_a_refused_hello_with_a_resumed_session_id_hijacks_the_live_session(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            worker = FakeWorker(service)
            session = worker.hello()
            hello = {
                "type": "hello",
                "protocol": 1,
                "workspace": "main",
                "session_id": session.session_id,
                "concurrency": 1,
                "targets": [FLOW, TASK],
                "provides": "bad",
            }
            with pytest.raises(ProtocolError):
                service.connect(hello, lambda m: None, lambda c, r: None)
            assert worker.closed is None, "the good connection was closed by a refused hello"
            await start_parent(service, worker)  # the healthy worker still gets work

    run(scenario)
