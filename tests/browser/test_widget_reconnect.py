"""The run tree survives the browser reconnecting to the same, still running kernel (issue: "Widgets
update while no cell runs and keep working after the kernel reconnects").

In JupyterLab, in Chromium: Run All until the tree is `succeeded`, save the notebook (autosave is
off; without saving, a reload shows the notebook from disk, with no outputs), then

1. reload the page: Lab reattaches to the same kernel and ipywidgets restores the tree's model from
   the kernel; the tree renders again (same run, `succeeded`), and its re-run button still works:
   attempt #2 appears and succeeds, no cell runs;
2. close the page (``about:blank``, the kernel loses its last connection), re-run another step
   through the REST API and let it finish, then open the notebook again: the tree shows that
   attempt too, since the kernel's widget kept updating while nobody looked.

The execution counters never move, and the kernel stays the same one. In JupyterLab the tree's
output is rendered by the extension from the server (``application/vnd.coflux.run+json``, preferred
to the widget view), so what comes back is the server's state of the run, and the steps left open
come back from the browser's memory of them (the kernel widget's model keeps them elsewhere). Screenshot:
``test-output/<test name>/reconnected.png``; timings in ``timings.json``."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

if not os.environ.get("CI"):  # in CI a missing playwright is an error, not a skip
    pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")

from playwright.sync_api import Locator, Page, expect

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

NOTEBOOK_FILE = "quickstart.ipynb"
API = "coflux/api/projects/default"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
# What ipywidgets shows instead of a view it cannot build (a model it could not get from the kernel).
WIDGET_TROUBLE = re.compile(r"Loading widget|Error displaying widget|Model not found", re.IGNORECASE)
DEADLINE_S = RUN_TIMEOUT_MS / 1000


def wait_until(what: str, check: Callable[[], Any], timeout: float = DEADLINE_S) -> Any:
    """``check()``'s first truthy value, polled every 0.1 s."""
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)
    return value


def kernel_of(lab: LabServer) -> dict[str, Any]:
    """The notebook's session's kernel (``id``, ``execution_state``, ``connections``)."""
    sessions = [s for s in lab.api("GET", "api/sessions") if s["path"] == NOTEBOOK_FILE]
    assert len(sessions) == 1, sessions
    kernel: dict[str, Any] = sessions[0]["kernel"]
    return kernel


def wait_for_notebook(page: Page) -> None:
    """The notebook is shown and its kernel attached and idle."""
    page.wait_for_selector(f"{NOTEBOOK} .jp-Cell")
    expect(page.locator(KERNEL_STATUS)).to_have_text(re.compile(r"\| Idle$"), timeout=LAB_LOAD_TIMEOUT_MS)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']")


def expect_tree_back(page: Page, run_id: str) -> None:
    """The tree of ``run_id`` rendered from the kernel's model, `succeeded`; else say what shows in
    its place (ipywidgets' "Loading widget..." or an error)."""
    try:
        expect(page.locator(RUN_STATUS)).to_have_attribute("data-status", "succeeded", timeout=RUN_TIMEOUT_MS)
    except AssertionError as err:
        shown = page.locator(f"{NOTEBOOK} .jp-OutputArea-output").all_inner_texts()
        raise AssertionError(f"the run tree did not come back; the outputs show {shown!r}") from err
    expect(page.locator(f"{TREE} .coflux-run-header > .coflux-run-id")).to_have_text(run_id)
    expect(page.locator(RUN_STATUS)).to_have_text("succeeded")
    expect(page.locator(TREE)).to_have_count(1)
    expect(page.locator(f"{NOTEBOOK} .jp-OutputArea-output", has_text=WIDGET_TROUBLE)).to_have_count(0)
    expect(page.locator(f"{NOTEBOOK} {ERROR_OUTPUT}")).to_have_count(0)


def step_parts(page: Page, step_id: str) -> tuple[Locator, Locator]:
    """A step's row and its details (shown once expanded)."""
    return (
        page.locator(f'{TREE} .coflux-step[data-step-id="{step_id}"]'),
        page.locator(f'{TREE} .coflux-details[data-step-id="{step_id}"]'),
    )


def expand(page: Page, step_id: str) -> Locator:
    row, details = step_parts(page, step_id)
    if row.get_attribute("aria-expanded") != "true":
        row.click()
    expect(row).to_have_attribute("aria-expanded", "true")
    return details


def expect_attempts(page: Page, step_id: str, attempts: int, rerun_by: str) -> None:
    """The step shows ``attempts`` executions, all `succeeded`, the last a re-run in ``main``."""
    row, details = step_parts(page, step_id)
    numbers = [f"#{n}" for n in range(1, attempts + 1)]
    last = details.locator(".coflux-execution").filter(
        has=page.locator(".coflux-attempt", has_text=re.compile(f"^#{attempts}$"))
    )
    expect(last, f"attempt #{attempts} ({rerun_by})").to_have_count(1, timeout=RUN_TIMEOUT_MS)
    expect(last).to_have_attribute("data-state", "succeeded", timeout=RUN_TIMEOUT_MS)
    expect(last.locator(".coflux-mark[data-mark='rerun']")).to_have_count(1)
    expect(last.locator(".coflux-ws")).to_have_text("main")
    expect(details.locator(".coflux-execution .coflux-attempt")).to_have_text(numbers)
    expect(row.locator(".coflux-attempts")).to_have_text(f"\N{MULTIPLICATION SIGN}{attempts}")
    expect(row).to_have_attribute("data-state", "succeeded")


def save_notebook(page: Page) -> None:
    page.click("div.lm-MenuBar-itemLabel:text-is('File')")
    page.click("li.lm-Menu-item:has(.lm-Menu-itemLabel:text-is('Save Notebook'))")
    expect(page.locator(".lm-TabBar-tab.jp-mod-dirty")).to_have_count(0)


