"""A real full disk for end-to-end tests: a `coflux server` whose data folder is a small tmpfs,
mounted in a user and mount namespace of the server's own (``unshare -Urm``, no privileges needed).

The mount is private to the server's namespace; the test reaches the folder as the server sees it
through ``/proc/PID/root``, and fills it up or frees it from there.
"""

from __future__ import annotations

import errno
import functools
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.harness import Server, environment, wait_until

_MOUNT = 'size=$1 folder=$2 full=$3; shift 3; mount -t tmpfs -o size="$size" tmpfs "$folder" || exit 97; '
_FILL = 'if [ "$full" = 1 ]; then cat /dev/zero > "$folder/fill" 2>/dev/null; fi; exec "$@"'


@functools.cache
def namespaces_work() -> bool:
    try:
        done = subprocess.run(["unshare", "-Urm", "true"], capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def require_namespaces() -> None:
    if not namespaces_work():
        pytest.skip("needs `unshare -Urm` (unprivileged user and mount namespaces) for a real full disk")


def on_tiny_disk(folder: Path, command: list[str], size: str = "4m", full: bool = False) -> list[str]:
    """``command``, run with a fresh ``size`` tmpfs mounted on ``folder`` (filled up first if
    ``full``)."""
    folder.mkdir(parents=True, exist_ok=True)
    script = _MOUNT + _FILL
    return ["unshare", "-Urm", "sh", "-c", script, "sh", size, str(folder), "1" if full else "0", *command]


def seen_by(pid: int, path: Path) -> Path:
    """``path`` as process ``pid`` sees it, in its own mount namespace."""
    return Path(f"/proc/{pid}/root") / str(path).lstrip("/")


def fill(folder: Path) -> Path:
    """Write zeros into ``folder/fill`` until the device is full; the file, to free it again."""
    path = folder / "fill"
    chunk = bytes(64 * 1024)
    with open(path, "ab", buffering=0) as handle:
        try:
            while True:
                handle.write(chunk)
        except OSError as err:
            assert err.errno == errno.ENOSPC, err
    return path


class TinyDiskServer(Server):
    """A harness server whose ``data_dir`` is a ``size`` tmpfs of its own."""

    def __init__(self, data_dir: Path, size: str = "4m") -> None:
        super().__init__(data_dir)
        self.size = size

    def start(self) -> TinyDiskServer:
        command = [sys.executable, "-m", "coflux.cli", "server", "--port", str(self.port)]
        command += ["--data-dir", str(self.data_dir), "--token", self.token]
        log = open(self.data_dir.parent / f"server-{self.port}.log", "ab")  # noqa: SIM115
        self.process = subprocess.Popen(
            on_tiny_disk(self.data_dir, command, self.size),
            env=environment(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        wait_until(self._ready, 30, "the server to answer")
        return self

    @property
    def folder(self) -> Path:
        """The data folder as the server sees it (the tmpfs)."""
        assert self.process is not None
        return seen_by(self.process.pid, self.data_dir)
