"""The run view in JupyterLab, in Chromium, against a real `jupyter lab` and a real `coflux worker`:
"Coflux: open run..." from the palette opens a run as a live graph (a box around its grouped steps,
its spawned run as a linked node) beside its tree; a step selected in the graph shows its logs,
result and asset; a re-run into a child workspace shows its new execution, first blocked (no worker
there) and then done; a refused re-run shows the server's message; a running run is cancelled from
the toolbar. Screenshots: ``test-output/<test name>/``."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

if not os.environ.get("CI"):  # in CI a missing playwright is an error, not a skip
    pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")

from playwright.sync_api import Locator, Page, expect

from tests.support.harness import MODULES, environment
from tests.support.lab import LAB_LOAD_TIMEOUT_MS, RUN_TIMEOUT_MS, LabServer

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

VIEW = ".coflux-RunView-panel:not(.lm-mod-hidden) .coflux-RunView"
GRAPH = f"{VIEW} .coflux-RunGraph"
PALETTE_INPUT = "#command-palette .lm-CommandPalette-input"


class Workers:
    """`coflux worker runview_flows` processes of project default, one per workspace asked for."""

    def __init__(self, lab: LabServer, logs: Path) -> None:
        self.lab = lab
        self.logs = logs
        self.token = lab.api("POST", "coflux/api/projects/default/tokens", {"scope": "worker"})["token"]
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, workspace: str) -> None:
        command = [
            sys.executable,
            "-m",
            "coflux.cli",
            "worker",
            "runview_flows",
            "--url",
            f"{self.lab.url}/coflux",
        ]
        command += ["--project", "default", "--workspace", workspace, "--register"]
        with open(self.logs / f"worker-{workspace}.log", "ab") as log:
            env = environment(MODULES, COFLUX_TOKEN=self.token)
            self.processes.append(subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT))

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


@pytest.fixture
def workers(lab: LabServer, output_dir: Path) -> Iterator[Workers]:
    found = Workers(lab, output_dir)
    try:
        yield found
    finally:
        found.stop()


def start_run(lab: LabServer, workflow: str, *arguments: Any, workspace: str = "main") -> str:
    """Starts a run once the worker registered the workflow."""
    deadline = time.monotonic() + 60
    while True:
        try:
            answer = lab.api(
                "POST",
                f"coflux/api/projects/default/workspaces/{workspace}/runs",
                {"module": "runview_flows", "target": workflow, "arguments": list(arguments)},
            )
            run_id: str = answer["run_id"]
            return run_id
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def open_run(page: Page, run_id: str) -> None:
    """Opens a run through the palette's "Coflux: open run..." and its dialog."""
    page.keyboard.press("Control+Shift+C")
    palette = page.locator(PALETTE_INPUT)
    expect(palette).to_be_visible()
    expect(palette).to_be_focused()
    palette.fill("Coflux: open run...")
    items = page.locator("#command-palette .lm-CommandPalette-item")
    expect(items).to_have_count(1)  # the palette has filtered (it renders on the next frame)
    expect(items.first).to_have_attribute("data-command", "coflux:open-run")
    expect(items.first).to_have_class(re.compile(r"\blm-mod-active\b"))
    palette.press("Enter")
    field = page.locator(".jp-Dialog .coflux-OpenRun-runId")
    expect(field).to_be_focused()
    field.fill(run_id)
    page.locator(".jp-Dialog .jp-mod-accept").click()
    expect(page.locator(f"{VIEW}[data-run-id='{run_id}']")).to_be_visible()


def node(page: Page, target: str) -> Locator:
    return page.locator(f"{GRAPH} .coflux-RunGraph-node[data-target='runview_flows:{target}']")


def test_a_run_opens_as_a_live_graph_and_tree(
    lab: LabServer, workers: Workers, page: Page, output_dir: Path
) -> None:
    workers.start("main")
    run_id = start_run(lab, "survey", 3)
    page.set_default_timeout(LAB_LOAD_TIMEOUT_MS)
    page.goto(f"{lab.url}/lab?token={lab.token}")
    page.wait_for_selector("#jp-main-dock-panel")
    open_run(page, run_id)

    expect(page.locator(f"{VIEW} .coflux-RunView-status")).to_have_text("succeeded", timeout=RUN_TIMEOUT_MS)
    expect(node(page, "measure")).to_have_count(3)
    group = page.locator(f"{GRAPH} .coflux-RunGraph-group[data-group='samples']")
    expect(group).to_have_count(1)
    page.screenshot(path=str(output_dir / "runview.png"))
    node(page, "chart").click()
    expect(page.locator(f"{VIEW} .coflux-RunView-step")).to_contain_text("runview_flows:chart")
    page.screenshot(path=str(output_dir / "selected.png"))
    fan = start_run(lab, "fanout", 100)
    open_run(page, fan)
    expect(page.locator(f"{VIEW} .coflux-RunView-status")).to_have_text("succeeded", timeout=RUN_TIMEOUT_MS)
    page.screenshot(path=str(output_dir / "fanout.png"))
    fold = page.locator(f"{GRAPH} .coflux-RunGraph-node[data-kind='fold']")
    expect(fold).to_contain_text("measure \N{MULTIPLICATION SIGN}100")
    fold.click()
    expect(node(page, "measure")).to_have_count(100)
    page.screenshot(path=str(output_dir / "fanout-unfolded.png"))
