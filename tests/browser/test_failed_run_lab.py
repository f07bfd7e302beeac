"""A failing notebook in JupyterLab, in Chromium, as a new user meets it: the run tree shows the failed
step's traceback naming its cell; `run.result()` shows the run's traceback in the cell's error output;
after the task's cell is fixed and run again, "re-run, then its parents" in the step's details makes the
run succeed, the workflow reusing the fixed step. Screenshots: ``test-output/<test name>/``."""

from __future__ import annotations

import os
import re
from pathlib import Path

import nbformat
import pytest

if not os.environ.get("CI"):  # in CI a missing playwright is an error, not a skip
    pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")

from playwright.sync_api import Page, expect

from tests.support.lab import (
    ERROR_OUTPUT,
    KERNEL_STATUS,
    LAB_LOAD_TIMEOUT_MS,
    NOTEBOOK,
    RUN_STATUS,
    RUN_TIMEOUT_MS,
    TREE,
    LabServer,
    step_row,
)

pytestmark = pytest.mark.e2e

LOAD = '%%coflux_task\ndef load(text):\n    return [100 // int(v) for v in text.split(",")]'
CELLS = [
    LOAD,
    "%%coflux_workflow\ndef report(text):\n    return sum(load(text))",
    'run = report.run("4,0")\nrun',
    "run.result()",
    LOAD.replace("100 // int(v)", "100 // int(v) if int(v) else 0"),  # the fix, run by hand
]


def test_a_failed_run_shows_its_cells_and_succeeds_after_a_fix(
    lab: LabServer, page: Page, output_dir: Path
) -> None:
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    nbformat.write(notebook, lab.root_dir / "failing.ipynb")
    page.set_default_timeout(LAB_LOAD_TIMEOUT_MS)
    page.goto(f"{lab.url}/lab/tree/failing.ipynb?token={lab.token}")
    page.wait_for_selector(f"{NOTEBOOK} .jp-Cell")
    expect(page.locator(KERNEL_STATUS)).to_have_text(re.compile(r"\| Idle$"), timeout=LAB_LOAD_TIMEOUT_MS)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']")
    page.click("div.lm-MenuBar-itemLabel:text-is('Run')")
    page.click("li.lm-Menu-item:has-text('Run All Cells')")

    # The run fails; the failed step's details show where, by cell and line.
    expect(page.locator(RUN_STATUS)).to_have_attribute("data-status", "failed", timeout=RUN_TIMEOUT_MS)
    load = step_row(page, "failing:load")
    expect(load).to_have_attribute("data-state", "failed")
    load.click()
    step_id = load.get_attribute("data-step-id")
    details = page.locator(f'{TREE} .coflux-details[data-step-id="{step_id}"]')
    traceback = details.locator(".coflux-traceback")
    expect(traceback).to_contain_text("Cell In[1], line 3, in load")
    expect(traceback).not_to_contain_text("ipykernel_")
    expect(traceback).not_to_contain_text("coflux/worker")
    # run.result() stopped Run All with the run's traceback: the cells, not the library.
    error = page.locator(f"{NOTEBOOK} .jp-CodeCell").nth(3).locator(ERROR_OUTPUT)
    expect(error).to_have_count(1, timeout=RUN_TIMEOUT_MS)
    expect(error).to_contain_text("Cell In[1], line 3, in load")
    expect(error).to_contain_text("Cell In[2], line 3, in report")
    expect(error).to_contain_text("Cell In[4], line 1")
    expect(error).not_to_contain_text("coflux/client.py")
    page.screenshot(path=str(output_dir / "failed.png"), full_page=True)

    # Fix the task's cell and run it (the last cell), then re-run the step with its parents.
    page.locator(f"{NOTEBOOK} .jp-CodeCell").last.locator(".jp-InputPrompt").click()
    page.click("div.lm-MenuBar-itemLabel:text-is('Run')")
    page.click("li.lm-Menu-item:has-text('Run Selected Cell')")
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']")
    details.locator("button.coflux-rerun-parents").click()

    expect(page.locator(RUN_STATUS)).to_have_attribute("data-status", "succeeded", timeout=RUN_TIMEOUT_MS)
    expect(page.locator(f"{TREE} .coflux-run-result")).to_have_text("25")
    expect(load).to_have_attribute("data-state", "succeeded")
    expect(load.locator(".coflux-attempts")).to_have_text("\N{MULTIPLICATION SIGN}2")
    expect(step_row(page, "failing:load")).to_have_count(1)  # reused by the workflow, not called anew
    root = step_row(page, "failing:report")
    expect(root).to_have_attribute("data-state", "succeeded")
    expect(root.locator(".coflux-mark[data-mark='rerun-parents']")).to_contain_text(
        f"after {step_id} was fixed"
    )
    page.locator(TREE).scroll_into_view_if_needed()
    page.screenshot(path=str(output_dir / "fixed.png"), full_page=True)