def test_the_tree_comes_back_after_a_reload_and_shows_what_happened_meanwhile(
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
    notebook_url = f"{lab.url}/lab/tree/{NOTEBOOK_FILE}"
    page.goto(f"{notebook_url}?token={lab.token}")
    wait_for_notebook(page)
    assert all(p in ("[ ]:", "") for p in prompts(page)), prompts(page)
    lap("lab shows the notebook, kernel idle")

    page.click("div.lm-MenuBar-itemLabel:text-is('Run')")
    page.click("li.lm-Menu-item:has-text('Run All Cells')")
    expect(page.locator(RUN_STATUS)).to_have_attribute("data-status", "succeeded", timeout=RUN_TIMEOUT_MS)
    expect(page.locator(PROMPTS).last).to_have_text(NUMBERED, timeout=RUN_TIMEOUT_MS)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']")
    counters = prompts(page)
    assert all(NUMBERED.match(p) for p in counters), counters
    run_id = page.locator(f"{TREE} .coflux-run-header > .coflux-run-id").inner_text()
    assert run_id
    summarise = step_row(page, "quickstart:summarise")
    expect(summarise).to_have_count(3)
    rerun_in_widget, rerun_by_api = (summarise.nth(i).get_attribute("data-step-id") for i in range(2))
    assert rerun_in_widget and rerun_by_api
    kernel = kernel_of(lab)
    lap("run all: tree succeeded")

    # Lab's autosave is off: save, so that the reloaded notebook has the tree's output (a widget
    # view: a model id, which ipywidgets then asks the kernel for).
    save_notebook(page)
    saved = json.loads((lab.root_dir / NOTEBOOK_FILE).read_text())
    views = [o for c in saved["cells"] for o in c.get("outputs", []) if WIDGET_MIME in o.get("data", {})]
    assert len(views) == 1, views
    lap("notebook saved")

    # 1. Reload: the frontend reconnects to the same kernel; the tree comes back from it.
    page.reload()
    wait_for_notebook(page)
    lap("reload: kernel idle")
    expect_tree_back(page, run_id)
    expect(step_row(page, "quickstart:weather")).to_have_count(1)
    expect(step_row(page, "quickstart:fetch")).to_have_count(3)
    expect(step_row(page, "quickstart:summarise")).to_have_count(3)
    for row in page.locator(f"{TREE} .coflux-step").all():
        expect(row).to_have_attribute("data-state", "succeeded")
    assert prompts(page) == counters
    again = kernel_of(lab)
    assert again["id"] == kernel["id"], (kernel, again)
    lap("reload: tree back")

    # ... and it still works: a re-run from the re-rendered tree, with no cell executed.
    details = expand(page, rerun_in_widget)
    expect(details.locator(".coflux-execution .coflux-attempt")).to_have_text(["#1"])
    rerun = details.locator("button.coflux-rerun")
    expect(rerun).to_have_text("re-run in main")
    rerun.click()
    expect_attempts(page, rerun_in_widget, 2, "the widget's re-run button after the reload")
    expect(page.locator(RUN_STATUS)).to_have_attribute("data-status", "succeeded", timeout=RUN_TIMEOUT_MS)
    assert prompts(page) == counters
    expect(page.locator(".jp-Notebook-ExecutionIndicator")).to_have_attribute("data-status", "idle")
    lap("reload: re-run from the tree succeeded")

    # 2. Close the page (the kernel keeps running, with nobody connected), re-run another step
    # through the REST API and let it finish; then open the notebook again.
    expect(page.locator(".lm-TabBar-tab.jp-mod-dirty")).to_have_count(0)  # nothing to save
    page.goto("about:blank")
    wait_until("the kernel to lose its last connection", lambda: kernel_of(lab)["connections"] == 0)
    answer = lab.api("POST", f"{API}/steps/{rerun_by_api}/rerun", {"workspace": "main"})
    execution_id = answer["execution_id"]

    def finished() -> bool:
        view = lab.api("GET", f"{API}/runs/{run_id}?workspace=main")
        step = next(s for s in view["steps"] if s["step_id"] == rerun_by_api)
        return any(
            e["execution_id"] == execution_id and e["state"] == "succeeded" for e in step["executions"]
        )

    wait_until(f"{execution_id} to succeed", finished)
    assert kernel_of(lab)["connections"] == 0  # it all happened while the page was closed
    lap("page closed: REST re-run succeeded")

    page.goto(notebook_url)
    wait_for_notebook(page)
    expect_tree_back(page, run_id)
    assert kernel_of(lab)["id"] == kernel["id"]
    expect_attempts(page, rerun_in_widget, 2, "the widget's re-run, kept in the kernel's model")
    expect(step_parts(page, rerun_by_api)[0].locator(".coflux-attempts")).to_have_text(
        "\N{MULTIPLICATION SIGN}2"
    )
    expand(page, rerun_by_api)
    expect_attempts(page, rerun_by_api, 2, "the REST re-run made while the page was closed")
    expect(
        step_parts(page, rerun_by_api)[1].locator(f'.coflux-execution[data-execution-id="{execution_id}"]')
    ).to_have_count(1)
    assert prompts(page) == counters
    expect(page.locator(".jp-Notebook-ExecutionIndicator")).to_have_attribute("data-status", "idle")
    lap("reopened: tree shows the REST re-run")

    page.locator(TREE).scroll_into_view_if_needed()
    page.screenshot(path=str(output_dir / "reconnected.png"), full_page=True)
    lap("screenshot")
    (output_dir / "timings.json").write_text(json.dumps(timings, indent=2))

    assert not page_errors, page_errors
