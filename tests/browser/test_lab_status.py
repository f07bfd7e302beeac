"""The status bar item and the workspace switcher, in JupyterLab, in Chromium.

A notebook of the test's own opens with its kernel, a worker of project ``default``: the status bar
says ``Coflux: main`` with the events feed's dot connected. Clicking it lists the project's
workspaces as a tree (``dev`` under ``main``, ``main`` marked current); choosing ``dev`` switches the
kernel: the status bar says ``Coflux: dev``, the server's ``GET kernels/{id}`` says so, and the
kernel's own ``%coflux workspace`` prints it. The palette's "Coflux: switch workspace" opens the same
chooser, whose "New workspace…" creates a child of ``dev`` and switches the kernel to it.
Screenshots: ``test-output/<test name>/statusbar.png`` and ``switcher.png``."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

if not os.environ.get("CI"):  # in CI a missing playwright is an error, not a skip
    pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")

from playwright.sync_api import Page, expect

from tests.support.lab import KERNEL_STATUS, LAB_LOAD_TIMEOUT_MS, NOTEBOOK, RUN_TIMEOUT_MS, LabServer

pytestmark = pytest.mark.e2e

NOTEBOOK_FILE = "status-check.ipynb"
OTHER_FILE = "other.ipynb"
ITEM = "#jp-main-statusbar .coflux-StatusItem"
LABEL = f"{ITEM} .coflux-StatusItem-label"
DOT = f"{ITEM} .coflux-StatusItem-dot"
CHOOSER = ".jp-Dialog .coflux-WorkspaceChooser"
ROWS = f"{CHOOSER} .coflux-WorkspaceChooser-item"


def _write_notebook(path: Path, *sources: str) -> None:
    """A notebook of code cells (by default one, ``%coflux workspace``) for a python3 kernel."""
    cells: list[dict[str, Any]] = [
        {
            "cell_type": "code",
            "execution_count": None,
            "id": f"cell-{n}",
            "metadata": {},
            "outputs": [],
            "source": source,
        }
        for n, source in enumerate(sources or ("%coflux workspace",))
    ]
    notebook = {
        "cells": cells,
        "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path.write_text(json.dumps(notebook))


def _kernel_id(lab: LabServer, path: str = NOTEBOOK_FILE) -> str:
    sessions = [s for s in lab.api("GET", "api/sessions") if s["path"] == path]
    assert len(sessions) == 1, sessions
    kernel_id: str = sessions[0]["kernel"]["id"]
    return kernel_id


def _kernel_worker(lab: LabServer, kernel_id: str) -> dict[str, Any]:
    answer: dict[str, Any] = lab.api("GET", f"coflux/api/kernels/{kernel_id}")
    return answer


def _open_chooser_from_status_bar(page: Page) -> None:
    page.click(ITEM)
    expect(page.locator(CHOOSER)).to_be_visible()


def _run_cell(page: Page, index: int = 0) -> None:
    """Run the notebook's cell ``index``."""
    page.locator(f"{NOTEBOOK} .jp-Cell").nth(index).locator(".jp-InputPrompt").click()
    page.click("div.lm-MenuBar-itemLabel:text-is('Run')")
    page.click("li.lm-Menu-item:has(.lm-Menu-itemLabel:text-is('Run Selected Cell and Do not Advance'))")


def _run_first_cell(page: Page) -> str:
    """Run the notebook's first cell (``%coflux workspace``, not run before); what it printed."""
    cell = page.locator(f"{NOTEBOOK} .jp-Cell").first
    _run_cell(page)
    expect(cell.locator(".jp-InputPrompt")).to_have_text(re.compile(r"\[1\]:"), timeout=RUN_TIMEOUT_MS)
    output = cell.locator(".jp-OutputArea-output")
    expect(output).to_have_count(1)
    return output.inner_text().strip()


