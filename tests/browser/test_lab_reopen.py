"""A notebook's runs outlive its kernel (issue 13: "Error displaying widget: model not found" after the
kernel shut down). In JupyterLab, in Chromium, with a `coflux worker` process serving the targets:

1. Run All: one cell shows a ``Run`` as its value, another an explicit ``RunTree``; both trees reach
   `succeeded` (screenshot ``before.png``). Save the notebook.
2. Close the page and shut the kernel down (its widget models are gone with it), then open the
   notebook again: every run output renders live from the server (no ipywidgets trouble), with
   the run's status and steps, as JupyterLab's own output (``application/vnd.coflux.run+json``).
3. Re-run a step from an output: the worker runs it and the new attempt appears in that output by
   itself, no cell executed (screenshot ``reopened.png``)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import urllib.error
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest

from coflux.notebook import filepreview

if not os.environ.get("CI"):  # in CI a missing playwright is an error, not a skip
    pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")

from playwright.sync_api import Locator, Page, expect

from tests.support.harness import wait_until
from tests.support.lab import (
    ERROR_OUTPUT,
    KERNEL_STATUS,
    LAB_LOAD_TIMEOUT_MS,
    NOTEBOOK,
    NUMBERED,
    PROMPTS,
    RUN_TIMEOUT_MS,
    TREE,
    LabServer,
    prompts,
    stop_process,
)

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK_FILE = "reopen.ipynb"
API = "coflux/api/projects/default"
RUN_MIME = "application/vnd.coflux.run+json"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
WIDGET_TROUBLE = re.compile(r"Loading widget|Error displaying widget|Model not found", re.IGNORECASE)
OUTPUT = f"{NOTEBOOK} .coflux-RunOutput"
DEADLINE_S = RUN_TIMEOUT_MS / 1000
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}

MARKDOWN = "# Notes\n\n*measured* daily <script>alert('x')</script> [a](javascript:alert(1))\n"
FLOWS = r'''"""Targets served by a `coflux worker` process, not by the notebook's kernel."""
import coflux as cf


@cf.task()
def square(x: int) -> int:
    cf.log_info("squaring {x}", x=x)
    return x * x


@cf.workflow()
def squares(n: int) -> int:
    return sum(square(i) for i in range(n))


@cf.workflow()
def samples() -> cf.Asset:
    """Files of each kind a preview is made of, in the browser or (Parquet) by a kernel only."""
    files = {
        "notes.md": NOTES,
        "summary.json": '{"rows": 4, "mean": 10.75, "days": [1, 2, 3, 4]}',
        "table.csv": 'day,temp\n1,10.0\n2,"10,5"\n3,11.0\n',
        "readme.txt": "plain text\n",
    }
    for name, text in files.items():
        with open(name, "w") as file:
            file.write(text)
    with open("table.parquet", "wb") as file:
        file.write(b"PAR1" + bytes(64) + b"PAR1")
    with open("weights.bin", "wb") as file:
        file.write(bytes(range(256)))
    return cf.asset(name="samples")
