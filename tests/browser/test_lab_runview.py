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
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

if not os.environ.get("CI"):  # in CI a missing playwright is an error, not a skip
    pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")

from playwright.sync_api import Locator, Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from tests.support.harness import MODULES
from tests.support.lab import LAB_LOAD_TIMEOUT_MS, RUN_TIMEOUT_MS, LabServer, stop_process

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

VIEW = ".coflux-RunView-panel:not(.lm-mod-hidden) .coflux-RunView"
GRAPH = f"{VIEW} .coflux-RunGraph"
TREE = f"{VIEW} .coflux-RunView-tree"
PALETTE_INPUT = "#command-palette .lm-CommandPalette-input"


class Workers:
    """`coflux worker runview_flows` processes of project default, one per workspace asked for."""

    def __init__(self, lab: LabServer, logs: Path) -> None:
        self.lab = lab
        self.logs = logs
        self.token = lab.api("POST", "coflux/api/projects/default/tokens", {"scope": "worker"})["token"]
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, workspace: str) -> None:
        log = self.logs / f"worker-{workspace}.log"
        self.processes.append(self.lab.start_worker("runview_flows", MODULES, log, workspace, self.token))

    def stop(self) -> None:
        for process in self.processes:
            stop_process(process)


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


def until(check: Callable[[], Any], what: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while (found := check()) is None:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)
    return found


def saved_runs(lab: LabServer) -> int:
    """How many run tabs Lab saved in its default workspace."""
    data = lab.api("GET", "lab/api/workspaces/default")["data"]
    return sum(1 for key in data if key.startswith("coflux-run:"))


def open_palette_dialog(page: Page, run_id: str) -> None:
    """Types a run id into the dialog of the palette's "Coflux: open run..." and accepts it.

    JupyterLab closes its palette whenever any command runs, and it runs some by itself now and
    then (its router's ``router:tree`` after a tab was activated): a palette closed that way before
    Enter is opened again, at most three times."""
    field = page.locator(".jp-Dialog .coflux-OpenRun-runId")
    palette = page.locator(PALETTE_INPUT)
    items = page.locator("#command-palette .lm-CommandPalette-item")
    for attempt in range(3):
        if page.locator(VIEW).count():
            page.locator(f"{VIEW} .coflux-RunView-header").click()
            expect(page.locator(VIEW)).to_be_focused()
        page.keyboard.press("Control+Shift+C")
        try:
            expect(palette).to_be_visible()
            expect(palette).to_be_focused()
            palette.fill("Coflux: open run...", timeout=5000)
            # the palette filtered (it renders on the next frame) and is still open
            expect(items).to_have_count(1)
            expect(items.first).to_have_attribute("data-command", "coflux:open-run")
            expect(items.first).to_have_class(re.compile(r"\blm-mod-active\b"))
            palette.press("Enter")
            expect(field).to_be_visible()
            break
        except (AssertionError, PlaywrightTimeoutError):
            if attempt == 2:
                raise
    expect(field).to_be_focused()
    field.fill(run_id)
    page.locator(".jp-Dialog .jp-mod-accept").click()


def open_run(page: Page, run_id: str) -> None:
    open_palette_dialog(page, run_id)
    expect(page.locator(f"{VIEW}[data-run-id='{run_id}']")).to_be_visible()


def node(page: Page, target: str) -> Locator:
    return page.locator(
        f"{GRAPH} .coflux-RunGraph-node[data-kind='step'][data-target='runview_flows:{target}']"
    )


def details(page: Page, step_id: str) -> Locator:
    return page.locator(f"{TREE} .coflux-details[data-step-id='{step_id}']")


def inside(inner: Locator, outer: Locator) -> bool:
    a, b = inner.bounding_box(), outer.bounding_box()
    assert a is not None and b is not None
    return bool(
        a["x"] >= b["x"]
        and a["y"] >= b["y"]
        and a["x"] + a["width"] <= b["x"] + b["width"]
        and a["y"] + a["height"] <= b["y"] + b["height"]
    )


def open_lab(page: Page, lab: LabServer) -> None:
    page.set_default_timeout(LAB_LOAD_TIMEOUT_MS)
    page.goto(f"{lab.url}/lab?token={lab.token}")
    page.wait_for_selector("#jp-main-dock-panel")
    # Lab's splash goes once the layout is restored: before that, a restore may take the focus
    # from the palette, or our plugin may not have added its command yet.
    page.wait_for_selector("#jupyterlab-splash", state="detached")