def test_the_status_bar_shows_and_switches_the_kernels_workspace(
    lab: LabServer, page: Page, output_dir: Path
) -> None:
    page_errors: list[str] = []
    page.on("pageerror", lambda error: page_errors.append(str(error)))
    page.set_default_timeout(LAB_LOAD_TIMEOUT_MS)
    _write_notebook(lab.root_dir / NOTEBOOK_FILE)
    _write_notebook(lab.root_dir / OTHER_FILE)

    page.goto(f"{lab.url}/lab/tree/{NOTEBOOK_FILE}?token={lab.token}")
    page.wait_for_selector(f"{NOTEBOOK} .jp-Cell")
    expect(page.locator(KERNEL_STATUS)).to_have_text(re.compile(r"\| Idle$"), timeout=LAB_LOAD_TIMEOUT_MS)

    # The kernel's workspace, as the server knows it, and the events feed connected.
    expect(page.locator(LABEL)).to_have_text("Coflux: main", timeout=LAB_LOAD_TIMEOUT_MS)
    expect(page.locator(DOT)).to_have_attribute("data-state", "connected")
    kernel_id = _kernel_id(lab)
    assert _kernel_worker(lab, kernel_id)["workspace"] == "main"
    assert "workspace 'main' of project 'default'" in (page.locator(ITEM).get_attribute("title") or "")
    page.locator("#jp-main-statusbar").screenshot(path=str(output_dir / "statusbar.png"))
    lab.api("POST", "coflux/api/projects/default/workspaces", {"name": "dev", "base": "main"})

    # The chooser: the project's workspaces as a tree, the kernel's current one marked.
    _open_chooser_from_status_bar(page)
    rows = page.locator(ROWS)
    expect(rows).to_have_count(2)
    main, dev = rows.nth(0), rows.nth(1)
    expect(main).to_have_attribute("data-workspace", "main")
    expect(main).to_have_attribute("aria-current", "true")
    expect(main.locator(".coflux-WorkspaceChooser-current")).to_have_text("current")
    expect(dev).to_have_attribute("data-workspace", "dev")
    expect(dev.locator(".coflux-WorkspaceChooser-base")).to_have_text("base: main")
    assert dev.evaluate("e => getComputedStyle(e).getPropertyValue('--coflux-depth').trim()") == "1"
    dev.click()
    expect(dev).to_have_attribute("aria-selected", "true")
    page.screenshot(path=str(output_dir / "switcher.png"))
    page.click(".jp-Dialog button:has-text('Switch')")

    # The kernel switched: the status bar, the server and the kernel itself say so.
    expect(page.locator(LABEL)).to_have_text("Coflux: dev", timeout=RUN_TIMEOUT_MS)
    answer = _kernel_worker(lab, kernel_id)
    assert (answer["workspace"], answer["connected"], answer["project"]) == ("dev", True, "default")
    assert _run_first_cell(page) == "dev"
    expect(page.locator(".jp-Dialog")).to_have_count(0)

    # The palette's command opens the same chooser; "New workspace…" makes a child and switches.
    page.click("div.lm-MenuBar-itemLabel:text-is('View')")
    page.click("li.lm-Menu-item:has(.lm-Menu-itemLabel:text-is('Activate Command Palette'))")
    palette = page.locator("#command-palette .lm-CommandPalette-input")
    expect(palette).to_be_focused()
    palette.fill("Coflux: switch workspace")
    page.click("#command-palette .lm-CommandPalette-item:has-text('Coflux: switch workspace')")
    expect(page.locator(CHOOSER)).to_be_visible()
    expect(page.locator(f"{ROWS}[aria-current='true']")).to_have_attribute("data-workspace", "dev")
    page.click(".jp-Dialog button:has-text('New workspace')")
    name_input = page.locator(".jp-Dialog input")
    expect(name_input).to_be_visible()
    name_input.fill("main")  # taken: the server's refusal, word for word
    page.click(".jp-Dialog button:has-text('Create and switch')")
    refusal = page.locator(".jp-Dialog:has-text('New workspace')")
    expect(refusal).to_contain_text("Workspace 'main' could not be created: workspace 'main' already exists")
    refusal.locator("button").last.click()
    expect(page.locator(".jp-Dialog")).to_have_count(0)
    expect(page.locator(LABEL)).to_have_text("Coflux: dev")

    page.click(ITEM)
    page.click(".jp-Dialog button:has-text('New workspace')")
    name_input.fill("dev-feature")
    page.click(".jp-Dialog button:has-text('Create and switch')")
    expect(page.locator(LABEL)).to_have_text("Coflux: dev-feature", timeout=RUN_TIMEOUT_MS)
    assert _kernel_worker(lab, kernel_id)["workspace"] == "dev-feature"
    workspaces = lab.api("GET", "coflux/api/projects/default/workspaces")["workspaces"]
    assert {"name": "dev-feature", "base": "dev", "state": "active"} in workspaces
    page.locator("#jp-main-statusbar").screenshot(path=str(output_dir / "statusbar-new.png"))

    # Another notebook, its kernel in main: the item follows the active notebook.
    page.locator(f".jp-DirListing-item:has-text('{OTHER_FILE}')").dblclick()
    expect(page.locator(".lm-TabBar-tab.jp-mod-current")).to_contain_text(OTHER_FILE)
    expect(page.locator(LABEL)).to_have_text("Coflux: main", timeout=LAB_LOAD_TIMEOUT_MS)
    page.click(f".lm-TabBar-tab:has-text('{NOTEBOOK_FILE}')")
    expect(page.locator(LABEL)).to_have_text("Coflux: dev-feature")
    page.click(f".lm-TabBar-tab:has-text('{OTHER_FILE}')")
    expect(page.locator(LABEL)).to_have_text("Coflux: main")

    # In the dark theme, the chooser and the item keep to the theme's colours.
    page.click("div.lm-MenuBar-itemLabel:text-is('Settings')")
    page.click("li.lm-Menu-item:has(.lm-Menu-itemLabel:text-is('Theme'))")
    page.click("li.lm-Menu-item:has(.lm-Menu-itemLabel:text-is('JupyterLab Dark'))")
    expect(page.locator("body")).to_have_attribute("data-jp-theme-light", "false")
    _open_chooser_from_status_bar(page)
    page.screenshot(path=str(output_dir / "switcher-dark.png"))
    page.click(".jp-Dialog button:has-text('Cancel')")
    expect(page.locator(LABEL)).to_have_text("Coflux: main")

    assert not page_errors, page_errors


