"""Blob transfer for a worker: ``PUT``/``GET {url}/api/projects/{project}/blobs/{key}`` with raw
bytes. Called from execution threads (never the event loop), with the standard library only."""

from __future__ import annotations

import hashlib
import json
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections import OrderedDict
from typing import Final

from coflux.errors import RequestError, request_error

_CACHE_BYTES: Final = 64 * 1024 * 1024


class BlobClient:
    """Uploads and downloads content-addressed blobs. Downloads are kept in a small LRU cache (a
    blob's key is its content's hash, so a cached copy is never stale)."""

    def __init__(self, url: str, project: str, token: str | None, timeout: float = 60.0) -> None:
        self._base = f"{url.rstrip('/')}/api/projects/{urllib.parse.quote(project, safe='')}/blobs"
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

    def _send(self, method: str, key: str, data: bytes | None) -> bytes:
        request = urllib.request.Request(f"{self._base}/{key}", data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/octet-stream")
        if self._token:
            request.add_header("Authorization", f"token {self._token}")
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                body: bytes = response.read()
                return body
        except urllib.error.HTTPError as err:
            with err:
                raise _error_from_body(err.code, err.read()) from None
        except (urllib.error.URLError, OSError) as err:
            raise RequestError(f"blob {method} {key} failed: {err}") from err


def _error_from_body(status: int, body: bytes) -> RequestError:
    try:
        error = json.loads(body)["error"]
        return request_error(str(error["code"]), str(error["message"]))
    except (ValueError, KeyError, TypeError):
        return request_error("error", f"HTTP {status}: {body[:200]!r}")
