"""The orchestrator against a real SQLite store, driven by a scripted fake worker (in-memory transport)."""

from __future__ import annotations

from pathlib import Path

import pytest

from coflux.errors import BadRequest, NotFound, ProtocolError
from coflux.orchestrator import Timing
from coflux.orchestrator.clock import FakeClock
from tests.support.scenarios import dispatch_complete_acknowledge
from tests.support.service import (
    FLOW,
    TASK,
    FakeWorker,
    ok,
    open_service,
    run,
    settle,
    start_parent,
    submit_child,
)


def test_run_is_dispatched_completed_and_acknowledged_after_commit(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            await dispatch_complete_acknowledge(service)

    run(scenario)


def test_start_run_validates_workflow_and_arguments(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            FakeWorker(service).hello()
            with pytest.raises(NotFound):
                await service.start_run("main", "m", "missing", [])
            with pytest.raises(NotFound):
                await service.start_run("nowhere", "m", "flow", [1])
            with pytest.raises(BadRequest):
                await service.start_run("main", "m", "flow", [1, 2])
            with pytest.raises(BadRequest):
                await service.start_run("main", "m", "child", [1]) if False else await service.start_run(
                    "main", "m", "flow", "not a list"
                )

    run(scenario)


def test_waiting_parent_gives_its_slot_to_the_child(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            worker = FakeWorker(service)
            worker.hello(concurrency=1)
            parent = await start_parent(service, worker)
            worker.say(**submit_child(parent, 7, 0))
            child = await worker.next("execute")  # concurrency 1, yet the child is dispatched
            worker.complete(child["execution_id"], ok(49))
            resolved = await worker.next("resolved")
            assert resolved["request_id"] == 7 and resolved["outcome"] == ok(49)
            assert resolved["execution_id"] == child["execution_id"]
            # an awaited submit needs no ``submitted`` frame: ``resolved`` names the execution
            assert not [m for m in worker.inbox if m["type"] == "submitted"]

    run(scenario)


def test_a_withdrawn_wait_gives_the_slot_back_to_its_execution(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            worker = FakeWorker(service)
            session = worker.hello(concurrency=1)
            parent = await start_parent(service, worker)
            worker.say(**submit_child(parent, 1, 0, awaits=False))
            child = (await worker.next("submitted"))["execution_id"]
            worker.say(
                type="wait", request_id=2, execution_id=child, from_execution_id=parent["execution_id"]
            )
            execute = await worker.next("execute")  # the waiting parent gave its slot to the child
            assert session.busy == 1
            worker.say(type="unwait", request_id=2)  # its poll timed out: it runs on
            assert session.busy == 2 and service.engine.executions[parent["execution_id"]].blocked == 0
            worker.complete(execute["execution_id"], ok(4))
            await worker.next("ack")
            await settle(service)
            assert not [m for m in worker.inbox if m["type"] == "resolved"]  # nobody waits any more
            assert session.busy == 1

    run(scenario)


def test_resent_submit_with_same_call_index_is_not_duplicated(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            worker = FakeWorker(service)
            worker.hello(concurrency=4)
            parent = await start_parent(service, worker)
            worker.say(**submit_child(parent, 1, 0, awaits=False))
            first = await worker.next("submitted")
            worker.say(**submit_child(parent, 1, 0, awaits=False))
            again = await worker.next("submitted")
            assert again["execution_id"] == first["execution_id"]
            view = await service.get_run(parent["run_id"])
            assert len(view["steps"]) == 2

    run(scenario)


def test_submit_from_an_execution_the_worker_does_not_hold_is_refused(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            worker = FakeWorker(service)
            worker.hello()
            with pytest.raises(BadRequest):
                worker.say(**submit_child({"execution_id": "Rnope:1:1"}, 1, 0))

    run(scenario)


def test_retries_make_new_attempts_until_the_limit(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            worker = FakeWorker(service)
            worker.hello(concurrency=4)
            parent = await start_parent(service, worker)
            worker.say(**submit_child(parent, 1, 0, retries={"limit": 2}))
            failure = {
                "state": "failed",
                "error": {"type": "builtins.RuntimeError", "message": "no"},
            }
            for attempt in (1, 2, 3):
                execute = await worker.next("execute")
                assert execute["attempt"] == attempt
                worker.complete(execute["execution_id"], failure)
            resolved = await worker.next("resolved")
            assert resolved["outcome"]["state"] == "failed"
            view = await service.get_run(parent["run_id"])
            assert [e["state"] for e in view["steps"][1]["executions"]] == ["failed"] * 3
            assert [e["retry"] for e in view["steps"][1]["executions"]] == [False, True, True]
            assert not any(e["rerun"] for e in view["steps"][1]["executions"])

    run(scenario)


def test_a_group_and_a_rerun_are_shown_in_the_run(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            worker = FakeWorker(service)
            worker.hello(concurrency=4)
            parent = await start_parent(service, worker)
            worker.say(**submit_child(parent, 1, 0, group="batch one"))
            child = await worker.next("execute")
            worker.complete(child["execution_id"], ok(1))
            await worker.next("resolved")
            await service.rerun_step(child["step_id"], None)
            again = await worker.next("execute")
            worker.complete(again["execution_id"], ok(2))
            await worker.next("ack")
            step = (await service.get_run(parent["run_id"]))["steps"][1]
            assert step["group"] == "batch one"
            assert [(e["attempt"], e["retry"], e["rerun"]) for e in step["executions"]] == [
                (1, False, False),
                (2, False, True),
            ]

    run(scenario)


def test_a_rerun_after_a_failure_is_a_rerun_and_a_retry_is_a_retry(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            worker = FakeWorker(service)
            worker.hello(concurrency=4)
            parent = await start_parent(service, worker)
            worker.say(**submit_child(parent, 1, 0, retries={"limit": 1, "backoff_min": 0, "backoff_max": 0}))
            failed = {"state": "failed", "error": {"type": "ValueError", "message": "no"}}
            first = await worker.next("execute")
            worker.complete(first["execution_id"], failed)
            retried = await worker.next("execute")  # the orchestrator's retry
            worker.complete(retried["execution_id"], failed)
            await worker.next("resolved")
            await service.rerun_step(first["step_id"], None)  # someone re-runs the failed step
            again = await worker.next("execute")
            worker.complete(again["execution_id"], ok(3))
            await worker.next("ack")
            step = (await service.get_run(parent["run_id"]))["steps"][1]
            assert [(e["attempt"], e["retry"], e["rerun"]) for e in step["executions"]] == [
                (1, False, False),
                (2, True, False),
                (3, False, True),
            ]

    run(scenario)


def test_wait_holds_dispatch_until_referenced_executions_are_final(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            worker = FakeWorker(service)
            worker.hello(concurrency=4)
            parent = await start_parent(service, worker)
            worker.say(**submit_child(parent, 1, 0, awaits=False))
            first = (await worker.next("submitted"))["execution_id"]
            first_execute = await worker.next("execute")
            held = submit_child(parent, 2, 1, awaits=False, wait=True)
            held["arguments"] = [{"$c": "execution", "execution_id": first}]
            worker.say(**held)
            await worker.next("submitted")
            await settle(service)
            assert not [m for m in worker.inbox if m["type"] == "execute"]  # held
            worker.complete(first_execute["execution_id"], ok(1))
            released = await worker.next("execute")
            assert released["arguments"] == [{"$c": "execution", "execution_id": first}]

            unheld = submit_child(parent, 3, 2, awaits=False)  # without wait it goes at once
            unheld["arguments"] = [{"$c": "execution", "execution_id": released["execution_id"]}]
            worker.say(**unheld)
            await worker.next("execute")

    run(scenario)


def test_defer_lets_the_newest_queued_identical_call_win(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            worker = FakeWorker(service)
            worker.hello(concurrency=1)  # the parent holds the only slot: children queue
            parent = await start_parent(service, worker)
            worker.say(**submit_child(parent, 1, 0, awaits=False, defer=True))
            older = (await worker.next("submitted"))["execution_id"]
            worker.say(**submit_child(parent, 1, 1, awaits=False, defer=True))  # same call again
            newer = (await worker.next("submitted"))["execution_id"]
            worker.say(
                type="wait", request_id=9, execution_id=older, from_execution_id=parent["execution_id"]
            )
            execute = await worker.next("execute")  # the parent waits: one of them runs
            assert execute["execution_id"] == newer
            worker.complete(newer, ok("newest"))
            resolved = await worker.next("resolved")
            assert resolved["request_id"] == 9 and resolved["outcome"] == ok("newest")  # it followed
            await settle(service)
            assert not [m for m in worker.inbox if m["type"] == "execute"]
            steps = (await service.get_run(parent["run_id"]))["steps"]
            assert steps[1]["executions"][0]["state"] == "deferred"
            assert steps[1]["executions"][0]["deferred_to"] == newer
            assert not service.engine.deferring  # nothing left queued

    run(scenario)


def test_a_workflow_called_from_an_execution_spawns_a_linked_run(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            sub = {**FLOW, "name": "sub"}
            worker = FakeWorker(service)
            worker.hello(concurrency=4, targets=[FLOW, TASK, sub])
            parent = await start_parent(service, worker)
            call = {**submit_child(parent, 1, 0), "target": "sub", "target_type": "workflow"}
            worker.say(**call)
            spawned = await worker.next("execute")
            spawned_run = spawned["run_id"]
            assert spawned_run != parent["run_id"] and spawned["execution_id"] == f"{spawned_run}:1:1"
            worker.complete(spawned["execution_id"], ok("from the spawned run"))
            assert (await worker.next("resolved"))["outcome"] == ok("from the spawned run")
            caller = await service.get_run(parent["run_id"])
            assert caller["spawned_runs"] == [
                {"run_id": spawned_run, "parent_execution_id": parent["execution_id"]}
            ]
            assert len(caller["steps"]) == 1  # the spawned workflow is a run of its own, not a step here
            linked = await service.get_run(spawned_run)
            assert linked["parent_execution_id"] == parent["execution_id"] and linked["status"] == "succeeded"

            worker.say(**{**call, "request_id": 2, "call_index": 1, "await": False})
            second = await worker.next("execute")
            await service.cancel_execution(parent["execution_id"])  # cancelling the caller cascades
            assert (await service.get_run(second["run_id"]))["status"] == "cancelled"

    run(scenario)


def test_a_timeout_cancels_the_descendants(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = FakeClock()
        async with open_service(tmp_path, clock=clock) as service:
            worker = FakeWorker(service)
            worker.hello(concurrency=4)
            parent = await start_parent(service, worker)
            worker.say(**submit_child(parent, 1, 0, awaits=False, timeout=5))
            child = await worker.next("execute")
            worker.say(
                **{**submit_child(child, 2, 0, awaits=False), "parent_execution_id": child["execution_id"]}
            )
            grandchild = await worker.next("execute")
            clock.advance(4.9)
            await settle(service)
            assert not [m for m in worker.inbox if m["type"] == "abort"]
            clock.advance(0.1)
            aborted = {(await worker.next("abort"))["execution_id"] for _ in range(2)}
            assert aborted == {child["execution_id"], grandchild["execution_id"]}
            steps = {s["step_id"]: s for s in (await service.get_run(parent["run_id"]))["steps"]}
            assert steps[child["step_id"]]["executions"][0]["state"] == "timed_out"
            assert steps[grandchild["step_id"]]["executions"][0]["state"] == "cancelled"

    run(scenario)


def test_delay_holds_a_step_back(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = FakeClock()
        async with open_service(tmp_path, clock=clock) as service:
            worker = FakeWorker(service)
            worker.hello(concurrency=4)
            parent = await start_parent(service, worker)
            submitted_at = clock.now()
            worker.say(**submit_child(parent, 1, 0, awaits=False, delay=5))
            await worker.next("submitted")
            clock.advance(4.9)
            await settle(service)
            assert not [m for m in worker.inbox if m["type"] == "execute"]  # not yet
            clock.advance(0.1)
            execute = await worker.next("execute")
            view = await service.get_run(parent["run_id"])
            assert view["steps"][1]["executions"][0]["execute_after"] == submitted_at + 5
            assert execute["execution_id"] == view["steps"][1]["executions"][0]["execution_id"]

    run(scenario)


def test_requires_routes_to_a_worker_that_provides_the_tags(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            plain, gpu = FakeWorker(service), FakeWorker(service)
            plain.hello(concurrency=4)
            hello = {
                "type": "hello",
                "protocol": 1,
                "workspace": "main",
                "concurrency": 4,
                "targets": [FLOW, TASK],
                "provides": {"gpu": ["a100"]},
            }
            gpu.session = service.connect(hello, gpu.send, gpu.close)
            parent = await start_parent(service, plain)
            plain.say(**submit_child(parent, 1, 0, awaits=False, requires={"gpu": ["a100", "h100"]}))
            execute = await gpu.next("execute")
            assert execute["target"] == "child"
            assert not [m for m in plain.inbox if m["type"] == "execute"]

    run(scenario)


def test_logs_are_kept_per_execution(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            worker = FakeWorker(service)
            worker.hello()
            parent = await start_parent(service, worker)
            entries = [
                {"timestamp": 1.5, "level": "info", "message": "loaded 3 rows"},
                {"level": "stdout", "message": "printed"},
            ]
            worker.say(type="log", execution_id=parent["execution_id"], entries=entries)
            await settle(service)
            logs = await service.logs(parent["execution_id"])
            assert [(e["level"], e["message"]) for e in logs] == [
                ("info", "loaded 3 rows"),
                ("stdout", "printed"),
            ]
            assert logs[0]["timestamp"] == 1.5
            with pytest.raises(NotFound):
                await service.logs("Rnope:1:1")

    run(scenario)


def test_retry_when_filters_by_exception_type(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            worker = FakeWorker(service)
            worker.hello(concurrency=4)
            parent = await start_parent(service, worker)
            worker.say(**submit_child(parent, 1, 0, retries={"limit": 3, "when": ["builtins.TimeoutError"]}))
            execute = await worker.next("execute")
            error = {"type": "builtins.ValueError", "message": "not retryable"}
            worker.complete(execute["execution_id"], {"state": "failed", "error": error})
            resolved = await worker.next("resolved")
            assert resolved["outcome"]["error"] == error

    run(scenario)


def test_reconnect_within_timeout_keeps_work_and_late_one_abandons(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = FakeClock()
        async with open_service(tmp_path, Timing(reconnect_timeout=10), clock=clock) as service:
            worker = FakeWorker(service)
            session = worker.hello()
            parent = await start_parent(service, worker)
            worker.disconnect()
            clock.advance(9.5)  # back within the reconnect timeout
            back = FakeWorker(service)
            back.hello(session_id=session.session_id, running=[parent["execution_id"]])
            assert (await back.next("welcome"))["session_id"] == session.session_id
            back.complete(parent["execution_id"], ok(1))
            await back.next("ack")
            assert (await service.get_run(parent["run_id"]))["status"] == "succeeded"

            second = await service.start_run("main", "m", "flow", [2])
            execute = await back.next("execute")
            back.disconnect()
            clock.advance(9.5)
            assert execute["execution_id"] in service.engine.executions  # it may still come back
            clock.advance(1.5)
            await settle(service)
            view = await service.get_run(second)
            assert view["steps"][0]["executions"][0]["state"] == "abandoned"
            assert view["status"] == "failed"
            assert execute["execution_id"] not in service.engine.executions

    run(scenario)


def test_a_heartbeat_without_an_assigned_execution_abandons_it(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = FakeClock()
        async with open_service(tmp_path, Timing(heartbeat_interval=2), clock=clock) as service:
            worker = FakeWorker(service)
            worker.hello()
            parent = await start_parent(service, worker)
            clock.advance(3.9)
            worker.say(type="heartbeat", running=[])  # too soon: the execute may be in flight
            assert parent["execution_id"] in service.engine.executions
            clock.advance(0.2)
            worker.say(type="heartbeat", running=[parent["execution_id"]])
            assert parent["execution_id"] in service.engine.executions
            worker.say(type="heartbeat", running=[])  # the worker lost it
            await settle(service)
            view = await service.get_run(parent["run_id"])
            assert view["steps"][0]["executions"][0]["state"] == "abandoned"

    run(scenario)


def test_missed_heartbeats_close_the_connection(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = FakeClock()
        async with open_service(tmp_path, Timing(heartbeat_timeout=15), clock=clock) as service:
            worker = FakeWorker(service)
            worker.hello()
            clock.advance(14)
            worker.say(type="heartbeat", running=[])
            clock.advance(14)
            assert worker.closed is None  # its heartbeat kept it
            clock.advance(2)
            assert worker.closed is not None and worker.closed[0] == 4001

    run(scenario)


def test_restart_rebuilds_in_flight_work_and_the_worker_reclaims_it(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            worker = FakeWorker(service)
            session = worker.hello(concurrency=4)
            parent = await start_parent(service, worker)
            worker.say(**submit_child(parent, 1, 0))
            child = await worker.next("execute")
            worker.complete(child["execution_id"], ok(10))
            await worker.next("ack")
        async with open_service(tmp_path) as service:
            assert parent["execution_id"] in service.engine.executions
            worker = FakeWorker(service)
            worker.hello(session_id=session.session_id, running=[parent["execution_id"]])
            worker.say(**submit_child(parent, 1, 0))  # re-sent after the reconnect: the same child
            resolved = await worker.next("resolved")
            assert resolved["outcome"] == ok(10)
            worker.complete(parent["execution_id"], ok(11))
            await worker.next("ack")
            view = await service.get_run(parent["run_id"])
            assert view["status"] == "succeeded" and view["result"] == 11 and len(view["steps"]) == 2

    run(scenario)


def test_cancel_cascades_to_children_and_aborts_them(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            worker = FakeWorker(service)
            worker.hello(concurrency=4)
            parent = await start_parent(service, worker)
            worker.say(**submit_child(parent, 1, 0))
            child = await worker.next("execute")
            await service.cancel_execution(parent["execution_id"])
            aborted = {
                (await worker.next("abort"))["execution_id"],
                (await worker.next("abort"))["execution_id"],
            }
            assert aborted == {parent["execution_id"], child["execution_id"]}
            view = await service.get_run(parent["run_id"])
            assert view["status"] == "cancelled"
            assert view["steps"][1]["executions"][0]["state"] == "cancelled"
            worker.complete(child["execution_id"], ok(1))  # a late result is acknowledged and dropped
            await worker.next("ack")
            view = await service.get_run(parent["run_id"])
            assert view["steps"][1]["executions"][0]["state"] == "cancelled"

    run(scenario)


def test_timeout_marks_the_execution_timed_out(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = FakeClock()
        async with open_service(tmp_path, clock=clock) as service:
            worker = FakeWorker(service)
            worker.hello(concurrency=4)
            parent = await start_parent(service, worker)
            worker.say(**submit_child(parent, 1, 0, timeout=5))
            await worker.next("execute")
            clock.advance(5)
            resolved = await worker.next("resolved")
            assert resolved["outcome"] == {"state": "timed_out"}

    run(scenario)


def test_a_handshake_with_another_protocol_version_is_refused(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            hello = {
                "type": "hello",
                "protocol": 99,
                "workspace": "main",
                "concurrency": 1,
                "targets": [],
            }
            with pytest.raises(ProtocolError):
                service.connect(hello, lambda m: None, lambda c, r: None)

    run(scenario)


def test_a_declaration_with_a_request_id_is_confirmed_and_its_workflow_can_run(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            worker = FakeWorker(service)
            worker.hello(targets=[TASK])
            await worker.next("welcome")
            with pytest.raises(NotFound):
                await service.start_run("main", "m", "flow", [1])
            worker.say(type="declare", targets=[FLOW], register=True, request_id=7)
            assert (await worker.next("reply"))["request_id"] == 7
            run_id = await service.start_run("main", "m", "flow", [1])
            assert (await worker.next("execute"))["execution_id"] == f"{run_id}:1:1"
            worker.say(type="declare", targets=[TASK], register=True)  # no request id: no reply
            await settle(service)
            assert not [m for m in worker.inbox if m["type"] == "reply"]

    run(scenario)


def test_a_refused_hello_leaves_no_session_behind(tmp_path: Path) -> None:
    """A ``hello`` is checked whole before its session is registered: a refused one leaves nothing
    connected (the project can go idle, nothing is dispatched to a dead socket)."""

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


def test_a_refused_hello_naming_a_live_session_leaves_its_connection_alone(tmp_path: Path) -> None:
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


def test_waiting_on_a_finished_execution_keeps_the_worker_within_its_concurrency(tmp_path: Path) -> None:
    """A wait gives its execution's slot back only while the awaited step is live: the answer for
    a final one comes after the next commit, and the slot must not go to a queued execution
    meanwhile (a concurrency-1 worker would run two)."""

    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            worker = FakeWorker(service)
            session = worker.hello(concurrency=1)
            first = await start_parent(service, worker)
            worker.complete(first["execution_id"], ok(1))
            await worker.next("ack")
            second = await start_parent(service, worker)
            await service.start_run("main", "m", "flow", [3])  # queued: the only slot is taken
            worker.say(
                type="wait",
                request_id=9,
                execution_id=first["execution_id"],
                from_execution_id=second["execution_id"],
            )
            await worker.next("resolved")
            await settle(service)
            executes = [m for m in worker.inbox if m["type"] == "execute"]
            assert session.busy <= session.concurrency and not executes, (
                f"busy={session.busy} concurrency={session.concurrency}; dispatched {executes}"
            )

    run(scenario)


def test_executions_the_server_abandoned_are_aborted_when_their_worker_reconnects(tmp_path: Path) -> None:
    """An id in ``hello.running`` that the server abandoned (its reconnect timeout passed) is told
    to abort: otherwise the worker runs it outside its slots and alongside its retry."""

    async def scenario() -> None:
        clock = FakeClock()
        async with open_service(tmp_path, Timing(reconnect_timeout=10), clock=clock) as service:
            worker = FakeWorker(service)
            session = worker.hello(concurrency=1)
            parent = await start_parent(service, worker)
            worker.disconnect()
            clock.advance(11)  # abandoned
            assert parent["execution_id"] not in service.engine.executions
            back = FakeWorker(service)
            back.hello(session_id=session.session_id, running=[parent["execution_id"]])
            abort = await back.next("abort", timeout=1.0)
            assert abort["execution_id"] == parent["execution_id"]

    run(scenario)
