"""Blob and asset transfer for a worker: ``HEAD``/``PUT``/``GET {url}/api/projects/{project}/blobs/{key}``
with raw bytes (files stream from and to disk in chunks, never read whole), and the JSON calls of
the assets API. Called from execution threads (never the event loop), with the standard library
only."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Final

from coflux.errors import NotFound, RequestError, request_error

_CACHE_BYTES: Final = 64 * 1024 * 1024
CHUNK: Final = 1024 * 1024


class BlobClient:
    """Uploads and downloads content-addressed blobs. Downloads are kept in a small LRU cache (a
    blob's key is its content's hash, so a cached copy is never stale)."""

    def __init__(self, url: str, project: str, token: str | None, timeout: float = 60.0) -> None:
        self._project = f"{url.rstrip('/')}/api/projects/{urllib.parse.quote(project, safe='')}"
        self._base = f"{self._project}/blobs"
        self._token = token
        self._timeout = timeout
        self._cache: OrderedDict[str, bytes] = OrderedDict()
        self._cached_bytes = 0
        self._lock = threading.Lock()

    def put(self, data: bytes) -> str:
        key = hashlib.sha256(data).hexdigest()
        self._send("PUT", key, data)
        self._remember(key, data)
        return key

    def get(self, key: str) -> bytes:
        with self._lock:
            data = self._cache.get(key)
            if data is not None:
                self._cache.move_to_end(key)
                return data
        data = self._send("GET", key, None)
        if hashlib.sha256(data).hexdigest() != key:
            raise RequestError(f"blob {key} arrived corrupted")
        self._remember(key, data)
        return data

    def _remember(self, key: str, data: bytes) -> None:
        if len(data) > _CACHE_BYTES // 4:
            return
        with self._lock:
            if key in self._cache:
                return
            self._cache[key] = data
            self._cached_bytes += len(data)
            while self._cached_bytes > _CACHE_BYTES:
                _, dropped = self._cache.popitem(last=False)
                self._cached_bytes -= len(dropped)

    def has(self, key: str) -> bool:
        """Whether the server holds the blob (``HEAD``)."""
        try:
            with self._open("HEAD", f"{self._base}/{key}"):
                return True
        except NotFound:
            return False

    def put_file(self, path: Path, key: str, size: int) -> None:
        """Upload a file whose SHA-256 is ``key``, streamed from disk."""
        with path.open("rb") as body:
            headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
            with self._open("PUT", f"{self._base}/{key}", body, headers):
                pass

    def download(self, key: str, target: Path) -> None:
        """Stream the blob into ``target`` (through a temporary file beside it, checked against its
        key before it takes ``target``'s place)."""
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".coflux-")
        try:
            digest = hashlib.sha256()
            with os.fdopen(handle, "wb") as out, self._open("GET", f"{self._base}/{key}") as response:
                while chunk := response.read(CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
            if digest.hexdigest() != key:
                raise RequestError(f"blob {key} arrived corrupted")
            os.replace(temporary, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise

    def call(self, method: str, path: str, body: Any = None) -> Any:
        """A JSON call of the project's API (``path`` under ``projects/{project}/``)."""
        data = None if body is None else json.dumps(body).encode("utf-8")
        headers = {"Content-Type": "application/json"} if data is not None else {}
        with self._open(method, f"{self._project}/{path}", data, headers) as response:
            raw = response.read()
        return json.loads(raw) if raw.strip() else None

    def _send(self, method: str, key: str, data: bytes | None) -> bytes:
        headers = {"Content-Type": "application/octet-stream"} if data is not None else {}
        with self._open(method, f"{self._base}/{key}", data, headers) as response:
            body: bytes = response.read()
            return body

    @contextlib.contextmanager
    def _open(
        self,
        method: str,
        url: str,
        data: bytes | IO[bytes] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Iterator[Any]:
        request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
        if self._token:
            request.add_header("Authorization", f"token {self._token}")
        try:
            response = urllib.request.urlopen(request, timeout=self._timeout)
        except urllib.error.HTTPError as err:
            with err:
                raise _error_from_body(err.code, err.read()) from None
        except (urllib.error.URLError, OSError) as err:
            raise RequestError(f"{method} {url} failed: {err}") from err
        with response:
            yield response


def _error_from_body(status: int, body: bytes) -> RequestError:
    try:
        error = json.loads(body)["error"]
        return request_error(str(error["code"]), str(error["message"]))
    except (ValueError, KeyError, TypeError):
        code = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found"}.get(
            status, "error"
        )
        return request_error(code, f"HTTP {status}: {body[:200]!r}")