'''.replace("NOTES", repr(MARKDOWN))

CELLS = [
    "from coflux.notebook import current\nfrom coflux.notebook.widgets import RunTree\n\n"
    "client = current().client()",
    'run = client.start_run("reopen_flows:squares", 3)\nrun',  # a Run as the cell's value
    'other = client.start_run("reopen_flows:squares", 4)\nRunTree(other)',  # an explicit RunTree
    "[run.result(timeout=60), other.result(timeout=60)]",
    'client.start_run("reopen_flows:samples")',  # a run whose result is an asset
]


@pytest.fixture
def worker(lab: LabServer, output_dir: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`coflux worker reopen_flows` against the Lab server's Coflux, with a worker token."""
    (lab.root_dir / "reopen_flows.py").write_text(FLOWS)
    process = lab.start_worker("reopen_flows", lab.root_dir, output_dir / "worker.log")
    try:

        def registered() -> bool:
            assert process.poll() is None, f"the worker exited with {process.returncode}"
            try:
                listed = lab.api("GET", f"{API}/workspaces/main/workflows")["workflows"]
            except urllib.error.HTTPError as err:
                if err.code == 404:  # no workspace main until the worker made it
                    return False
                raise
            return any(w["module"] == "reopen_flows" and w["registered"] for w in listed)

        wait_until(registered, DEADLINE_S, "the worker to register reopen_flows")
        yield process
    finally:
        stop_process(process)


def sessions(lab: LabServer) -> list[dict[str, Any]]:
    return [s for s in lab.api("GET", "api/sessions") if s["path"] == NOTEBOOK_FILE]


def wait_for_notebook(page: Page) -> None:
    page.wait_for_selector(f"{NOTEBOOK} .jp-Cell")
    expect(page.locator(KERNEL_STATUS)).to_have_text(re.compile(r"\| Idle$"), timeout=LAB_LOAD_TIMEOUT_MS)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']")


def output_of(page: Page, run_id: str) -> Locator:
    """The run output showing ``run_id``."""
    return page.locator(OUTPUT).filter(
        has=page.locator(".coflux-run-header > .coflux-run-id", has_text=re.compile(f"^{run_id}$"))
    )


def expect_run_shown(page: Page, run_id: str, steps: int) -> Locator:
    """The output of ``run_id`` shows it `succeeded` with the workflow and its ``steps`` squares."""
    output = output_of(page, run_id)
    expect(output).to_have_count(1, timeout=RUN_TIMEOUT_MS)
    status = output.locator(".coflux-run-header > .coflux-run-status")
    expect(status).to_have_attribute("data-status", "succeeded", timeout=RUN_TIMEOUT_MS)
    expect(status).to_have_text("succeeded")
    targets = output.locator(".coflux-step .coflux-target")
    expect(targets).to_have_text(["reopen_flows:squares"] + ["reopen_flows:square"] * steps)
    for row in output.locator(".coflux-step").all():
        expect(row).to_have_attribute("data-state", "succeeded")
    return output


def test_run_outputs_render_live_after_the_kernel_is_gone(
    lab: LabServer, worker: subprocess.Popen[bytes], page: Page, output_dir: Path
) -> None:
    page_errors: list[str] = []
    page.on("pageerror", lambda error: page_errors.append(str(error)))
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    notebook.metadata["kernelspec"] = KERNELSPEC
    nbformat.write(notebook, lab.root_dir / NOTEBOOK_FILE)
    page.set_default_timeout(LAB_LOAD_TIMEOUT_MS)
    notebook_url = f"{lab.url}/lab/tree/{NOTEBOOK_FILE}"

    # 1. Run All: both runs show as their trees, live, until they succeed.
    page.goto(f"{notebook_url}?token={lab.token}")
    wait_for_notebook(page)
    page.click("div.lm-MenuBar-itemLabel:text-is('Run')")
    page.click("li.lm-Menu-item:has-text('Run All Cells')")
    expect(page.locator(PROMPTS).last).to_have_text(NUMBERED, timeout=RUN_TIMEOUT_MS)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']")
    expect(page.locator(f"{NOTEBOOK} {ERROR_OUTPUT}")).to_have_count(0)
    expect(page.locator(TREE)).to_have_count(3)
    run_ids = page.locator(f"{TREE} .coflux-run-header > .coflux-run-id").all_inner_texts()
    assert len(run_ids) == 3 and all(run_ids), run_ids
    first, second, _samples = run_ids
    expect_run_shown(page, first, 3)
    expect_run_shown(page, second, 4)
    counters = prompts(page)
    page.screenshot(path=str(output_dir / "before.png"), full_page=True)

    page.click("div.lm-MenuBar-itemLabel:text-is('File')")
    page.click("li.lm-Menu-item:has(.lm-Menu-itemLabel:text-is('Save Notebook'))")
    expect(page.locator(".lm-TabBar-tab.jp-mod-dirty")).to_have_count(0)
    saved = json.loads((lab.root_dir / NOTEBOOK_FILE).read_text())
    outputs = [
        o["data"] for c in saved["cells"] for o in c.get("outputs", []) if RUN_MIME in o.get("data", {})
    ]
    assert [o[RUN_MIME]["run_id"] for o in outputs] == run_ids, outputs
    # ... beside the widget's view (classic front-ends) and the text tree.
    assert all(WIDGET_MIME in o and "".join(o["text/plain"]).startswith("Run ") for o in outputs), outputs
    assert all(o[RUN_MIME]["url"] == f"{lab.url}/coflux" for o in outputs), outputs

    # 2. Close the page and shut the kernel down: the widgets' models go with it.
    [session] = sessions(lab)
    old_kernel = session["kernel"]["id"]
    page.goto("about:blank")
    lab.api("DELETE", f"api/sessions/{session['id']}")
    wait_until(
        lambda: all(k["id"] != old_kernel for k in lab.api("GET", "api/kernels")),
        DEADLINE_S,
        "the kernel to shut down",
    )

    page.goto(notebook_url)
    page.wait_for_selector(f"{NOTEBOOK} .jp-Cell")
    expect(page.locator(OUTPUT)).to_have_count(3, timeout=LAB_LOAD_TIMEOUT_MS)
    second_output = expect_run_shown(page, second, 4)
    first_output = expect_run_shown(page, first, 3)
    expect(page.locator(f"{NOTEBOOK} .jp-OutputArea-output", has_text=WIDGET_TROUBLE)).to_have_count(0)
    expect(first_output.locator(".coflux-RunOutput-open")).to_have_text("open in the run view")
    assert all(s["kernel"]["id"] != old_kernel for s in sessions(lab))  # whatever kernel Lab started is new

    # 3. Re-run a step from the reopened output: the worker runs it, the attempt shows by itself.
    step = first_output.locator(".coflux-step").filter(has=page.locator(".coflux-call-args", has_text="(2)"))
    expect(step).to_have_count(1)
    step_id = step.get_attribute("data-step-id")
    step.click()
    details = first_output.locator(f'.coflux-details[data-step-id="{step_id}"]')
    expect(details.locator(".coflux-log")).to_contain_text([re.compile("squaring 2")])
    rerun = details.locator("button.coflux-rerun")
    expect(rerun).to_have_text("re-run in main")
    rerun.click()
    expect(first_output.locator(".coflux-notice")).to_contain_text(f"re-running {step_id} in main as")
    attempts = details.locator(".coflux-execution")
    expect(attempts).to_have_count(2, timeout=RUN_TIMEOUT_MS)
    expect(attempts.last).to_have_attribute("data-state", "succeeded", timeout=RUN_TIMEOUT_MS)
    expect(attempts.last.locator(".coflux-mark[data-mark='rerun']")).to_have_count(1)
    expect(attempts.last.locator(".coflux-result")).to_contain_text("4")
    expect(step.locator(".coflux-attempts")).to_have_text("\N{MULTIPLICATION SIGN}2")
    expect(attempts.last.locator(".coflux-log")).to_contain_text([re.compile("squaring 2")])
    assert prompts(page) == counters  # no cell ran
    expect(second_output.locator(".coflux-step .coflux-attempts")).to_have_count(
        0
    )  # the other run is untouched

    # 4. The asset a run persisted, opened with View: previewed in the browser as the kernel does.
    samples = page.locator(OUTPUT).nth(2)
    expect(samples.locator(".coflux-run-status")).to_have_attribute("data-status", "succeeded")
    samples.locator(".coflux-step").first.click()
    item = samples.locator(".coflux-asset-item")
    expect(item.locator(".coflux-asset-name")).to_have_text("samples")
    item.locator("button.coflux-asset-view").click()
    entries = item.locator(".coflux-asset-entry")
    expect(entries).to_have_count(6, timeout=RUN_TIMEOUT_MS)
    expect_previews_as_the_kernel_makes_them(page, item)

    page.locator(OUTPUT).first.scroll_into_view_if_needed()
    page.screenshot(path=str(output_dir / "reopened.png"), full_page=True)
    item.scroll_into_view_if_needed()
    page.screenshot(path=str(output_dir / "asset.png"), full_page=True)
    assert not page_errors, page_errors


def expect_previews_as_the_kernel_makes_them(page: Page, item: Locator) -> None:
    """Each file of the ``samples`` asset shows what coflux.notebook.filepreview makes of it."""

    def entry(path: str) -> Locator:
        return item.locator(f".coflux-asset-entry[data-path='{path}']")

    def kernel(path: str, media_type: str, data: bytes) -> dict[str, Any]:
        return filepreview.preview(path, media_type, data)

    # Markdown: the same HTML as the kernel's markdown-it, the file's own markup escaped.
    notes = entry("notes.md")
    expect(notes).to_have_attribute("data-kind", "markdown")
    rendered = notes.locator(".coflux-preview-markdown")
    expect(rendered.locator("h1")).to_have_text("Notes")
    expect(rendered.locator("em")).to_have_text("measured")
    expect(rendered.locator("script")).to_have_count(0)
    expect(rendered.locator("a")).to_have_count(0)  # javascript: links are refused
    expect(rendered).to_contain_text("<script>alert('x')</script>")
    expected = kernel("notes.md", "text/markdown", MARKDOWN.encode())["html"]
    normalised = page.evaluate(
        "(html) => { const d = document.createElement('div'); d.innerHTML = html; return d.innerHTML; }",
        expected,
    )
    assert rendered.inner_html() == normalised

    # JSON, pretty-printed; text as it is.
    summary = entry("summary.json")
    expect(summary).to_have_attribute("data-kind", "json")
    json_text = b'{"rows": 4, "mean": 10.75, "days": [1, 2, 3, 4]}'
    assert (
        summary.locator(".coflux-preview-text").text_content()
        == kernel("s.json", "application/json", json_text)["text"]
    )
    expect(entry("readme.txt")).to_have_attribute("data-kind", "text")
    assert entry("readme.txt").locator(".coflux-preview-text").text_content() == "plain text\n"

    # CSV: a table (a quoted comma stays in its cell).
    table = entry("table.csv").locator("table.coflux-preview-table")
    csv = kernel("table.csv", "text/csv", b'day,temp\n1,10.0\n2,"10,5"\n3,11.0\n')
    expect(table.locator("thead th")).to_have_text(csv["columns"])
    expect(table.locator("tbody tr")).to_have_count(3)
    for i, row in enumerate(csv["rows"]):
        expect(table.locator("tbody tr").nth(i).locator("td")).to_have_text(row)
    expect(table.locator("caption")).to_have_text("3 rows \N{MULTIPLICATION SIGN} 2 columns")

    # Parquet needs a kernel (pyarrow): said, with its download link; a binary file has no preview.
    parquet = entry("table.parquet")
    expect(parquet).to_have_attribute("data-kind", "none")
    expect(parquet.locator(".coflux-preview-message")).to_contain_text("download it")
    link = parquet.locator("a.coflux-asset-download")
    expect(link).to_have_attribute("data-via", "link")
    assert (link.get_attribute("href") or "").endswith("/files/table.parquet")
    weights = entry("weights.bin")
    media_type = weights.locator(".coflux-asset-type").inner_text()
    expect(weights.locator(".coflux-preview-message")).to_have_text(
        filepreview.without_bytes("weights.bin", media_type, 256)["message"]
    )


def test_a_saved_output_of_another_server_or_an_unknown_run_says_so(
    lab: LabServer, page: Page, output_dir: Path
) -> None:
    """A notebook saved elsewhere: its run output names the other server instead of showing a run
    of this one; an output of this server whose run it doesn't know shows the server's message."""

    def output(run_id: str, url: str) -> Any:
        data = {
            RUN_MIME: {
                "run_id": run_id,
                "project": "default",
                "url": url,
                "view": "main",
                "workspace": "main",
            },
            "text/plain": f"Run {run_id}",
        }
        return nbformat.v4.new_output("display_data", data=data)

    elsewhere, unknown = nbformat.v4.new_code_cell("run"), nbformat.v4.new_code_cell("run")
    elsewhere.outputs = [output("Rfaraway1", "http://coflux.example.com:8888/coflux")]
    unknown.outputs = [output("Rnosuchrun", f"{lab.url}/coflux")]
    notebook = nbformat.v4.new_notebook(cells=[elsewhere, unknown])
    notebook.metadata["kernelspec"] = KERNELSPEC
    nbformat.write(notebook, lab.root_dir / "saved.ipynb")
    page.set_default_timeout(LAB_LOAD_TIMEOUT_MS)
    page.goto(f"{lab.url}/lab/tree/saved.ipynb?token={lab.token}")
    page.wait_for_selector(f"{NOTEBOOK} .jp-Cell")
    outputs = page.locator(OUTPUT)
    expect(outputs).to_have_count(2, timeout=LAB_LOAD_TIMEOUT_MS)

    expect(outputs.nth(0).locator(".coflux-RunOutput-elsewhere")).to_contain_text(
        "Run Rfaraway1 (project default) is on another Coflux server, http://coflux.example.com:8888/coflux"
    )
    expect(outputs.nth(0).locator(".coflux-runtree")).to_have_count(0)

    error = outputs.nth(1).locator(".coflux-runtree .coflux-error")
    expect(error).to_have_text(re.compile(r"^cannot refresh: .*Rnosuchrun"), timeout=RUN_TIMEOUT_MS)
    expect(outputs.nth(1).locator(".coflux-run-header > .coflux-run-status")).to_have_text("loading")
    page.screenshot(path=str(output_dir / "saved.png"), full_page=True)


def restart(lab: LabServer) -> None:
    """Stop the Lab server and start it again on the same port, with the same data and login."""
    lab.stop()
    with open(lab.log_path, "ab") as log:
        log.write(b"\n--- restarted by the test ---\n")
        log.flush()
        lab.process = subprocess.Popen(
            lab.command(),
            env=lab.environment(),
            cwd=lab.home,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    wait_until(lab._ready, DEADLINE_S, "the Lab server to answer again")


def test_an_output_recovers_after_the_server_restarts(
    lab: LabServer, worker: subprocess.Popen[bytes], page: Page, output_dir: Path
) -> None:
    """A saved run output keeps working across a restart of the server, with no page reload: while
    the server is away, a refresh says it can't reach it; once it is back the message goes by
    itself, and a re-run from the output appears in it."""
    started = lab.api(
        "POST",
        f"{API}/workspaces/main/runs",
        {"module": "reopen_flows", "target": "squares", "arguments": [2]},
    )
    run_id = started["run_id"]
    wait_until(
        lambda: lab.api("GET", f"{API}/runs/{run_id}")["status"] == "succeeded",
        DEADLINE_S,
        f"{run_id} to succeed",
    )
    cell = nbformat.v4.new_code_cell("run")
    bundle = {
        "run_id": run_id,
        "project": "default",
        "url": f"{lab.url}/coflux",
        "view": "main",
        "workspace": "main",
    }
    cell.outputs = [
        nbformat.v4.new_output("display_data", data={RUN_MIME: bundle, "text/plain": f"Run {run_id}"})
    ]
    notebook = nbformat.v4.new_notebook(cells=[cell])
    notebook.metadata["kernelspec"] = KERNELSPEC
    nbformat.write(notebook, lab.root_dir / "restart.ipynb")
    page_errors: list[str] = []
    page.on("pageerror", lambda error: page_errors.append(f"{error} {error.stack}"))
    page.set_default_timeout(LAB_LOAD_TIMEOUT_MS)
    page.goto(f"{lab.url}/lab/tree/restart.ipynb?token={lab.token}")
    page.wait_for_selector(f"{NOTEBOOK} .jp-Cell")
    output = expect_run_shown(page, run_id, 2)

    # JupyterLab says it lost its server in a dialog; a user dismisses it (it may come again).
    lost = page.locator(".jp-Dialog", has_text="Server Connection Error")
    page.add_locator_handler(lost, lambda dialog: dialog.get_by_role("button", name="Close").click())
    restart_done = False
    try:
        lab.stop()
        output.locator("button.coflux-refresh").click()
        error = output.locator(".coflux-error")
        expect(error).to_contain_text("cannot refresh: ", timeout=RUN_TIMEOUT_MS)
        page.screenshot(path=str(output_dir / "away.png"), full_page=True)
        restart(lab)
        restart_done = True
    finally:
        if not restart_done and (lab.process is None or lab.process.poll() is not None):
            restart(lab)  # the fixture stops it: leave it running

    expect(error).to_have_count(0, timeout=RUN_TIMEOUT_MS)  # the feed reconnected: refetched
    step = output.locator(".coflux-step").filter(has=page.locator(".coflux-call-args", has_text="(1)"))
    step.click()
    step_id = step.get_attribute("data-step-id")
    details = output.locator(f'.coflux-details[data-step-id="{step_id}"]')
    details.locator("button.coflux-rerun").click()
    attempts = details.locator(".coflux-execution")
    expect(attempts).to_have_count(2, timeout=RUN_TIMEOUT_MS)
    expect(attempts.last).to_have_attribute("data-state", "succeeded", timeout=RUN_TIMEOUT_MS)
    page.screenshot(path=str(output_dir / "back.png"), full_page=True)
    # JupyterLab itself reports what failed while its server was away ("Failed to fetch" from its
    # requests, "Kernel is dead", with stacks in jlab_core); nothing of this extension may fail.
    ours = [e for e in page_errors if "jupyter-coflux" in e or "jlab_core" not in e]
    assert not ours, page_errors
