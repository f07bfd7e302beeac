"""The Coflux side panel in JupyterLab, in Chromium, against a real `jupyter lab` and a real
`coflux worker` connected to it: workspaces (a child made from the panel appears nested), the
registered workflows, a run started from a Run form that goes live to `succeeded`, inline errors
that start nothing, and recovery after the Lab server restarts under the open page.
Screenshots: ``test-output/<test name>/``."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

if not os.environ.get("CI"):  # in CI a missing playwright is an error, not a skip
    pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")

from playwright.sync_api import Locator, Page, expect

from tests.support.harness import wait_until
from tests.support.lab import LAB_LOAD_TIMEOUT_MS, RUN_TIMEOUT_MS, LabServer, stop_process

pytestmark = pytest.mark.e2e

FLOWS = """
import coflux as cf


@cf.workflow()
def greet(name: str, times: int = 2, punctuation: str = "!") -> str:
    return " ".join([f"hello {name}"] * times) + punctuation


@cf.workflow()
def total(values: list[int], scale: float = 1.5) -> float:
    return sum(values) * scale


@cf.workflow()
def labelled(value: int, *, label: str) -> str:
    return f"{label}: {value}"
"""

PANEL = "#coflux-panel"
WORKSPACE_ROW = f"{PANEL} .coflux-WorkspaceTree-row"
WORKFLOW = f"{PANEL} .coflux-WorkflowList-item"
RUN_ROW = f"{PANEL} .coflux-RecentRuns-row"
FEED = f"{PANEL} .coflux-Panel-feed"


@pytest.fixture
def worker(lab: LabServer, tmp_path: Path, output_dir: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A `coflux worker` of ``panel_flows`` in workspace ``default`` of the Lab's server, registering
    its workflows (so they stay listed across a restart of the server)."""
    modules = tmp_path / "modules"
    modules.mkdir()
    (modules / "panel_flows.py").write_text(FLOWS)
    process = lab.start_worker("panel_flows", modules, output_dir / "worker.log", workspace="default")
    try:
        wait_until(
            lambda: _workflows(lab) >= {"greet", "total", "labelled"},
            60,
            "the worker to register its workflows",
        )
        yield process
    finally:
        stop_process(process)


def _workflows(lab: LabServer) -> set[str]:
    try:
        answer = lab.api("GET", "coflux/api/projects/default/workspaces/default/workflows")
    except OSError:
        return set()
    return {w["name"] for w in answer["workflows"] if w["registered"]}


def open_panel(lab: LabServer, page: Page) -> Locator:
    page.set_default_timeout(LAB_LOAD_TIMEOUT_MS)
    page.goto(f"{lab.url}/lab?token={lab.token}")
    page.wait_for_selector("#jp-main-dock-panel")
    # Lab is done restoring its layout (else the palette may lose its focus, and close, meanwhile)
    expect(page.locator("#jupyterlab-splash")).to_have_count(0, timeout=LAB_LOAD_TIMEOUT_MS)
    expect(page.locator("#jp-main-dock-panel .lm-TabBar-tab.lm-mod-current")).to_be_visible(
        timeout=LAB_LOAD_TIMEOUT_MS
    )
    page.click("div.lm-MenuBar-itemLabel:text-is('View')")
    page.click("li.lm-Menu-item:has-text('Activate Command Palette')")
    page.locator(".lm-CommandPalette-input").fill("Coflux: show panel")
    page.locator(".lm-CommandPalette-item:has-text('Coflux: show panel')").click()
    panel = page.locator(PANEL)
    expect(panel).to_be_visible()
    return panel


def workflow(page: Page, name: str) -> Locator:
    return page.locator(f'{WORKFLOW}[data-workflow="panel_flows:{name}"]')


def field(form: Locator, parameter: str) -> Locator:
    return form.locator(f'.coflux-RunForm-field[data-parameter="{parameter}"]')


