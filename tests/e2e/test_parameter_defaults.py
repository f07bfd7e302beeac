"""A real `coflux worker` declares its workflows' defaults and annotations; a real `coflux server`
lists them in `GET .../workflows` (a default JSON can't carry is left out)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.harness import Server, Worker, wait_until

pytestmark = pytest.mark.e2e

MODULE = """
from pathlib import Path

import coflux as cf


@cf.workflow()
def report(title: str, sizes: list[int] = [1, 2], where: Path = Path("out"), *, verbose=False) -> int:
    return len(sizes)
"""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    server = Server(tmp_path / "data").start()
    yield server
    server.stop()


def test_the_workflows_list_shows_defaults_and_annotations(server: Server, tmp_path: Path) -> None:
    modules = tmp_path / "modules"
    modules.mkdir()
    (modules / "described.py").write_text(MODULE)
    worker = Worker(server, "described", workspace="main", modules=modules).start()
    try:

        def listed() -> list[dict[str, Any]] | None:
            answer = server.request("GET", "api/projects/default/workspaces/main/workflows")
            return answer.json()["workflows"] if answer.status == 200 and answer.json()["workflows"] else None

        [workflow] = wait_until(listed, 30, "the worker to register its workflow")
    finally:
        worker.stop()
    assert (workflow["module"], workflow["name"], workflow["registered"]) == ("described", "report", True)
    assert workflow["parameters"] == [
        {"name": "title", "kind": "positional_or_keyword", "has_default": False, "annotation": "str"},
        {
            "name": "sizes",
            "kind": "positional_or_keyword",
            "has_default": True,
            "default": [1, 2],
            "annotation": "list[int]",
        },
        {"name": "where", "kind": "positional_or_keyword", "has_default": True, "annotation": "Path"},
        {"name": "verbose", "kind": "keyword_only", "has_default": True, "default": False},
    ]
