"""A notebook's kernel as a worker: its executions run in directories of their own while the
notebook's code keeps the notebook's folder as its current directory; an asset persisted there is
restored in the notebook."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest_plugins = ("pytest_jupyter.jupyter_server",)

pytestmark = pytest.mark.e2e

TASK = """%%coflux_task
def persist(text):
    import os, pathlib
    import coflux as cf
    before = os.listdir(".")
    pathlib.Path("note.txt").write_text(text)
    return [os.getcwd(), before, cf.asset("note.txt", name="note")]
"""

WORKFLOW = """%%coflux_workflow
def keep(text):
    return persist(text)
"""


async def test_executions_in_a_kernel_leave_the_notebooks_directory_alone(
    start_kernel: Any, jp_root_dir: Path
) -> None:
    folder = jp_root_dir / "analysis"
    folder.mkdir()
    (folder / "data.csv").write_text("a\n1\n")
    async with start_kernel("analysis") as kernel:
        await kernel.run(TASK)
        await kernel.run(WORKFLOW)
        await kernel.run("cwd, before, note = keep.run('hello').result(timeout=60)")
        cwd, before = await kernel.value("[cwd, before]")
        assert cwd != str(folder) and before == []  # its own, empty, directory
        assert await kernel.value("__import__('os').getcwd()") == str(folder)  # the notebook's stays
        assert not (folder / "note.txt").exists()
        restored = await kernel.value("str(note.restore(at='restored')['note.txt'])")
        assert restored == str(folder / "restored" / "note.txt")
        assert (folder / "restored" / "note.txt").read_text() == "hello"
        assert await kernel.value("open('data.csv').read()") == "a\n1\n"  # relative paths as before
