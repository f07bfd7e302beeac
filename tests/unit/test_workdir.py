"""Each execution runs in a working directory of its own: two running at once see different
``Path.cwd()``, each starts empty (what the previous execution on the thread wrote is gone), and the
process's other threads keep their current directory."""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

import coflux as cf
from coflux.worker import workdir
from tests.support.harness import wait_until
from tests.support.worker_server import FakeServer

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread cwd needs Linux")

_together = threading.Barrier(2, timeout=10)


@cf.task()
def where(name: str) -> str:
    before = sorted(os.listdir("."))
    Path(f"{name}.txt").write_text(name)  # relative: lands in the execution's directory
    Path("folder").mkdir()
    (Path("folder") / "inner.txt").write_text(name)
    _together.wait()  # both executions are running now
    seen = {
        "cwd": os.getcwd(),
        "dir": str(cf.execution_dir()),
        "before": before,
        "after": sorted(os.listdir(".")),
    }
    return json.dumps(seen)


def run_pair(server: FakeServer, prefix: str) -> list[dict[str, object]]:
    server.execute(f"{prefix}:1:1", where, "a")
    server.execute(f"{prefix}:2:1", where, "b")
    outcomes = [server.expect("complete")["outcome"] for _ in range(2)]
    assert all(o["state"] == "succeeded" for o in outcomes), outcomes
    return [json.loads(o["value"]) for o in outcomes]


def test_executions_have_their_own_empty_working_directories(
    server: FakeServer, worker: Callable[..., cf.Worker]
) -> None:
    main_cwd = os.getcwd()
    worker([where])
    first = run_pair(server, "Rw1")
    folders = {str(seen["cwd"]) for seen in first}
    assert len(folders) == 2  # two threads, two directories
    for seen in first:
        assert seen["dir"] == seen["cwd"]
        assert Path(str(seen["cwd"])).parent == workdir.worker_temp()
        assert seen["before"] == []
        assert len(seen["after"]) == 2  # its own file and folder, not the other's  # type: ignore[arg-type]
    assert os.getcwd() == main_cwd  # the test's (main) thread never moved

    for folder in folders:  # emptied just after each execution reported its outcome
        wait_until(lambda f=folder: os.listdir(f) == [], 5, f"{folder} to be emptied")  # type: ignore[misc]
    second = run_pair(server, "Rw2")
    assert all(seen["before"] == [] for seen in second)  # on reused threads too
    assert len({str(seen["cwd"]) for seen in second}) == 2
    assert os.getcwd() == main_cwd


def test_clearing_an_empty_directory_leaves_it(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "f").write_text("1")
    (tmp_path / "link").symlink_to(tmp_path / "x")
    workdir.clear(tmp_path)
    assert list(tmp_path.iterdir()) == []
    workdir.clear(tmp_path)
    assert tmp_path.is_dir()


def test_whatever_an_execution_writes_is_gone_before_the_next_even_right_after_a_clear() -> None:
    found: list[list[str]] = []

    def serve() -> None:
        folder = workdir.WorkDir()
        for i in range(300):  # writes within the same tick of a coarse clock as the last clear
            folder.enter()
            found.append(sorted(os.listdir(folder.path)))
            if i % 3 == 0:
                Path(f"f{i}").write_text("x")
            elif i % 3 == 1:
                Path(f"d{i}").mkdir()
                Path(f"d{i}/inner").write_text("y")
            folder.leave()
        folder.close()

    thread = threading.Thread(target=serve)
    thread.start()
    thread.join()
    assert found == [[]] * 300


def test_a_thread_gets_back_its_directory_after_code_moved_away_or_removed_it(tmp_path: Path) -> None:
    seen: list[object] = []

    def serve() -> None:
        folder = workdir.WorkDir()
        first = folder.path
        folder.enter()
        os.chdir(tmp_path)  # the execution's code moves away
        folder.leave()
        seen.append(os.getcwd() == str(first))
        folder.enter()
        os.rmdir(first)  # ...or removes its directory
        folder.leave()
        seen.extend([folder.path != first, folder.path.is_dir(), os.getcwd() == str(folder.path)])
        folder.close()
        seen.append(folder.path.exists())

    thread = threading.Thread(target=serve)
    thread.start()
    thread.join()
    assert seen == [True, True, True, True, False]


def test_without_unshare_nothing_moves_and_the_execution_directory_is_still_known(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(workdir, "isolate", lambda: False)
    seen: list[object] = []
    start = os.getcwd()

    def serve() -> None:
        folder = workdir.WorkDir()
        folder.enter()
        seen.extend([os.getcwd() == start, cf.execution_dir() == folder.path])
        (cf.execution_dir() / "out.txt").write_text("x")
        folder.leave()
        seen.extend([cf.execution_dir() == Path.cwd(), list(folder.path.iterdir())])
        folder.close()

    thread = threading.Thread(target=serve)
    thread.start()
    thread.join()
    assert seen == [True, True, True, []]