def test_panel_lists_workspaces_workflows_and_creates_a_child(
    lab: LabServer, worker: subprocess.Popen[bytes], page: Page, output_dir: Path
) -> None:
    open_panel(lab, page)
    default = page.locator(f'{WORKSPACE_ROW}[data-workspace="default"]')
    expect(default).to_have_attribute("aria-selected", "true")
    expect(default).to_have_attribute("data-depth", "0")
    expect(workflow(page, "greet")).to_contain_text("registered")
    expect(workflow(page, "total")).to_contain_text("registered")

    # A child from the panel: it appears under its base, one level deeper, and is selected.
    default.hover()
    default.get_by_role("button", name="New child workspace...").click()
    dialog = page.locator(".jp-Dialog")
    dialog.locator("input").fill("feature")
    dialog.get_by_role("button", name="Create").click()
    child = page.locator(f'{WORKSPACE_ROW}[data-workspace="feature"]')
    expect(child).to_have_attribute("data-depth", "1")
    expect(child).to_have_attribute("aria-selected", "true")
    rows = page.locator(WORKSPACE_ROW)
    names = [rows.nth(i).get_attribute("data-workspace") for i in range(rows.count())]
    assert names.index("feature") == names.index("default") + 1
    assert lab.api("GET", "coflux/api/projects/default/workspaces")["workspaces"] == [
        {"name": "default", "base": None, "state": "active"},
        {"name": "feature", "base": "default", "state": "active"},
    ]

    # Creating it again is refused: the server's message shows in the panel.
    child.hover()
    default.hover()
    default.get_by_role("button", name="New child workspace...").click()
    dialog.locator("input").fill("feature")
    dialog.get_by_role("button", name="Create").click()
    error = page.locator(f"{PANEL} .coflux-WorkspaceTree .coflux-Panel-error")
    expect(error).to_contain_text("Could not create feature")
    expect(error).to_contain_text("feature")

    # Pausing shows the state; a workspace event from elsewhere (the REST API) shows live too.
    child.hover()
    child.get_by_role("button", name="Pause").click()
    expect(child).to_have_attribute("data-state", "paused")
    expect(child.locator(".coflux-Badge")).to_have_text("paused")
    lab.api("POST", "coflux/api/projects/default/workspaces/feature/resume", {})
    expect(child).to_have_attribute("data-state", "active")
    default.click()
    expect(workflow(page, "greet")).to_be_visible()
    page.screenshot(path=str(output_dir / "panel.png"))

    # Archived workspaces hide behind "Show archived".
    lab.api("POST", "coflux/api/projects/default/workspaces/feature/archive", {})
    expect(child).to_have_count(0)
    page.locator(f"{PANEL} .coflux-WorkspaceTree-archived").check()
    expect(child).to_have_attribute("data-state", "archived")
    expect(child).to_have_attribute("data-depth", "1")

    # The dark theme: the panel follows it (theme variables only), to look at.
    page.click("div.lm-MenuBar-itemLabel:text-is('Settings')")
    page.click("li.lm-Menu-item:has-text('Theme')")
    page.click("li.lm-Menu-item:has-text('JupyterLab Dark')")
    expect(page.locator("body")).to_have_attribute("data-jp-theme-light", "false")
    expect(page.locator("#jupyterlab-splash")).to_have_count(0)  # the theme's splash is gone
    page.screenshot(path=str(output_dir / "panel-dark.png"))


def test_run_form_starts_a_run_that_goes_live_to_succeeded(
    lab: LabServer, worker: subprocess.Popen[bytes], page: Page, output_dir: Path
) -> None:
    open_panel(lab, page)
    greet = workflow(page, "greet")
    greet.locator(".coflux-WorkflowList-row").click()
    form = greet.locator(".coflux-RunForm")
    # Generated from the parameters: annotations shown, defaults filled in as JSON, required marked.
    expect(field(form, "name")).to_contain_text("name: str")
    expect(field(form, "name").locator(".coflux-RunForm-required")).to_be_visible()
    expect(field(form, "times").locator("input")).to_have_value("2")
    expect(field(form, "punctuation").locator("input")).to_have_value('"!"')
    expect(field(form, "times").locator(".coflux-RunForm-required")).to_have_count(0)

    # `name` is a str: typed without quotes; `times` changed; `punctuation` keeps its default.
    field(form, "name").locator("input").fill("ana")
    field(form, "times").locator("input").fill("3")
    form.get_by_role("button", name="Run").click()

    row = page.locator(RUN_ROW).first
    expect(row).to_contain_text("panel_flows:greet")
    run_id = row.get_attribute("data-run-id")
    assert run_id
    expect(row).to_have_attribute("data-status", "succeeded", timeout=RUN_TIMEOUT_MS)
    expect(row).to_contain_text("succeeded")
    # The run opened in the main area.
    expect(page.locator(f"#jp-main-dock-panel .lm-TabBar-tab:has-text('{run_id}')")).to_be_visible()
    run = lab.api("GET", f"coflux/api/projects/default/runs/{run_id}")
    assert run["result_value"] == "hello ana hello ana hello ana!"
    assert run["steps"][0]["arguments"] == ["ana", 3]

    # The status filter applies here: no failed run, then the run again.
    status = page.locator(f"{PANEL} .coflux-RecentRuns-status-filter")
    status.select_option("failed")
    expect(page.locator(RUN_ROW)).to_have_count(0)
    status.select_option("succeeded")
    expect(page.locator(RUN_ROW)).to_have_count(1)
    # The workflow filter asks the server: no run of `total`, then all runs again.
    workflows = page.locator(f"{PANEL} .coflux-RecentRuns-workflow")
    workflows.select_option("panel_flows:total")
    expect(page.locator(f"{PANEL} .coflux-RecentRuns .coflux-Panel-empty")).to_have_text("No runs yet.")
    workflows.select_option("")
    expect(page.locator(RUN_ROW)).to_have_count(1)
    expect(page.locator(RUN_ROW)).to_have_attribute("data-run-id", run_id)
    page.screenshot(path=str(output_dir / "run-started.png"))


