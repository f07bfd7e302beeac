"""Browser tests: a real `jupyter lab` (with our server extension) driven by Debian's Chromium through
Playwright. Everything a test leaves behind (screenshots, the server log) goes to
``test-output/<test name>/`` at the repository's root.

Without ``/usr/bin/chromium`` (or the playwright package) the tests are skipped, except in CI
(``CI`` set), where they fail instead."""

from __future__ import annotations

import shutil
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.support.lab import CHROMIUM, CHROMIUM_ARGS, LOG_TAIL_LINES, OUTPUT, LabServer, require_browser

if TYPE_CHECKING:
    from playwright.sync_api import Page


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    """Keep each phase's report on the item (fixtures look at it on teardown), and show the tail of
    the Lab server's log under a failed test."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    lab = getattr(item, "lab_server", None)
    if report.failed and lab is not None:
        report.sections.append(
            (f"jupyter lab log (last {LOG_TAIL_LINES} lines of {lab.log_path})", lab.log_tail())
        )
    return report


def _failed(request: pytest.FixtureRequest) -> bool:
    return any(
        getattr(getattr(request.node, f"report_{when}", None), "failed", False) for when in ("setup", "call")
    )


@pytest.fixture(autouse=True)
def _browser_available() -> None:
    """First of all (autouse): no server started, no output wiped, when the test can't run."""
    require_browser()


@pytest.fixture
def output_dir(request: pytest.FixtureRequest) -> Path:
    """``test-output/<test name>/``, emptied first."""
    path = OUTPUT / str(request.node.name)
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


@pytest.fixture
def lab(request: pytest.FixtureRequest, tmp_path: Path, output_dir: Path) -> Iterator[LabServer]:
    server = LabServer(tmp_path / "lab", output_dir / "jupyter-lab.log")
    server.home.mkdir()
    request.node.lab_server = server  # for the failure report's log tail
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
def page(request: pytest.FixtureRequest, output_dir: Path) -> Iterator[Page]:
    """A Chromium page (1280x1400); on failure its screenshot is saved as ``failure.png``."""
    from playwright.sync_api import sync_playwright

    messages: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 1400})
            page = context.new_page()
            page.on("console", lambda message: messages.append(f"{message.type}: {message.text}"))
            page.on("pageerror", lambda error: messages.append(f"pageerror: {error}"))
            yield page
            if _failed(request):
                try:
                    page.screenshot(path=str(output_dir / "failure.png"), full_page=True)
                except Exception as err:  # the page may be gone: keep the original failure
                    messages.append(f"(failure screenshot failed: {err})")
        finally:
            browser.close()
            (output_dir / "browser-console.log").write_text("".join(f"{m}\n" for m in messages))
