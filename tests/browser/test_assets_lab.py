"""The assets notebook in JupyterLab, in Chromium: Run All shows the AssetViewer with the plot's
preview (an image that loaded) and the CSV as a table; its download link fetches the file from the
REST API with the browser's Jupyter login; in the run tree, the step that persisted the asset lists
it and View shows it inline. Screenshot: ``test-output/<test name>/assets.png``."""

from __future__ import annotations

import os
import re
from pathlib import Path

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
    LabServer,
    step_row,
)

pytestmark = pytest.mark.e2e

VIEWER = f"{NOTEBOOK} .coflux-assetviewer"


def _loaded(image: Locator) -> bool:
    return bool(image.evaluate("img => img.complete && img.naturalWidth > 0 && img.naturalHeight > 0"))


def _run_all(page: Page, lab: LabServer) -> None:
    page.goto(f"{lab.url}/lab/tree/assets.ipynb?token={lab.token}")
    page.wait_for_selector(f"{NOTEBOOK} .jp-Cell")
    expect(page.locator(KERNEL_STATUS)).to_have_text(re.compile(r"\| Idle$"), timeout=LAB_LOAD_TIMEOUT_MS)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']")
    page.click("div.lm-MenuBar-itemLabel:text-is('Run')")
    page.click("li.lm-Menu-item:has-text('Run All Cells')")


def test_the_assets_notebook_shows_the_plot_and_the_table(
    lab: LabServer, page: Page, output_dir: Path
) -> None:
    page_errors: list[str] = []
    page.on("pageerror", lambda error: page_errors.append(str(error)))
    page.set_default_timeout(LAB_LOAD_TIMEOUT_MS)
    _run_all(page, lab)

    expect(page.locator(RUN_STATUS)).to_have_attribute("data-status", "succeeded", timeout=RUN_TIMEOUT_MS)
    viewer = page.locator(VIEWER)
    expect(viewer).to_have_count(1, timeout=RUN_TIMEOUT_MS)
    expect(viewer.locator(".coflux-asset-name")).to_have_text("report")
    expect(viewer.locator(".coflux-asset-entry")).to_have_count(2)

    # The plot: an <img> that the browser decoded.
    plot = viewer.locator(".coflux-asset-entry[data-path='temperatures.png']")
    expect(plot.locator(".coflux-asset-type")).to_have_text("image/png")
    image = plot.locator("img.coflux-preview-image")
    expect(image).to_be_visible()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())
    assert _loaded(image)

    # The CSV: a table of its rows.
    table = viewer.locator(".coflux-asset-entry[data-path='temperatures.csv'] table.coflux-preview-table")
    expect(table.locator("th")).to_have_text(["day", "temp"])
    expect(table.locator("tbody tr")).to_have_count(14)
    expect(table.locator("tbody tr").first.locator("td")).to_have_text(["1", "9.0"])

    # Its download link goes to the REST API of this server, which the Jupyter login opens.
    link = viewer.locator(".coflux-asset-entry[data-path='temperatures.csv'] a.coflux-asset-download")
    expect(link).to_have_attribute("data-via", "link")
    href = link.get_attribute("href")
    assert (
        href and "/coflux/api/projects/default/assets/A" in href and href.endswith("/files/temperatures.csv")
    )
    fetched = page.evaluate(
        "async (url) => { const r = await fetch(url); return [r.status, await r.text()]; }", href
    )
    assert fetched[0] == 200 and fetched[1].startswith("day,temp\n1,9.0\n"), fetched
    with page.expect_download() as download_info:
        link.click()
    download = download_info.value
    assert download.suggested_filename == "temperatures.csv"
    saved = output_dir / "downloaded.csv"
    download.save_as(saved)
    assert saved.read_text() == fetched[1]

    # Every cell ran without an error.
    expect(page.locator(PROMPTS).last).to_have_text(NUMBERED, timeout=RUN_TIMEOUT_MS)
    expect(page.locator(f"{NOTEBOOK} {ERROR_OUTPUT}")).to_have_count(0)

    # In the run tree: the report step lists its asset; View shows the plot inline.
    report = step_row(page, "assets:report")
    report.click()
    item = page.locator(f"{NOTEBOOK} .coflux-runtree .coflux-details .coflux-asset-item")
    expect(item).to_have_count(1)
    expect(item).to_have_attribute("data-how", "persisted")
    item.locator("button.coflux-asset-view").click()
    inline = item.locator(".coflux-asset-entry[data-path='temperatures.png'] img.coflux-preview-image")
    expect(inline).to_be_visible(timeout=RUN_TIMEOUT_MS)
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=inline.element_handle())

    viewer.scroll_into_view_if_needed()
    page.screenshot(path=str(output_dir / "assets.png"), full_page=True)
    assert not page_errors, page_errors
