"""Registered workflows keep their parameters' defaults and annotations across a restart of the
service; one registered without them (as before they existed) lists as it was."""

from __future__ import annotations

from pathlib import Path

from tests.support.service import FLOW, FakeWorker, open_service, run, settle

DESCRIBED = {
    "module": "m",
    "name": "described",
    "type": "workflow",
    "parameters": [
        {"name": "name", "kind": "positional_or_keyword", "has_default": False, "annotation": "str"},
        {"name": "sizes", "has_default": True, "default": [1, 2.5, {"k": None}], "annotation": "list[float]"},
        {"name": "path", "has_default": True, "annotation": "Path"},  # a default JSON can't carry
    ],
}


def test_registered_defaults_and_annotations_persist_and_old_ones_still_list(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            FakeWorker(service).hello(targets=[FLOW, DESCRIBED])
            await settle(service)
            before = await service.list_workflows("main")
        async with open_service(tmp_path) as service:
            after = {w["name"]: w for w in await service.list_workflows("main")}
        assert {w["name"]: w for w in before} == after
        assert after["described"]["registered"] is True
        assert after["described"]["parameters"] == [
            {"name": "name", "kind": "positional_or_keyword", "has_default": False, "annotation": "str"},
            {
                "name": "sizes",
                "kind": "positional_or_keyword",
                "has_default": True,
                "default": [1, 2.5, {"k": None}],
                "annotation": "list[float]",
            },
            {"name": "path", "kind": "positional_or_keyword", "has_default": True, "annotation": "Path"},
        ]
        assert after["flow"]["parameters"] == [
            {"name": "x", "kind": "positional_or_keyword", "has_default": False}
        ]

    run(scenario)


def test_a_changed_default_replaces_the_registered_one(tmp_path: Path) -> None:
    changed = {**DESCRIBED, "parameters": [{**DESCRIBED["parameters"][1], "default": [3]}]}  # type: ignore[dict-item]

    async def scenario() -> None:
        async with open_service(tmp_path) as service:
            FakeWorker(service).hello(targets=[DESCRIBED])
            await settle(service)
            FakeWorker(service).hello(targets=[changed])
            await settle(service)
        async with open_service(tmp_path) as service:
            [listed] = await service.list_workflows("main")
        assert listed["parameters"][0]["default"] == [3]

    run(scenario)
