"""Cache across runs and memo within a run, against the real orchestrator and a SQLite store."""

from __future__ import annotations

from pathlib import Path

from coflux.orchestrator.clock import FakeClock
from tests.support.cache import (
    CACHED,
    PAIR,
    assert_no_execute,
    call_child,
    child_state,
    compute_next,
    connect_worker,
    start_flow,
)
from tests.support.service import FLOW, TASK, FakeWorker, ok, open_service, run, settle


def test_a_cached_step_reuses_a_result_from_an_earlier_run(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            worker = await connect_worker(service)
            first = await start_flow(service, worker)
            worker.say(**call_child(first, 1, 0, [3], cache=CACHED, version="v1"))
            computed = await compute_next(worker, 9)

            second = await start_flow(service, worker)
            worker.say(**call_child(second, 2, 0, [3], cache=CACHED, version="v1"))
            resolved = await worker.next("resolved")
            assert resolved["outcome"] == ok(9)
            await assert_no_execute(worker)
            state = await child_state(service, second["run_id"])
            assert state["state"] == "cached" and state["cached"] is True
            assert state["cached_from"] == computed["execution_id"]

            third = await start_flow(service, worker)  # other arguments, or a new version: a miss
            worker.say(**call_child(third, 3, 0, [4], cache=CACHED, version="v1"))
            await compute_next(worker, 16)
            worker.say(**call_child(third, 4, 1, [3], cache=CACHED, version="v2"))
            await compute_next(worker, 9)

    run(scenario)


def test_cache_max_age_params_and_namespace(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = FakeClock()
        async with open_service(tmp_path, clock=clock) as service:
            worker = await connect_worker(service)
            parent = await start_flow(service, worker)
            young = {**CACHED, "max_age": 5}
            worker.say(**call_child(parent, 1, 0, [1], cache=young))
            await compute_next(worker, 1)
            clock.advance(5)
            worker.say(**call_child(parent, 2, 1, [1], cache=young))  # still young enough
            assert (await worker.next("resolved"))["outcome"] == ok(1)
            clock.advance(0.5)
            worker.say(**call_child(parent, 20, 20, [1], cache=young))  # too old now
            await compute_next(worker, 1)

            by_x = {**CACHED, "params": ["x"]}
            worker.say(**call_child(parent, 3, 2, [5, "a"], cache=by_x, target="pair"))
            await compute_next(worker, "five")
            worker.say(
                **call_child(parent, 4, 3, [5, "b"], cache=by_x, target="pair")
            )  # label is not in the key
            assert (await worker.next("resolved"))["outcome"] == ok("five")

            shared = {**CACHED, "namespace": "squares"}
            worker.say(**call_child(parent, 5, 4, [7], cache=shared))
            await compute_next(worker, 49)
            worker.say(**call_child(parent, 6, 5, [7, "x"], cache={**shared, "params": ["x"]}, target="pair"))
            await compute_next(worker, "other key")  # the same namespace, but other parameters
            worker.say(**call_child(parent, 7, 6, [7], cache=shared, target="child"))
            assert (await worker.next("resolved"))["outcome"] == ok(49)
            await assert_no_execute(worker)

    run(scenario)


def test_an_identical_step_in_flight_is_shared(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            worker = await connect_worker(service)
            first, second = await start_flow(service, worker), await start_flow(service, worker)
            worker.say(**call_child(first, 1, 0, [2], cache=CACHED))
            execute = await worker.next("execute")
            worker.say(**call_child(second, 2, 0, [2], cache=CACHED))
            await assert_no_execute(worker)  # it waits for the one in flight
            worker.complete(execute["execution_id"], ok(4))
            outcomes = {(await worker.next("resolved"))["request_id"] for _ in range(2)}
            assert outcomes == {1, 2}
            state = await child_state(service, second["run_id"])
            assert state["state"] == "cached" and state["cached_from"] == execute["execution_id"]

    run(scenario)


def test_cache_is_inherited_by_child_workspaces_only(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            await service.create_workspace("production", None)
            await service.create_workspace("dev", "production")
            await service.create_workspace("staging", "production")
            prod, dev, staging = [await connect_worker(service, w) for w in ("production", "dev", "staging")]
            parent = await start_flow(service, prod, "production")
            prod.say(**call_child(parent, 1, 0, [1], cache=CACHED))
            await compute_next(prod, "from production")

            in_dev = await start_flow(service, dev, "dev")
            dev.say(**call_child(in_dev, 2, 0, [1], cache=CACHED))  # inherited from the base
            assert (await dev.next("resolved"))["outcome"] == ok("from production")
            dev.say(**call_child(in_dev, 3, 1, [2], cache=CACHED))
            await compute_next(dev, "from dev")

            back = await start_flow(service, prod, "production")
            prod.say(**call_child(back, 4, 0, [2], cache=CACHED))  # a base never sees a child's results
            await compute_next(prod, "recomputed in production")
            sibling = await start_flow(service, staging, "staging")
            staging.say(**call_child(sibling, 5, 0, [2], cache=CACHED))  # siblings neither
            assert (await staging.next("resolved"))["outcome"] == ok("recomputed in production")

    run(scenario)


def test_memo_reuses_the_execution_within_a_run_and_creates_no_step(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            worker = await connect_worker(service)
            parent = await start_flow(service, worker)
            worker.say(**call_child(parent, 1, 0, [6], memo=True))
            computed = await compute_next(worker, 36)
            worker.say(**call_child(parent, 2, 1, [6], memo=True))
            resolved = await worker.next("resolved")
            assert resolved["outcome"] == ok(36) and resolved["execution_id"] == computed["execution_id"]
            await assert_no_execute(worker)
            assert len((await service.get_run(parent["run_id"]))["steps"]) == 2  # root + one child

            other = await start_flow(service, worker)  # memo is per run
            worker.say(**call_child(other, 3, 0, [6], memo=True))
            await compute_next(worker, 36)

    run(scenario)


def test_a_workflows_memo_is_the_default_of_its_run(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            memo_flow = {**FLOW, "name": "memo_flow", "options": {"memo": True}}
            worker = FakeWorker(service)
            worker.hello(concurrency=8, targets=[memo_flow, TASK])
            await service.start_run("main", "m", "memo_flow", [0])
            parent = await worker.next("execute")
            worker.say(**call_child(parent, 1, 0, [8]))
            await compute_next(worker, 64)
            worker.say(**call_child(parent, 2, 1, [8]))
            assert (await worker.next("resolved"))["outcome"] == ok(64)
            await assert_no_execute(worker)

    run(scenario)


def test_a_rerun_executes_again_even_when_cached(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            worker = await connect_worker(service)
            parent = await start_flow(service, worker)
            worker.say(**call_child(parent, 1, 0, [1], cache=CACHED))
            computed = await compute_next(worker, 1)
            await service.rerun_step(computed["step_id"], None)
            again = await worker.next("execute")
            assert again["execution_id"] == f"{computed['step_id']}:2"

    run(scenario)


def test_cache_entries_survive_a_restart(tmp_path: Path) -> None:
    big = "x" * 10_000  # larger than what the in-memory index keeps: read back from storage

    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            worker = await connect_worker(service)
            parent = await start_flow(service, worker)
            worker.say(**call_child(parent, 1, 0, [1], cache=CACHED))
            computed = await compute_next(worker, big)
        async with open_service(tmp_path) as service:
            worker = await connect_worker(service)
            parent = await start_flow(service, worker)
            worker.say(**call_child(parent, 2, 0, [1], cache=CACHED))
            assert (await worker.next("resolved"))["outcome"] == ok(big)
            await assert_no_execute(worker)
            assert (await child_state(service, parent["run_id"]))["cached_from"] == computed["execution_id"]

    run(scenario)


def test_a_large_value_hit_in_the_batch_that_writes_it_gets_the_value(tmp_path: Path) -> None:
    """A cached value too big to keep inline, hit before its batch commits: read from memory."""

    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            worker = await connect_worker(service)
            parent = await start_flow(service, worker)
            big = "x" * 10_000
            worker.say(**call_child(parent, 1, 1, [1], cache=CACHED))
            execute = await worker.next("execute")
            # The result and an identical call arrive in one frame: the same, uncommitted batch.
            worker.complete(execute["execution_id"], ok(big))
            worker.say(**call_child(parent, 2, 2, [1], cache=CACHED))
            answers = {}
            for _ in range(2):
                resolved = await worker.next("resolved")
                answers[resolved["request_id"]] = resolved["outcome"]
            assert answers[1] == ok(big)
            assert answers[2]["state"] == "succeeded" and answers[2]["value"] == big

    run(scenario)


def test_a_cached_step_that_finishes_after_a_restart_is_a_cache_entry(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            worker = await connect_worker(service)
            first = await start_flow(service, worker)
            worker.say(**call_child(first, 1, 0, [3], cache=CACHED))
            execute = await worker.next("execute")
            await settle(service)  # assigned, durably
            assert worker.session is not None
            session_id = worker.session.session_id
        async with open_service(tmp_path) as service:  # restarted while the step ran
            worker = FakeWorker(service)
            running = [first["execution_id"], execute["execution_id"]]
            worker.hello(concurrency=8, session_id=session_id, running=running, targets=[FLOW, TASK, PAIR])
            worker.complete(execute["execution_id"], ok(9))
            await worker.next("ack")
            second = await start_flow(service, worker)
            worker.say(**call_child(second, 2, 0, [3], cache=CACHED))
            await assert_no_execute(worker)
            state = await child_state(service, second["run_id"])
            assert state["state"] == "cached" and state["cached_from"] == execute["execution_id"]

    run(scenario)
