"""A real ``jupyter lab`` (with our server extension) for browser tests, and what the tests look for
in its page (Playwright selectors and timeouts for the visible notebook panel)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
OUTPUT = ROOT / "test-output"
CHROMIUM = Path("/usr/bin/chromium")
# Chromium in a container, as root: headless, no sandbox (it can't run as root), no GPU, no
# /dev/shm (often tiny in containers), and nothing phoning home (updates, sync, QUIC probes).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
# JupyterLab user settings: no autosave (a broken run must not leak into the next), no news or
# update checks (no network, no pop-ups over the notebook).
LAB_SETTINGS: dict[str, dict[str, Any]] = {
    "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
    "@jupyterlab/apputils-extension/notification": {"checkForUpdates": False, "fetchNews": "false"},
}
LAB_START_TIMEOUT = 60.0
LOG_TAIL_LINES = 80

# Playwright timeouts and selectors shared by the tests (the visible notebook panel only).
LAB_LOAD_TIMEOUT_MS = 60_000
RUN_TIMEOUT_MS = 60_000
NOTEBOOK = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook"
PROMPTS = f"{NOTEBOOK} .jp-CodeCell .jp-InputPrompt"
TREE = f"{NOTEBOOK} .coflux-runtree"
RUN_STATUS = f"{TREE} .coflux-run-header > .coflux-run-status"
KERNEL_STATUS = "#jp-main-statusbar .jp-StatusBar-TextItem:has-text('Python 3')"
# An error output: JupyterLab 4 renders an error's traceback with the stderr renderer (its model
# holds application/vnd.jupyter.error too, but nothing renders that), so this also matches text a
# cell wrote to stderr: "no error output" means no stderr either.
ERROR_OUTPUT = ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
NUMBERED = re.compile(r"^\[\d+\]:$")


def step_row(page: Page, target: str) -> Locator:
    """The tree's step rows of ``module:target``."""
    return page.locator(f"{TREE} .coflux-step").filter(
        has=page.locator(".coflux-target", has_text=re.compile(f"^{re.escape(target)}$"))
    )


def prompts(page: Page) -> list[str]:
    """The code cells' input prompts (``[3]:``, ``[ ]:``), in order."""
    return [text.strip() for text in page.locator(PROMPTS).all_inner_texts()]


def require_browser() -> None:
    """Skip without Chromium or playwright, except in CI (``CI`` set), where that is a failure."""
    reason = None
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing (apt-get install chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            reason = "the playwright package is not installed"
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must run the browser tests")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class LabServer:
    """A `jupyter lab` subprocess on 127.0.0.1 serving a fresh copy of ``notebooks/``, with isolated
    Jupyter/IPython directories, its own Coflux data dir and no COFLUX_* variables."""

    def __init__(self, home: Path, log_path: Path) -> None:
        self.home = home
        self.log_path = log_path
        self.root_dir = home / "notebooks"
        self.token = secrets.token_hex(16)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def environment(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("COFLUX_", "JUPYTER_", "JPY_")) and k not in ("IPYTHONDIR", "PYTHONPATH")
        }
        # JUPYTER_DATA_DIR only replaces the user's data dir: sys.prefix/share/jupyter (the installed
        # labextensions: jupyterlab_widgets, anywidget) and kernelspecs are still found.
        for name, sub in [
            ("JUPYTER_CONFIG_DIR", "config"),
            ("JUPYTER_DATA_DIR", "data"),
            ("JUPYTER_RUNTIME_DIR", "runtime"),
            ("IPYTHONDIR", "ipython"),
        ]:
            env[name] = str(self.home / sub)
            (self.home / sub).mkdir(parents=True, exist_ok=True)
        return env

    def command(self) -> list[str]:
        settings = self.home / "lab-settings"
        for plugin, values in LAB_SETTINGS.items():
            path = settings / f"{plugin}.jupyterlab-settings"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))
        return [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--allow-root",
            "--ip=127.0.0.1",
            f"--port={self.port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root_dir}",
            "--ServerApp.terminals_enabled=False",
            f"--LabApp.user_settings_dir={settings}",
            f"--LabApp.workspaces_dir={self.home / 'lab-workspaces'}",
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            f"--Coflux.data_dir={self.home / 'coflux-data'}",
        ]

    def start(self) -> LabServer:
        shutil.copytree(NOTEBOOKS, self.root_dir, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
        return self._launch("wb", "$")

    def _launch(self, mode: str, header: str) -> LabServer:
        """Starts ``jupyter lab`` (its log opened with ``mode``) and waits until it answers."""
        command, env = self.command(), self.environment()
        with open(self.log_path, mode) as log:
            log.write(f"{header} {' '.join(command)}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                command, env=env, cwd=self.home, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + LAB_START_TIMEOUT
        while not self._ready():
            if time.monotonic() > deadline:
                raise AssertionError(f"jupyter lab did not answer /api/status within {LAB_START_TIMEOUT}s")
            time.sleep(0.1)
        return self

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"jupyter lab exited with {self.process.returncode}")
        request = urllib.request.Request(f"{self.url}/api/status")
        request.add_header("Authorization", f"token {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return bool(response.status == 200)
        except (OSError, urllib.error.HTTPError):
            return False

    def stop(self) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        # Kernels are the server's children in its session; don't leave one behind if it hung.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)

    def api(self, method: str, path: str, body: Any = None) -> Any:
        """``{url}/{path}`` with the server's token; the JSON answer (``None`` if empty)."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.url}/{path.lstrip('/')}", data=data, method=method)
        request.add_header("Authorization", f"token {self.token}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
        return json.loads(raw) if raw else None

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError as err:
            return f"(no log: {err})"
        return "\n".join(text.splitlines()[-lines:])

    def restart(self) -> LabServer:
        """Starts the server again after :meth:`stop`: same port, token, notebooks and Coflux data (a
        page left open reconnects to it). Its log goes on in the same file."""
        assert self.process is not None and self.process.poll() is not None, "stop() it first"
        return self._launch("ab", "$ (restart)")

    def start_worker(
        self, module: str, modules: Path, log: Path, workspace: str = "main", token: str | None = None
    ) -> subprocess.Popen[bytes]:
        """A `coflux worker MODULE --register` of project ``default`` against this server's Coflux,
        importing from ``modules``, with a new worker token unless ``token`` is given. Stop it with
        :func:`stop_process`."""
        if token is None:
            token = self.api("POST", "coflux/api/projects/default/tokens", {"scope": "worker"})["token"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("COFLUX_")}
        env.update(PYTHONPATH=os.pathsep.join([str(modules), str(ROOT)]), COFLUX_TOKEN=str(token))
        command = [sys.executable, "-m", "coflux.cli", "worker", module, "--url", f"{self.url}/coflux"]
        command += ["--project", "default", "--workspace", workspace, "--register"]
        with open(log, "ab") as out:
            return subprocess.Popen(command, env=env, cwd=modules, stdout=out, stderr=subprocess.STDOUT)


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it hasn't ended within 15 s."""
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)
