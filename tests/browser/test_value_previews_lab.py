"""Values people can read, in JupyterLab, in Chromium: a workflow returns a DataFrame and one of its
tasks an image; the run tree's header shows the frame's head as a table with its dtypes and shape,
and the image step's details show its thumbnail, decoded by the browser. Screenshots:
``test-output/<test name>/``."""

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

CELLS = [
    "%%coflux_task\ndef cities(n):\n    import pandas as pd\n"
    '    return pd.DataFrame({"city": ["Lisbon", "Porto", "Faro"][:n], "people": [545, 232, 60][:n]})',
    "%%coflux_task\ndef picture(width):\n    from PIL import Image, ImageDraw\n"
    '    image = Image.new("RGB", (width, width // 2), "white")\n'
    '    ImageDraw.Draw(image).ellipse((10, 10, width - 10, width // 2 - 10), fill="teal")\n'
    "    return image",
    "%%coflux_task\ndef size(image):\n    return image.size",
    "%%coflux_workflow\ndef report(n):\n    size(picture(640))\n    return cities(n)",
    "run = report.run(3)\nrun",
]


def test_the_run_tree_shows_a_table_and_a_thumbnail(lab: LabServer, page: Page, output_dir: Path) -> None:
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    nbformat.write(notebook, lab.root_dir / "values.ipynb")
    page.set_default_timeout(LAB_LOAD_TIMEOUT_MS)
    page.goto(f"{lab.url}/lab/tree/values.ipynb?token={lab.token}")
    page.wait_for_selector(f"{NOTEBOOK} .jp-Cell")
    expect(page.locator(KERNEL_STATUS)).to_have_text(re.compile(r"\| Idle$"), timeout=LAB_LOAD_TIMEOUT_MS)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']")
    page.click("div.lm-MenuBar-itemLabel:text-is('Run')")
    page.click("li.lm-Menu-item:has-text('Run All Cells')")

    expect(page.locator(RUN_STATUS)).to_have_attribute("data-status", "succeeded", timeout=RUN_TIMEOUT_MS)
    header = page.locator(f"{TREE} .coflux-run-header")
    expect(header.locator(".coflux-run-result")).to_have_text(
        re.compile("^DataFrame 3\N{MULTIPLICATION SIGN}2 " + r"\(city: (object|str), people: int64\)$")
    )
    table = header.locator(".coflux-value-table table")
    expect(table.locator("thead tr").first).to_have_text(re.compile(r"^\s*city\s*people\s*$"))
    expect(table.locator("tr.coflux-dtypes")).to_contain_text("int64")
    expect(table.locator("tbody tr")).to_have_count(3)
    expect(table.locator("tbody tr").first).to_have_text(re.compile(r"^\s*Lisbon\s*545\s*$"))
    expect(header.locator(".coflux-value-shape")).to_have_text("3 rows \N{MULTIPLICATION SIGN} 2 columns")
    expect(step_row(page, "values:size").locator(".coflux-call-args")).to_have_text(
        "(<PIL.Image 640\N{MULTIPLICATION SIGN}320 RGB>)"
    )

    picture = step_row(page, "values:picture")
    picture.click()
    details = page.locator(f'{TREE} .coflux-details[data-step-id="{picture.get_attribute("data-step-id")}"]')
    image = details.locator(".coflux-result img.coflux-value-image")
    expect(image).to_be_visible()
    expect(image).to_have_attribute("alt", "<PIL.Image 640\N{MULTIPLICATION SIGN}320 RGB>")
    size = image.evaluate("img => [img.complete, img.naturalWidth, img.naturalHeight]")
    assert size == [True, 256, 128]  # the browser decoded the thumbnail
    page.locator(TREE).scroll_into_view_if_needed()
    page.screenshot(path=str(output_dir / "previews.png"), full_page=True)
