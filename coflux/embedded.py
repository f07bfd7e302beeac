"""An embedded server for one session of work: ``coflux server`` in a child process on 127.0.0.1.

Used by the quickstart and by headless notebook runs when no server URL is given.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

from coflux.errors import ConfigurationError


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class EmbeddedServer:
    """``with EmbeddedServer() as server:`` gives ``server.url`` and ``server.token`` until the block ends."""

    def __init__(self, data_dir: Path | None = None, startup_timeout: float = 60.0) -> None:
        self._temporary = tempfile.TemporaryDirectory(prefix="coflux-") if data_dir is None else None
        self.data_dir = data_dir or Path(self._temporary.name if self._temporary else ".")
        self.token = secrets.token_hex(16)
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/coflux"
        self._timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> EmbeddedServer:
        # Private: the server prints its tokens there.
        log = os.fdopen(
            os.open(self.data_dir / "server.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab"
        )
        command = [sys.executable, "-m", "coflux.cli", "server", "--port", str(self.port)]
        command += ["--data-dir", str(self.data_dir), "--exit-with-stdin"]
        # The token goes by environment: a command line is readable by every local user (ps).
        env = {**os.environ, "COFLUX_SERVER_TOKEN": self.token}
        # The server stops when this pipe closes: also when this process dies without cleaning up.
        self._process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT, env=env
        )
        log.close()
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self._timeout
        request = urllib.request.Request(f"{self.url}/api/projects")
        request.add_header("Authorization", f"token {self.token}")
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                log = (self.data_dir / "server.log").read_text(errors="replace")[-2000:]
                raise ConfigurationError(f"the embedded server exited early:\n{log}")
            try:
                with urllib.request.urlopen(request, timeout=2):
                    return
            except (urllib.error.URLError, OSError):
                time.sleep(0.05)
        self.close()
        raise ConfigurationError(f"the embedded server did not answer within {self._timeout:.0f} s")

    def close(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.stdin is not None:
            process.stdin.close()
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        if self._temporary is not None:
            self._temporary.cleanup()
            self._temporary = None

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()
