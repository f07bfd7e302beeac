"""`coflux.toml` is honoured the same way by every command and a notebook's kernel (real processes)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.harness import MODULES, Server, environment, wait_until

pytestmark = pytest.mark.e2e


def _coflux(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "coflux.cli", *args],
        cwd=folder,
        env=environment(),  # no COFLUX_* variables: only coflux.toml says where to go
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_worker_and_submit_read_coflux_toml_from_their_folder(tmp_path: Path) -> None:
    server = Server(tmp_path / "data").start()
    project_folder = tmp_path / "project" / "sub"
    project_folder.mkdir(parents=True)
    token = server.request("POST", "api/projects/tomlproj/tokens", {"scope": "worker"})
    assert token.status in (200, 201), token.body
    (tmp_path / "project" / "coflux.toml").write_text(
        "[coflux]\n"
        f'url = "{server.url}"\n'
        f'token = "{token.json()["token"]}"\n'
        'project = "tomlproj"\n'
        'workspace = "from-toml"\n'
        "concurrency = 2\n"
    )
    worker = subprocess.Popen(
        [sys.executable, "-m", "coflux.cli", "worker", "e2e_flows", "--register"],
        cwd=project_folder,
        env=environment(MODULES),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        workflows = "api/projects/tomlproj/workspaces/from-toml/workflows"
        wait_until(lambda: server.request("GET", workflows).status == 200, 30, "the worker to register")
        submitted = _coflux(project_folder, "submit", "e2e_flows:add", "1", "2", "--json")
        assert submitted.returncode == 0, submitted.stderr
        assert '"result": 3' in submitted.stdout
        runs = server.request("GET", "api/projects/tomlproj/workspaces/from-toml/runs").json()["runs"]
        assert [r["target"] for r in runs] == ["add"]
    finally:
        worker.terminate()
        worker.wait(10)
        server.stop()
