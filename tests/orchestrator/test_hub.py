"""The hub: projects on first use, tokens, and orchestrators that stop when idle."""

from __future__ import annotations

from pathlib import Path

import pytest

from coflux.errors import BadRequest, Conflict, NotFound
from coflux.orchestrator import Hub, HubSettings
from coflux.orchestrator.clock import FakeClock
from coflux.tokens import Scope
from tests.support.service import FakeWorker, run, settle


def _hub(tmp_path: Path, idle_timeout: float = 300.0) -> Hub:
    return Hub(HubSettings(data_dir=tmp_path, secret=b"s" * 32, idle_timeout=idle_timeout))


def test_projects_are_created_listed_and_named_safely(tmp_path: Path) -> None:
    async def scenario() -> None:
        hub = _hub(tmp_path)
        try:
            with pytest.raises(NotFound):
                await hub.project("nope")
            await hub.create_project("alpha")
            with pytest.raises(Conflict):
                await hub.create_project("alpha")
            for bad in ("../up", "a/b", "", ".hidden", "x" * 57):
                with pytest.raises(BadRequest):
                    await hub.create_project(bad)
            assert hub.list_projects() == ["alpha"]
        finally:
            await hub.close()

    run(scenario)


def test_project_tokens_grant_their_own_project_and_scope_only(tmp_path: Path) -> None:
    hub = _hub(tmp_path)
    alpha = hub.token("alpha", Scope.WORKER)
    assert hub.grant("alpha", alpha) is Scope.WORKER
    assert hub.grant("beta", alpha) is None
    assert hub.grant("alpha", alpha[:-1] + ("0" if alpha[-1] != "0" else "1")) is None
    assert _hub(tmp_path).grant("alpha", alpha) is Scope.WORKER  # same secret: valid after a restart
    submit = hub.token("alpha", Scope.SUBMIT)
    assert hub.grant("alpha", submit) is Scope.SUBMIT
    # The scope in clear can't be changed: it is signed.
    assert hub.grant("alpha", submit.replace("cfx_submit_", "cfx_worker_")) is None


def test_an_idle_orchestrator_stops_and_starts_again_on_use(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = FakeClock()
        hub = Hub(HubSettings(data_dir=tmp_path, secret=b"s" * 32, idle_timeout=300), clock)
        try:
            service = await hub.project("alpha", create=True)
            worker = FakeWorker(service)
            worker.hello()
            for _ in range(40):  # 400 s, with a heartbeat every 10
                clock.advance(10)
                worker.say(type="heartbeat", running=[])
            assert hub.running == ["alpha"]  # a connected worker keeps it up
            clock.advance(30)  # no heartbeat: closed after 15 s, its session forgotten 10 s later
            assert worker.closed is not None and not service.engine.sessions
            await settle(service)  # what forgetting it changed is written: nothing is left to do
            clock.advance(290)
            assert hub.running == ["alpha"]  # idle for less than 300 s
            clock.advance(30)
            assert hub.running == []
            again = await hub.project("alpha")
            assert again is not service
            assert [w["name"] for w in await again.list_workspaces()] == ["main"]  # nothing lost
        finally:
            await hub.close()

    run(scenario)
