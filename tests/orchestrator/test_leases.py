"""Cache leases, the server's side: a hit answered ahead grants the worker a lease on its cache key
when nothing but the cache decides the answer; calls the worker then answers itself arrive
``answered`` (pinned with ``cached_from``) and are recorded exactly as answered; whatever could
change the answer revokes the lease (``uncache``) before it commits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from coflux.errors import BadRequest
from coflux.orchestrator import ProjectService
from coflux.orchestrator.clock import FakeClock
from tests.support.cache import (
    CACHED,
    assert_no_execute,
    call_child,
    compute_next,
    connect_worker,
    lose_pending_batch,
    start_flow,
)
from tests.support.service import FLOW, TASK, FakeWorker, ok, open_service, run, settle


async def _leased(service: ProjectService, worker: FakeWorker, **options: Any) -> dict[str, Any]:
    """A result for ``child(3)`` computed in one run, then hit (answered ahead) from another run's
    first call: returns that run's parent execution and the ``resolved`` answer."""
    first = await start_flow(service, worker)
    worker.say(**call_child(first, 1, 0, [3], **options))
    source = await compute_next(worker, 9)
    parent = await start_flow(service, worker)
    await settle(service)  # the parent's assignment and the result are durable
    worker.say(**call_child(parent, 2, 0, [3], **options))
    resolved = await worker.next("resolved")
    assert resolved["ahead"] and resolved["cached_from"] == source["execution_id"]
    return {"parent": parent, "resolved": resolved, "source": source["execution_id"]}


async def _hit(service: ProjectService, worker: FakeWorker, request_id: int) -> dict[str, Any]:
    """Another run's first ``child(3)``, a hit on the result ``_leased`` computed."""
    parent = await start_flow(service, worker)
    await settle(service)
    worker.say(**call_child(parent, request_id, 0, [3], cache=CACHED))
    resolved = await worker.next("resolved")
    assert resolved["lease"]
    return resolved


def _answered(
    parent: dict[str, Any], request_id: int, call_index: int, source: str, **options: Any
) -> dict[str, Any]:
    return {
        **call_child(parent, request_id, call_index, [3], **options),
        "cached_from": source,
        "answered": True,
    }


async def _uncache(worker: FakeWorker) -> dict[str, Any]:
    return await worker.next("uncache", timeout=1.0)


