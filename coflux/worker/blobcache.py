"""A worker's bounded disk cache of blobs, for restoring assets: each blob once per machine, the least
recently used dropped when the cache passes its size.

Where and how big: ``COFLUX_BLOB_CACHE`` (a folder; default ``$XDG_CACHE_HOME/coflux/blobs``, else
``~/.cache/coflux/blobs``) and ``COFLUX_BLOB_CACHE_SIZE`` (bytes, or with a suffix: ``512M``,
``2G``; default 1 GiB). Files are named by their key, and a blob's key is the SHA-256 of its
content: a cached file is never stale, and every process of the machine can share the folder.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Final

from coflux.errors import ConfigurationError

DEFAULT_SIZE: Final = 1024**3
_UNITS: Final = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
_KEY: Final = re.compile(r"[0-9a-f]{64}")


def parse_size(text: str) -> int:
    """``"1073741824"``, ``"512M"``, ``"2G"``, ``"1.5GiB"`` -> bytes."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*", text, re.IGNORECASE)
    if match is None:
        raise ConfigurationError(f"COFLUX_BLOB_CACHE_SIZE: expected bytes like 512M or 2G, got {text!r}")
    return int(float(match.group(1)) * _UNITS[match.group(2).upper()])


def default_folder() -> Path:
    configured = os.environ.get("COFLUX_BLOB_CACHE")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "coflux" / "blobs"


class BlobCache:
    """Blobs on disk under ``folder``, at most ``limit`` bytes once no one is reading them (a blob
    being copied out is pinned; one larger than the whole cache stays only until the next one)."""

    def __init__(self, folder: Path, limit: int = DEFAULT_SIZE) -> None:
        self.folder = folder
        self.limit = limit
        self._lock = threading.Lock()
        self._sizes: OrderedDict[str, int] = OrderedDict()
        self._pins: dict[str, int] = {}
        self._loading: dict[str, threading.Lock] = {}
        folder.mkdir(parents=True, exist_ok=True)
        self._scan()

    def _scan(self) -> None:
        """Adopt what earlier processes left, oldest use first."""
        found = []
        for path in self.folder.iterdir():
            if _KEY.fullmatch(path.name):
                with contextlib.suppress(OSError):
                    stat = path.stat()
                    found.append((stat.st_mtime, path.name, stat.st_size))
        for _, key, size in sorted(found):
            self._sizes[key] = size

    @property
    def used(self) -> int:
        with self._lock:
            return sum(self._sizes.values())

    def __contains__(self, key: str) -> bool:
        with self._lock:
            return key in self._sizes

    @contextlib.contextmanager
    def open(self, key: str, fetch: Callable[[Path], None]) -> Iterator[Path]:
        """The cached file of ``key``, pinned while the block runs; ``fetch(target)`` writes it
        (checked against its key) when it isn't cached. Concurrent callers fetch it once."""
        path = self.folder / key
        with self._loader(key):
            if not self._touch(key, path):
                fetch(path)
                self._add(key, path.stat().st_size)
            self._pin(key, +1)
        try:
            yield path
        finally:
            self._pin(key, -1)
            self._evict()

    @contextlib.contextmanager
    def _loader(self, key: str) -> Iterator[None]:
        with self._lock:
            lock = self._loading.setdefault(key, threading.Lock())
        with lock:
            yield
        with self._lock:
            self._loading.pop(key, None)

    def _touch(self, key: str, path: Path) -> bool:
        with self._lock:
            if key not in self._sizes:
                return False
            try:
                os.utime(path)
            except FileNotFoundError:  # removed behind our back (another process's eviction)
                del self._sizes[key]
                return False
            self._sizes.move_to_end(key)
            return True

    def forget(self, key: str) -> None:
        """The file is gone (another process dropped it): fetch it again next time."""
        with self._lock:
            self._sizes.pop(key, None)

    def _add(self, key: str, size: int) -> None:
        with self._lock:
            self._sizes[key] = size

    def _pin(self, key: str, delta: int) -> None:
        with self._lock:
            count = self._pins.get(key, 0) + delta
            if count:
                self._pins[key] = count
            else:
                self._pins.pop(key, None)

    def _evict(self) -> None:
        with self._lock:
            total = sum(self._sizes.values())
            for key in list(self._sizes):
                if total <= self.limit:
                    break
                if key in self._pins:
                    continue
                total -= self._sizes.pop(key)
                with contextlib.suppress(FileNotFoundError):
                    (self.folder / key).unlink()


_shared: dict[tuple[Path, int], BlobCache] = {}
_shared_lock = threading.Lock()


def shared() -> BlobCache:
    """The process's cache, as configured by the environment (one per folder and size)."""
    folder = default_folder()
    size_text = os.environ.get("COFLUX_BLOB_CACHE_SIZE")
    limit = parse_size(size_text) if size_text else DEFAULT_SIZE
    with _shared_lock:
        cache = _shared.get((folder, limit))
        if cache is None:
            cache = _shared[(folder, limit)] = BlobCache(folder, limit)
        return cache
