"""The quick start notebook in JupyterLab, in Chromium: Run All shows the live run tree, which reaches
`succeeded`; a step's re-run button starts a second attempt that appears in the tree by itself (no
cell runs). Screenshot: ``test-output/<test name>/quickstart.png``."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest

if not os.environ.get("CI"):  # in CI a missing playwright is an error, not a skip
    pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")

from playwright.sync_api import Page, expect

from tests.support.lab import (
    ERROR_OUTPUT,
    KERNEL_STATUS,
    LAB_LOAD_TIMEOUT_MS,
    NOTEBOOK,
    NUMBERED,
    PROMPTS,
    RUN_STATUS,
    RUN_TIMEOUT_MS,
    TREE,
    LabServer,
    prompts,
    step_row,
)

pytestmark = pytest.mark.e2e


def test_quickstart_runs_and_a_step_reruns_from_the_tree(
    lab: LabServer, page: Page, output_dir: Path
) -> None:
    timings: dict[str, float] = {}
    clock = time.monotonic()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.monotonic()
        timings[name] = round(now - clock, 2)
        clock = now

    page_errors: list[str] = []
    page.on("pageerror", lambda error: page_errors.append(str(error)))
    page.set_default_timeout(LAB_LOAD_TIMEOUT_MS)
    page.goto(f"{lab.url}/lab/tree/quickstart.ipynb?token={lab.token}")
    page.wait_for_selector(f"{NOTEBOOK} .jp-Cell")
    lap("lab shows the notebook")
    # The kernel is attached and idle (the execution indicator says idle before that: Run All then
    # would open the "Select Kernel" dialog instead of running).
    expect(page.locator(KERNEL_STATUS)).to_have_text(re.compile(r"\| Idle$"), timeout=LAB_LOAD_TIMEOUT_MS)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']")
    assert prompts(page) and all(p in ("[ ]:", "") for p in prompts(page)), prompts(page)
    lap("kernel idle")

    # Menus by selector, never the command palette (typing may land in a cell).
    page.click("div.lm-MenuBar-itemLabel:text-is('Run')")
    page.click("li.lm-Menu-item:has-text('Run All Cells')")

    # The `run` cell displays the live tree; it reaches succeeded, with its steps.
    expect(page.locator(RUN_STATUS)).to_have_attribute("data-status", "succeeded", timeout=RUN_TIMEOUT_MS)
    expect(page.locator(RUN_STATUS)).to_have_text("succeeded")
    expect(step_row(page, "quickstart:weather")).to_have_count(1)
    expect(step_row(page, "quickstart:fetch")).to_have_count(3)
    expect(step_row(page, "quickstart:summarise")).to_have_count(3)
    # The three calls of one task are told apart by their arguments, shown in short on their rows.
    expect(step_row(page, "quickstart:fetch").locator(".coflux-call-args")).to_have_text(
        ['("Lisbon")', '("Oslo")', '("Nairobi")']
    )
    for row in page.locator(f"{TREE} .coflux-step").all():
        expect(row).to_have_attribute("data-state", "succeeded")
        expect(row.locator(".coflux-state")).to_have_attribute("data-state", "succeeded")
    # ... and every cell ran, the last one (run.result) included.
    expect(page.locator(PROMPTS).last).to_have_text(NUMBERED, timeout=RUN_TIMEOUT_MS)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']")
    before = prompts(page)
    assert all(NUMBERED.match(p) for p in before), before
    expect(page.locator(f"{NOTEBOOK} {ERROR_OUTPUT}")).to_have_count(0)
    expect(
        page.locator(PROMPTS).last.locator("xpath=ancestor::div[contains(@class,'jp-CodeCell')]")
    ).to_contain_text("'Lisbon': {'min': 6, 'max': 12, 'mean': 8.75}")
    lap("run all: tree succeeded")

    # Expand a summarise step and re-run it in the kernel's workspace.
    summarise = step_row(page, "quickstart:summarise").first
    step_id = summarise.get_attribute("data-step-id")
    assert step_id
    row = page.locator(f'{TREE} .coflux-step[data-step-id="{step_id}"]')
    details = page.locator(f'{TREE} .coflux-details[data-step-id="{step_id}"]')
    expect(row.locator(".coflux-attempts")).to_have_count(0)  # one attempt so far
    row.click()
    expect(row).to_have_attribute("aria-expanded", "true")
    expect(details.locator(".coflux-execution")).to_have_count(1)
    expect(details.locator(".coflux-execution .coflux-attempt")).to_have_text(["#1"])
    rerun = details.locator("button.coflux-rerun")
    expect(rerun).to_have_text("re-run in main")
    rerun.click()

    # The second attempt shows up and succeeds, pushed to the widget while no cell runs.
    second = details.locator(".coflux-execution").filter(has=page.locator(".coflux-attempt", has_text="#2"))
    expect(second).to_have_count(1, timeout=RUN_TIMEOUT_MS)
    expect(second).to_have_attribute("data-state", "succeeded", timeout=RUN_TIMEOUT_MS)
    expect(second.locator(".coflux-mark[data-mark='rerun']")).to_have_count(1)
    expect(details.locator(".coflux-execution .coflux-attempt")).to_have_text(["#1", "#2"])
    expect(row.locator(".coflux-attempts")).to_have_text("\N{MULTIPLICATION SIGN}2")
    expect(row).to_have_attribute("data-state", "succeeded")
    expect(page.locator(RUN_STATUS)).to_have_attribute("data-status", "succeeded", timeout=RUN_TIMEOUT_MS)
    lap("re-run: attempt 2 succeeded")

    # No cell was executed for that: the execution counters didn't move, the kernel is idle.
    assert prompts(page) == before
    expect(page.locator(".jp-Notebook-ExecutionIndicator")).to_have_attribute("data-status", "idle")

    page.locator(TREE).scroll_into_view_if_needed()
    page.screenshot(path=str(output_dir / "quickstart.png"), full_page=True)
    lap("screenshot")
    (output_dir / "timings.json").write_text(json.dumps(timings, indent=2))

    assert not page_errors, page_errors
    # Only elements directly in the tree: no stray text such as "null" from a skipped part.
    stray = page.locator(TREE).evaluate(
        "tree => [...tree.childNodes].filter((n) => n.nodeType === Node.TEXT_NODE).map((n) => n.textContent)"
    )
    assert stray == [], f"stray text in the run tree: {stray}"