def test_a_hit_answered_ahead_grants_a_lease_unless_memo_decides(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            worker = await connect_worker(service)
            plain = await _leased(service, worker, cache=CACHED)
            lease = plain["resolved"]["lease"]
            assert isinstance(lease["key"], str) and lease["ttl"] is None

        async with open_service(tmp_path / "aged") as service:
            worker = await connect_worker(service)
            aged = await _leased(service, worker, cache={**CACHED, "max_age": 60})
            assert 59 < aged["resolved"]["lease"]["ttl"] <= 60  # the hit is a fraction of a second old

        async with open_service(tmp_path / "memo") as service:
            worker = await connect_worker(service)
            memoised = await _leased(service, worker, cache=CACHED, memo=True)
            # A second identical call in this run would be a memo hit (no new step): no lease.
            assert "lease" not in memoised["resolved"]

    run(scenario)


def test_an_answered_call_is_recorded_from_its_pin_and_acknowledged_after_the_commit(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            worker = await connect_worker(service)
            leased = await _leased(service, worker, cache=CACHED)
            parent, source = leased["parent"], leased["source"]
            for request_id, call_index in ((3, 1), (4, 2)):
                worker.say(**_answered(parent, request_id, call_index, source, cache=CACHED))
            assert not [m for m in worker.inbox if m["type"] in ("resolved", "recorded")]  # not durable yet
            recorded = await worker.next("recorded")
            assert recorded["request_ids"] == [3, 4]  # one acknowledgement for the commit
            await assert_no_execute(worker)
            steps = (await service.get_run(parent["run_id"]))["steps"][1:]
            assert len(steps) == 3
            for step in steps:
                [execution] = step["executions"]
                assert execution["state"] == "cached" and execution["cached_from"] == source
                assert execution["result"] == 9
            assert not [m for m in worker.inbox if m["type"] == "resolved"]  # the caller had it

            # Re-sent after a reconnect: nothing is made twice, and it is acknowledged again.
            worker.say(**_answered(parent, 4, 2, source, cache=CACHED))
            assert (await worker.next("recorded"))["request_ids"] == [4]
            assert len((await service.get_run(parent["run_id"]))["steps"]) == 4

    run(scenario)


def test_an_answered_call_whose_pin_is_not_its_cached_result_is_refused(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            worker = await connect_worker(service)
            leased = await _leased(service, worker, cache=CACHED)
            parent = leased["parent"]
            wrong = {**_answered(parent, 3, 1, leased["source"], cache=CACHED), "arguments": [4]}
            with pytest.raises(BadRequest, match="is not a cached result of this call"):
                worker.say(**wrong)  # the connection answers this with an ``error``
            unpinned = {**_answered(parent, 4, 1, leased["source"], cache=CACHED), "cached_from": None}
            with pytest.raises(BadRequest, match="needs call_index, await and cached_from"):
                worker.say(**unpinned)
            await settle(service)
            assert len((await service.get_run(parent["run_id"]))["steps"]) == 2  # nothing was made
            await assert_no_execute(worker)

    run(scenario)


def test_a_new_result_for_the_key_revokes_the_lease_before_it_commits(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            worker = await connect_worker(service)
            leased = await _leased(service, worker, cache=CACHED)
            key = leased["resolved"]["lease"]["key"]
            source_step = leased["source"].rsplit(":", 1)[0]
            await service.rerun_step(source_step, None)  # a new execution of the source's step
            execute = await worker.next("execute")
            worker.complete(execute["execution_id"], ok(10))
            # The new entry changes what a hit returns: revoked in the same turn, before the commit.
            assert service.writer.batch.cache_entries
            assert [m for m in worker.inbox if m["type"] == "uncache"] == [{"type": "uncache", "keys": [key]}]
            await worker.next("uncache")
            # The next hit is answered with the new result (and a new lease).
            parent = await start_flow(service, worker)
            await settle(service)
            worker.say(**call_child(parent, 9, 0, [3], cache=CACHED))
            resolved = await worker.next("resolved")
            assert resolved["outcome"] == ok(10) and resolved["lease"]["key"] == key

    run(scenario)


def test_an_identical_call_in_flight_revokes_the_lease(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = FakeClock()
        async with open_service(tmp_path, clock=clock) as service:
            worker = await connect_worker(service)
            leased = await _leased(service, worker, cache={**CACHED, "max_age": 5})
            key = leased["resolved"]["lease"]["key"]
            assert leased["resolved"]["lease"]["ttl"] == 5  # the clock stood still
            clock.advance(5.5)  # too old now: an identical call computes it again
            parent = await start_flow(service, worker)
            worker.say(**call_child(parent, 5, 0, [3], cache={**CACHED, "max_age": 5}))
            assert (await _uncache(worker)) == {"type": "uncache", "keys": [key]}
            assert (await worker.next("execute"))["arguments"] == [3]

    run(scenario)


def test_a_lineage_or_declaration_change_revokes_every_lease(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            await service.create_workspace("base", None)
            worker = await connect_worker(service)
            await _leased(service, worker, cache=CACHED)
            await service.rebase_workspace("main", "base")
            assert (await _uncache(worker)) == {"type": "uncache", "all": True}

            await _hit(service, worker, 7)
            other = FakeWorker(service)  # declares ``child`` with other parameters
            other.hello(targets=[FLOW, {**TASK, "parameters": [{"name": "y"}]}])
            assert (await _uncache(worker)) == {"type": "uncache", "all": True}
            await service.rename_workspace("base", "base2")  # nothing else leased: nobody told
            await settle(service)
            assert not [m for m in worker.inbox if m["type"] == "uncache"]

    run(scenario)


def test_an_answered_call_whose_commit_was_lost_is_recorded_when_resent(tmp_path: Path) -> None:
    """The server dies before the answered call's step commits, and by the time the worker
    re-sends it the result is past its max age: the pin still makes the record match the answer
    the caller used."""

    async def scenario() -> None:
        clock = FakeClock()
        young = {**CACHED, "max_age": 5}
        async with open_service(tmp_path, clock=clock) as service:
            worker = await connect_worker(service)
            leased = await _leased(service, worker, cache=young)
            parent, source = leased["parent"], leased["source"]
            assert worker.session is not None
            session_id = worker.session.session_id
            await settle(service)  # the first hit's step is durable
            answered = _answered(parent, 3, 1, source, cache=young)
            worker.say(**answered)
            lose_pending_batch(service)
        clock.advance(5.5)
        async with open_service(tmp_path, clock=clock) as service:
            assert len((await service.get_run(parent["run_id"]))["steps"]) == 2  # lost
            worker = FakeWorker(service)
            worker.hello(concurrency=8, session_id=session_id, running=[parent["execution_id"]])
            worker.say(**answered)
            assert (await worker.next("recorded"))["request_ids"] == [3]
            await assert_no_execute(worker)
            steps = (await service.get_run(parent["run_id"]))["steps"]
            [execution] = steps[2]["executions"]
            assert execution["state"] == "cached" and execution["cached_from"] == source

    run(scenario)


def test_past_the_limit_the_oldest_leased_key_is_revoked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("coflux.orchestrator.cache.LEASED_KEYS", 1)

    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            worker = await connect_worker(service)
            first = (await _leased(service, worker, cache=CACHED))["resolved"]["lease"]["key"]
            second = (await _leased(service, worker, cache={**CACHED, "namespace": "other"}))["resolved"]
            assert second["lease"]["key"] != first
            assert (await _uncache(worker)) == {"type": "uncache", "keys": [first]}
            assert list(service.engine.cache.leases) == [second["lease"]["key"]]

    run(scenario)
