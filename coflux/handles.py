"""What a value read by :class:`coflux.Client` refers to, resolvable where it was read: an execution
(``.result()``, its value read whole over REST) and assets (``.restore()``, blobs streamed over REST)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from coflux.errors import (
    TERMINATED_BY_STATE,
    CofluxError,
    RequestError,
    execution_error_from_data,
    request_error,
)

if TYPE_CHECKING:
    from coflux.client import Client

CHUNK: Final = 1024 * 1024
_SUCCEEDED: Final = ("succeeded", "cached")
_LIVE: Final = ("queued", "assigned", "running", "deferred", "suspended")


@dataclass(frozen=True)
class ExecutionReference:
    """An execution found in a value read by the client. ``.id``; ``.result()`` waits for it and
    returns its value whole (read as tagged JSON and decoded here, pickles included), or raises its
    error. Passed back as an argument, it is the same reference. Compares by id."""

    id: str
    client: Client | None = field(default=None, compare=False, repr=False)
    run_id: str | None = field(default=None, compare=False, repr=False)

    def __coflux_reference__(self) -> tuple[str, str]:
        return ("execution", self.id)

    def result(self, timeout: float | None = None) -> Any:
        """Wait until the execution is final; its value, or raise its error (as ``Run.result``)."""
        if self.client is None:
            raise CofluxError(f"execution {self.id} was not read through a cf.Client: it has no server")
        deadline = None if timeout is None else time.monotonic() + timeout
        pause = 0.05
        while True:
            outcome = self.client.execution_result(self.id)
            state = outcome["state"]
            if state not in _LIVE:
                return self._value(outcome)
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"execution {self.id} still {state} after {timeout} s")
            time.sleep(pause if deadline is None else max(0.0, min(pause, deadline - time.monotonic())))
            pause = min(pause * 1.5, 2.0)

    def _value(self, outcome: dict[str, Any]) -> Any:
        assert self.client is not None
        state = outcome["state"]
        if state in _SUCCEEDED:
            return self.client.decode(outcome.get("value"), run_id=self.run_id)
        error = outcome.get("error") or {}
        terminated = TERMINATED_BY_STATE.get(state)
        if terminated is not None:
            raise terminated(self.id, error.get("message"))
        raise execution_error_from_data(error, execution_id=self.id)


class ClientAssets:
    """A :class:`Client` as an :class:`~coflux.assets.AssetSource`: listings and blobs over REST."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self._listings: dict[str, dict[str, Any]] = {}

    def asset_listing(self, asset_id: str) -> dict[str, Any]:
        if asset_id not in self._listings:
            self._listings[asset_id] = self.client.asset_data(asset_id)
        return self._listings[asset_id]

    def copy_blob(self, key: str, size: int, target: Path) -> None:
        """Stream the blob into a temporary file beside ``target``, check it, put it in place."""
        client = self.client
        request = urllib.request.Request(f"{client.url}/api/{client._project_path('blobs', key)}")
        if client.token:
            request.add_header("Authorization", f"token {client.token}")
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".coflux-")
        try:
            with os.fdopen(handle, "wb") as out:
                digest = _stream(request, out, client.timeout)
            if digest != key:
                raise RequestError(f"blob {key} arrived corrupted")
            os.chmod(temporary, 0o666 & ~_umask())  # as a new file would be (mkstemp made it 0600)
            os.replace(temporary, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise

    def restored(self, asset_id: str) -> None:
        """A client restores outside any execution: nothing to record."""


def _umask() -> int:
    """The process's umask, read without changing it where Linux tells it (``os.umask`` sets it
    while it reads it, which another thread creating a file at that moment would suffer)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _stream(request: urllib.request.Request, out: Any, timeout: float) -> str:
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            while chunk := response.read(CHUNK):
                digest.update(chunk)
                out.write(chunk)
    except urllib.error.HTTPError as err:
        with err:
            raise request_error("not_found" if err.code == 404 else "error", f"HTTP {err.code}") from None
    except (urllib.error.URLError, OSError) as err:
        raise RequestError(f"downloading {request.full_url} failed: {err}") from err
    return digest.hexdigest()