def test_bad_json_shows_an_inline_error_and_starts_nothing(
    lab: LabServer, worker: subprocess.Popen[bytes], page: Page, output_dir: Path
) -> None:
    open_panel(lab, page)
    total = workflow(page, "total")
    total.locator(".coflux-WorkflowList-row").click()
    form = total.locator(".coflux-RunForm")
    expect(field(form, "scale").locator("input")).to_have_value("1.5")
    run = form.get_by_role("button", name="Run")

    run.click()  # the required one left empty
    expect(field(form, "values").locator(".coflux-RunForm-error")).to_have_text(re.compile("Required"))

    field(form, "values").locator("input").fill("[1, 2,")
    expect(field(form, "values").locator(".coflux-RunForm-error")).to_contain_text("Not valid JSON")
    run.click()
    expect(field(form, "values").locator(".coflux-RunForm-error")).to_contain_text("Not valid JSON")
    expect(field(form, "values").locator("input")).to_have_attribute("aria-invalid", "true")
    expect(page.locator(f"{PANEL} .coflux-RecentRuns .coflux-Panel-empty")).to_have_text("No runs yet.")
    page.screenshot(path=str(output_dir / "run-form-error.png"))
    assert lab.api("GET", "coflux/api/projects/default/workspaces/default/runs")["runs"] == []

    # The server's refusal shows inline too: three arguments for two parameters can't be typed,
    # but a tagged value the server rejects can.
    field(form, "values").locator("input").fill('{"$c": "nonsense"}')
    run.click()
    expect(form.locator(".coflux-RunForm-server")).to_contain_text("unknown tag")
    assert lab.api("GET", "coflux/api/projects/default/workspaces/default/runs")["runs"] == []

    # A required keyword-only parameter can't be passed by the REST body: the form says so.
    labelled = workflow(page, "labelled")
    labelled.locator(".coflux-WorkflowList-row").click()
    expect(labelled.locator(".coflux-RunForm")).to_contain_text("required keyword-only parameter label")
    expect(labelled.get_by_role("button", name="Run")).to_be_disabled()


def test_panel_recovers_after_the_server_restarts(
    lab: LabServer, worker: subprocess.Popen[bytes], page: Page, output_dir: Path
) -> None:
    open_panel(lab, page)
    expect(workflow(page, "greet")).to_be_visible()
    expect(page.locator(FEED)).to_be_hidden()

    lab.stop()
    expect(page.locator(FEED)).to_be_visible()
    expect(page.locator(FEED)).to_contain_text("Can't reach the Coflux server: reconnecting")
    page.locator(f"{PANEL} .jp-ToolbarButtonComponent").first.click()  # a refresh fails readably, once
    unreachable = page.locator(f"{PANEL} .coflux-Panel-header .coflux-Panel-error")
    expect(unreachable).to_contain_text("The Jupyter server can't be reached")
    expect(page.locator(f"{PANEL} .coflux-Panel-error:visible")).to_have_count(1)
    expect(workflow(page, "greet")).to_be_visible()  # what it showed stays
    page.screenshot(path=str(output_dir / "reconnecting.png"))

    lab.restart()
    wait_until(lambda: _workflows(lab) >= {"greet"}, 60, "the workflows to be listed again")
    run_id = lab.api(
        "POST",
        "coflux/api/projects/default/workspaces/default/runs",
        {"module": "panel_flows", "target": "greet", "arguments": ["bo", 1]},
    )["run_id"]
    expect(page.locator(FEED)).to_be_hidden(timeout=RUN_TIMEOUT_MS)
    row = page.locator(f'{RUN_ROW}[data-run-id="{run_id}"]')
    expect(row).to_have_attribute("data-status", "succeeded", timeout=RUN_TIMEOUT_MS)
    expect(unreachable).to_be_hidden()
    page.screenshot(path=str(output_dir / "recovered.png"))
