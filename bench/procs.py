"""The processes under test: a real ``coflux server`` and one ``coflux worker``, on 127.0.0.1 only.

Each is started in its own session, so that a Ctrl-C in the terminal reaches only the benchmark, which
then stops them itself: SIGTERM, then SIGKILL after a grace period, always by process id.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO

import psutil

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
MIB = 2**20


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def child_environment(root: Path = ROOT) -> dict[str, str]:
    """Our environment without ``COFLUX_*`` settings, with the repository root importable."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("COFLUX_")}
    env["PYTHONPATH"] = str(root)
    return env


def coflux_command() -> list[str]:
    """The ``coflux`` console script beside this interpreter, else ``python -m coflux.cli``."""
    script = Path(sys.executable).parent / "coflux"
    return [str(script)] if script.exists() else [sys.executable, "-m", "coflux.cli"]


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.05) -> None:
    """Poll ``predicate`` until it is true; ``TimeoutError`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def tree_rss(process: psutil.Process) -> int:
    """Resident bytes of a process plus all its descendants (0 for any that are gone)."""
    total = 0
    try:
        members = [process, *process.children(recursive=True)]
    except psutil.Error:
        return 0
    for member in members:
        try:
            total += member.memory_info().rss
        except psutil.Error:
            continue
    return total


class ManagedProcess:
    """One subprocess we started, with its output in a log file."""

    def __init__(
        self,
        name: str,
        command: list[str],
        log_path: Path,
        root: Path = ROOT,
        environment: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.command = command
        self.environment = environment or {}
        """Added to the child's environment (tokens travel here, never on a command line)."""
        self.log_path = log_path
        self.root = root
        """The checkout whose code the process runs (its working folder and ``PYTHONPATH``)."""
        self.popen: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int:
        if self.popen is None:
            raise RuntimeError(f"{self.name} was not started")
        return self.popen.pid

    def start(self) -> None:
        self._log = self.log_path.open("ab")
        self.popen = subprocess.Popen(
            self.command,
            cwd=self.root,
            env={**child_environment(self.root), **self.environment},
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def check_alive(self) -> None:
        if self.popen is not None and self.popen.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.popen.returncode}; see {self.log_path}")

    def rss_bytes(self) -> int:
        if self.popen is None or self.popen.poll() is not None:
            return 0
        try:
            return tree_rss(psutil.Process(self.popen.pid))
        except psutil.Error:
            return 0

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after ``grace`` s; then SIGKILL any of its children still alive."""
        if self.popen is None:
            return
        children: list[psutil.Process] = []
        if self.popen.poll() is None:
            try:
                children = psutil.Process(self.popen.pid).children(recursive=True)
            except psutil.Error:
                children = []
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(grace)
        for child in children:
            try:
                child.kill()
            except psutil.Error:
                continue
        if self._log is not None:
            self._log.close()
            self._log = None


class Stack:
    """``coflux server`` plus one ``coflux worker bench.flows``, with a temporary SQLite data dir."""

    def __init__(
        self,
        work_dir: Path,
        concurrency: int,
        module: str = "bench.flows",
        server_nodelay: bool = False,
        root: Path = ROOT,
    ) -> None:
        """``root``: the checkout to run (another one than this, to compare two versions)."""
        self.work_dir = work_dir
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.url = f"http://{HOST}:{self.port}/coflux"
        base = coflux_command()
        data_dir = ["--data-dir", str(work_dir / "data")]
        slots = ["--concurrency", str(concurrency)]
        # The experiment runs the same CLI through a wrapper that patches one thing (see its docstring).
        server_base = [sys.executable, str(root / "bench" / "nodelay_server.py")] if server_nodelay else base
        self.server = ManagedProcess(
            "coflux server",
            [
                *server_base,
                "server",
                "--host",
                HOST,
                "--port",
                str(self.port),
                *data_dir,
            ],
            work_dir / "server.log",
            root,
            {"COFLUX_SERVER_TOKEN": self.token},
        )
        # The server's own token, so that older checkouts (without project tokens) run the same.
        self.worker = ManagedProcess(
            "coflux worker",
            [*base, "worker", module, "--url", self.url, "--register", *slots],
            work_dir / "worker.log",
            root,
            {"COFLUX_TOKEN": self.token},
        )

    @property
    def processes(self) -> list[ManagedProcess]:
        return [self.server, self.worker]

    def start(self, timeout: float = 60.0) -> None:
        self.server.start()
        wait_until(self._server_ready, timeout, "the coflux server to answer")
        self.worker.start()

    def _server_ready(self) -> bool:
        self.server.check_alive()
        request = urllib.request.Request(f"{self.url}/api/projects")
        request.add_header("Authorization", f"token {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=2) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def rss_bytes(self) -> dict[str, int]:
        return {process.name: process.rss_bytes() for process in self.processes}

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()


class PeakRss:
    """Samples the summed tree RSS of some processes every ``interval`` s on a daemon thread."""

    def __init__(self, processes: Iterable[ManagedProcess], interval: float = 0.1) -> None:
        self.processes = list(processes)
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="peak-rss", daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, sum(process.rss_bytes() for process in self.processes))
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
