"""Every step option travels from the decorator and from ``with_options`` to the server, and shows
in the run view: the worker's own encoding, the orchestrator's storage and the REST shape together."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import coflux as cf
from coflux.orchestrator import ProjectService
from tests.support.service import FLOW, TASK, FakeWorker, open_service, run, start_parent


@cf.task(
    cache=cf.Cache(max_age=60, params=["x"], namespace="shared"),
    memo=["x"],
    retries=cf.Retries(3, backoff=(1, 10)),
    timeout=30,
    delay=0.01,
    defer=True,
    wait=["x"],
    requires={"gpu": True},
    version="v7",
)
def child(x: int) -> int:
    return x


def _options_of(target: cf.Target[..., Any]) -> dict[str, Any]:
    options: dict[str, Any] = target._submit_options()  # exactly what a submit carries
    return options


async def _submitted_options(service: ProjectService, options: dict[str, Any]) -> dict[str, Any]:
    worker = FakeWorker(service)
    worker.hello(concurrency=4, targets=[FLOW, TASK])
    parent = await start_parent(service, worker)
    worker.say(
        type="submit",
        request_id=1,
        parent_execution_id=parent["execution_id"],
        module="m",
        target="child",
        target_type="task",
        arguments=[1],
        call_index=0,
        options=options,
    )
    await worker.next("submitted")
    view = await service.get_run(parent["run_id"])
    shown: dict[str, Any] = view["steps"][1]["options"]
    return shown


def test_every_option_from_the_decorator_is_shown_in_the_run(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            shown = await _submitted_options(service, _options_of(child))
            assert shown["cache"] == {
                "max_age": 60.0,
                "params": ["x"],
                "namespace": "shared",
                "version": None,
            }
            assert shown["memo"] == ["x"]
            assert shown["retries"] == {"limit": 3, "backoff_min": 1.0, "backoff_max": 10.0, "when": []}
            assert shown["timeout"] == 30.0 and shown["delay"] == 0.01
            assert shown["defer"] is True and shown["wait"] == ["x"]
            assert shown["requires"] == {"gpu": ["true"]} and shown["version"] == "v7"

    run(scenario)


def test_with_options_overrides_for_one_call_site(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            tuned = child.with_options(timeout=5, retries=0, cache=False, requires={"region": "eu"})
            shown = await _submitted_options(service, _options_of(tuned))
            assert shown["timeout"] == 5.0 and shown["retries"]["limit"] == 0
            assert "cache" not in shown and shown["requires"] == {"region": ["eu"]}
            assert shown["memo"] == ["x"] and shown["version"] == "v7"  # the rest is unchanged
            assert _options_of(child)["timeout"] == 30.0  # the original target is untouched

    run(scenario)