def test_a_run_opens_as_a_graph_beside_its_tree(
    lab: LabServer, workers: Workers, page: Page, output_dir: Path
) -> None:
    workers.start("main")
    run_id = start_run(lab, "survey", 3)
    open_lab(page, lab)
    open_run(page, run_id)

    expect(page.locator(f"{VIEW} .coflux-RunView-status")).to_have_text("succeeded", timeout=RUN_TIMEOUT_MS)
    expect(page.locator(f"{VIEW} .coflux-RunView-workflow")).to_have_text("runview_flows:survey")
    # The grouped steps are drawn inside their group's box, the others outside it.
    group = page.locator(f"{GRAPH} .coflux-RunGraph-group[data-group='samples'] rect")
    expect(group).to_have_count(1)
    measures = node(page, "measure")
    expect(measures).to_have_count(3)
    for i in range(3):
        expect(measures.nth(i)).to_have_attribute("data-state", "succeeded")
        assert inside(measures.nth(i), group)
    assert not inside(node(page, "chart"), group)
    assert not inside(node(page, "survey"), group)
    spawned = page.locator(f"{GRAPH} .coflux-RunGraph-node[data-kind='run']")
    expect(spawned).to_have_count(1)
    expect(spawned).to_contain_text("double")
    expect(spawned).to_have_attribute("data-state", "succeeded")
    page.locator(GRAPH).screenshot(path=str(output_dir / "graph-group.png"))

    # A step picked in the graph opens in the tree: its logs, its result's preview, its asset.
    chart = node(page, "chart")
    chart.click()
    expect(chart).to_have_class(re.compile(r"\bcoflux-mod-selected\b"))
    chart_id = chart.get_attribute("data-step-id")
    assert chart_id
    shown = details(page, chart_id)
    expect(shown).to_be_visible()
    expect(shown.locator(".coflux-log")).to_contain_text(["charted 3 samples"])
    expect(shown.locator(".coflux-result")).to_contain_text("squares")
    asset = shown.locator(".coflux-asset-item")
    expect(asset.locator(".coflux-asset-name")).to_have_text("squares")
    asset.locator("button.coflux-asset-view").click()
    table = asset.locator("table.coflux-preview-table")
    expect(table.locator("th")).to_have_text(["sample", "square"])
    expect(table.locator("tbody tr")).to_have_count(3)
    expect(page.locator(f"{VIEW} .coflux-RunView-step")).to_contain_text("runview_flows:chart")
    first = measures.first
    first.click()
    first_id = first.get_attribute("data-step-id")
    assert first_id
    expect(details(page, first_id).locator(".coflux-result")).to_contain_text('"square": ')
    page.screenshot(path=str(output_dir / "runview.png"))

    # The spawned run's node opens that run in its own tab.
    spawned_id = spawned.get_attribute("data-run-id")
    spawned.click()
    expect(page.locator(f"{VIEW}[data-run-id='{spawned_id}']")).to_be_visible()
    expect(page.locator(f"{VIEW} .coflux-RunView-workflow")).to_have_text("runview_flows:double")

    # Both tabs come back with the page (once Lab saved its layout), and opening a run again
    # focuses its tab.
    until(lambda: saved_runs(lab) == 2 or None, "Lab to save both tabs in its workspace")
    page.reload()
    page.wait_for_selector("#jupyterlab-splash", state="detached")
    expect(page.locator(".coflux-RunView-panel")).to_have_count(2)
    expect(page.locator(f"{VIEW}[data-run-id='{spawned_id}'] .coflux-RunView-status")).to_have_text(
        "succeeded"
    )
    open_run(page, run_id)
    expect(page.locator(".coflux-RunView-panel")).to_have_count(2)
    expect(node(page, "chart")).to_have_attribute("data-state", "succeeded")

    # In the dark theme, the view takes the theme's colours.
    page.click("div.lm-MenuBar-itemLabel:text-is('Settings')")
    page.click("li.lm-Menu-item:has-text('Theme')")
    page.click("li.lm-Menu-item:has-text('JupyterLab Dark')")
    expect(page.locator("body")).to_have_attribute("data-jp-theme-light", "false")
    page.screenshot(path=str(output_dir / "runview-dark.png"))