def test_the_status_bar_follows_the_server_going_away_and_coming_back(
    lab: LabServer, page: Page, output_dir: Path
) -> None:
    page.set_default_timeout(LAB_LOAD_TIMEOUT_MS)
    _write_notebook(lab.root_dir / NOTEBOOK_FILE)
    page.goto(f"{lab.url}/lab/tree/{NOTEBOOK_FILE}?token={lab.token}")
    page.wait_for_selector(f"{NOTEBOOK} .jp-Cell")
    expect(page.locator(LABEL)).to_have_text("Coflux: main", timeout=LAB_LOAD_TIMEOUT_MS)
    expect(page.locator(DOT)).to_have_attribute("data-state", "connected")

    # JupyterLab says so too, in a dialog of its own, whenever one of its requests fails: closed.
    lost = page.locator(".jp-Dialog:has-text('Server Connection Error')")
    page.add_locator_handler(lost, lambda dialog: dialog.locator("button:has-text('Close')").click())
    lab.stop()
    expect(page.locator(DOT)).to_have_attribute("data-state", "unreachable", timeout=RUN_TIMEOUT_MS)
    tooltip = page.locator(DOT).get_attribute("title") or ""
    assert "the server is unreachable" in tooltip, tooltip
    page.locator("#jp-main-statusbar").screenshot(path=str(output_dir / "unreachable.png"))

    shutil.rmtree(lab.root_dir)
    lab.start()
    _write_notebook(lab.root_dir / NOTEBOOK_FILE)
    expect(page.locator(DOT)).to_have_attribute("data-state", "connected", timeout=RUN_TIMEOUT_MS)
    page.screenshot(path=str(output_dir / "back.png"))
    # The kernel went down with the server (the item says so, a 404 of the new server); the
    # notebook opened again gets a new kernel, and the item follows it.
    expect(page.locator(LABEL)).to_have_text(re.compile("^Coflux: (not connected|no kernel)$"))
    save = page.locator(".jp-Dialog:has-text('Save your work')")  # Lab may find the notebook changed
    page.add_locator_handler(save, lambda dialog: dialog.locator("button:has-text('Discard')").click())
    page.locator(f".lm-TabBar-tab:has-text('{NOTEBOOK_FILE}') .lm-TabBar-tabCloseIcon").click()
    expect(page.locator(NOTEBOOK)).to_have_count(0)
    expect(page.locator(LABEL)).to_have_text("Coflux")
    page.locator(f".jp-DirListing-item:has-text('{NOTEBOOK_FILE}')").dblclick()
    expect(page.locator(LABEL)).to_have_text("Coflux: main", timeout=RUN_TIMEOUT_MS)
    assert _kernel_worker(lab, _kernel_id(lab))["connected"] is True


def test_a_busy_kernel_switches_once_its_cell_ends(lab: LabServer, page: Page, output_dir: Path) -> None:
    release = lab.root_dir / "release"
    wait = f"import os, time\nwhile not os.path.exists({str(release)!r}):\n    time.sleep(0.05)\n"
    wait += "print('released')"
    _write_notebook(lab.root_dir / NOTEBOOK_FILE, "%coflux workspace", wait)
    page.set_default_timeout(LAB_LOAD_TIMEOUT_MS)
    page.goto(f"{lab.url}/lab/tree/{NOTEBOOK_FILE}?token={lab.token}")
    page.wait_for_selector(f"{NOTEBOOK} .jp-Cell")
    expect(page.locator(LABEL)).to_have_text("Coflux: main", timeout=LAB_LOAD_TIMEOUT_MS)
    lab.api("POST", "coflux/api/projects/default/workspaces", {"name": "dev", "base": "main"})

    _run_cell(page, 1)  # runs until the test releases it
    expect(page.locator(KERNEL_STATUS)).to_have_text(re.compile(r"\| Busy$"))
    _open_chooser_from_status_bar(page)
    page.locator(f"{ROWS}[data-workspace='dev']").click()
    page.click(".jp-Dialog button:has-text('Switch')")
    expect(page.locator(LABEL)).to_have_text("Coflux: switching to dev…")
    notice = page.locator(".jp-Notification-Toast-warning", has_text="The kernel is busy")
    expect(notice).to_contain_text(
        "it switches to workspace 'dev' once what it runs now has finished", timeout=RUN_TIMEOUT_MS
    )
    page.locator("#jp-main-statusbar").screenshot(path=str(output_dir / "switching.png"))
    assert _kernel_worker(lab, _kernel_id(lab))["workspace"] == "main"  # not yet

    release.touch()
    expect(page.locator(LABEL)).to_have_text("Coflux: dev", timeout=RUN_TIMEOUT_MS)
    assert _kernel_worker(lab, _kernel_id(lab))["workspace"] == "dev"
    expect(page.locator(f"{NOTEBOOK} .jp-Cell").nth(1).locator(".jp-OutputArea-output")).to_have_text(
        "released"
    )