def test_a_step_rerun_in_a_child_workspace_shows_there(
    lab: LabServer, workers: Workers, page: Page, output_dir: Path
) -> None:
    workers.start("main")
    run_id = start_run(lab, "survey", 2)  # once the worker made main
    lab.api("POST", "coflux/api/projects/default/workspaces", {"name": "dev", "base": "main"})
    lab.api("POST", "coflux/api/projects/default/workspaces", {"name": "other", "base": None})
    open_lab(page, lab)
    open_run(page, run_id)
    expect(page.locator(f"{VIEW} .coflux-RunView-status")).to_have_text("succeeded", timeout=RUN_TIMEOUT_MS)

    # Re-run a grouped step in dev, where no worker is yet: the view follows it to dev, where it
    # waits, and says why.
    step = node(page, "measure").first
    step_id = step.get_attribute("data-step-id")
    assert step_id
    step.click()
    shown = details(page, step_id)
    shown.locator("select.coflux-rerun-workspace").select_option("dev")
    shown.locator("button.coflux-rerun-in").click()
    picker = page.locator(f"{VIEW} select.coflux-RunView-workspace")
    expect(picker).to_have_value("dev")
    rerun = page.locator(f"{GRAPH} .coflux-RunGraph-node[data-step-id='{step_id}']")
    expect(rerun).to_have_attribute("data-state", "queued")
    expect(rerun).to_have_attribute("data-mark-rerun", "re-run")
    # seen from dev, what dev didn't run itself is marked with where it ran
    expect(rerun).not_to_have_attribute("data-mark-workspace", re.compile(".*"))
    expect(node(page, "chart")).to_have_attribute("data-mark-workspace", "main")
    expect(page.locator(f"{VIEW} .coflux-RunView-blockedItem")).to_have_text(
        "1 step queued: no worker serves runview_flows:measure in workspace dev"
    )
    expect(shown.locator(".coflux-execution")).to_have_count(2)

    # A worker in dev runs it: done, in the graph and in the tree.
    workers.start("dev")
    expect(rerun).to_have_attribute("data-state", "succeeded", timeout=RUN_TIMEOUT_MS)
    expect(page.locator(f"{VIEW} .coflux-RunView-blockedItem")).to_have_count(0)
    latest = shown.locator(".coflux-execution").last
    expect(latest).to_have_attribute("data-state", "succeeded")
    expect(latest.locator(".coflux-ws")).to_have_text("dev")
    page.screenshot(path=str(output_dir / "rerun-child.png"))

    # Into a workspace outside the run's lineage: refused, with the server's reason.
    shown.locator("select.coflux-rerun-workspace").select_option("other")
    shown.locator("button.coflux-rerun-in").click()
    expect(page.locator(f"{TREE} .coflux-error")).to_contain_text(
        "a step can be re-run only in its own workspace or a descendant of it"
    )
    expect(shown.locator(".coflux-execution")).to_have_count(2)

    # Seen from main again, the re-run is dev's own: main's step shows its first execution only.
    picker.select_option("main")
    expect(rerun).to_have_attribute("data-state", "succeeded")
    expect(rerun).not_to_have_attribute("data-mark-rerun", re.compile(".*"))
    expect(node(page, "chart")).not_to_have_attribute("data-mark-workspace", re.compile(".*"))
    expect(details(page, step_id).locator(".coflux-execution")).to_have_count(1)


def test_cancel_a_running_run_and_a_large_fan_out(
    lab: LabServer, workers: Workers, page: Page, output_dir: Path
) -> None:
    workers.start("main")
    open_lab(page, lab)
    run_id = start_run(lab, "slow", 60)
    open_run(page, run_id)
    wait = node(page, "wait")
    expect(wait).to_have_attribute("data-state", "running", timeout=RUN_TIMEOUT_MS)
    expect(page.locator(f"{VIEW} .coflux-RunView-status")).to_have_text("running")
    page.locator(".coflux-RunView-panel:not(.lm-mod-hidden) .coflux-RunView-cancel").click()
    expect(page.locator(f"{VIEW} .coflux-RunView-status")).to_have_text("cancelled", timeout=RUN_TIMEOUT_MS)
    expect(wait).to_have_attribute("data-state", "cancelled")
    expect(page.locator(f"{TREE} .coflux-notice")).to_contain_text(f"of run {run_id}")

    # 100 calls of one target fold into one node, which unfolds into a grid.
    fan = start_run(lab, "fanout", 100)
    open_run(page, fan)
    expect(page.locator(f"{VIEW} .coflux-RunView-status")).to_have_text("succeeded", timeout=RUN_TIMEOUT_MS)
    fold = page.locator(f"{GRAPH} .coflux-RunGraph-node[data-kind='fold']")
    expect(fold).to_contain_text("measure \N{MULTIPLICATION SIGN}100")
    expect(fold).to_contain_text("100 succeeded")
    expect(node(page, "measure")).to_have_count(0)
    fold.click()
    expect(node(page, "measure")).to_have_count(100)
    page.screenshot(path=str(output_dir / "fanout.png"))

    # A run that doesn't exist: the server's message, and no tab.
    open_palette_dialog(page, "Rnosuchrun")
    error = page.locator(".jp-Dialog")
    expect(error.locator(".jp-Dialog-header")).to_have_text("Coflux: can't open run Rnosuchrun")
    expect(error.locator(".jp-Dialog-body")).to_have_text("no run Rnosuchrun")
    error.get_by_role("button", name="Close").click()
    expect(page.locator(".jp-Dialog")).to_have_count(0)
    expect(page.locator(".coflux-RunView-panel")).to_have_count(2)  # no tab for it
