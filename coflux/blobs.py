"""The content-addressed blob store: bytes filed under the SHA-256 of their content, over fsspec.

Layout: ``<root>/<key[:2]>/<key>``. A key is exactly 64 lowercase hex digits; anything else is
refused before it gets near a path, so no key can name a file outside the store.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import tempfile
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from coflux.errors import BadRequest, NotFound, StorageError, StorageFull

_KEY = re.compile(r"[0-9a-f]{64}")
_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def valid_key(key: object) -> bool:
    """Whether ``key`` is a blob key: a string of exactly 64 lowercase hex digits."""
    return isinstance(key, str) and _KEY.fullmatch(key) is not None


def blob_key(data: bytes) -> str:
    """The key ``data`` is stored under: the hex SHA-256 of its bytes."""
    return hashlib.sha256(data).hexdigest()


class BlobStore:
    """Bytes stored under their SHA-256. ``url`` is a local folder or any fsspec URL
    (``memory://blobs``, ``s3://bucket/prefix``...). Writing the same bytes twice is a no-op.

    Every method may block (a disk, a network): the server calls them on its blob threads, never
    on its event loop (see :mod:`jupyter_ext.handlers`)."""

    valid_key = staticmethod(valid_key)

    def __init__(self, url: str) -> None:
        self.url = url
        fs, root = fsspec.core.url_to_fs(url)
        self._fs: Any = fs
        self._root: str = str(root).rstrip("/")
        self._local = isinstance(fs, LocalFileSystem)

    def __repr__(self) -> str:
        return f"BlobStore({self.url!r})"

    def put(self, data: bytes) -> str:
        """Store ``data`` and return its key. Local files are written atomically (temp + rename), so
        a failed write (:class:`~coflux.errors.StorageFull` when no space is left, else
        :class:`~coflux.errors.StorageError`) leaves nothing behind."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise BadRequest(f"a blob must be bytes, not {type(data).__name__}")
        data = bytes(data)
        key = blob_key(data)
        path = self._path(key)
        if self._fs.exists(path):
            return key
        try:
            self._fs.makedirs(self._folder(key), exist_ok=True)
            if self._local:
                _write_atomically(path, data)
            else:
                self._fs.pipe_file(path, data)
        except OSError as err:
            if err.errno in _FULL_ERRNOS:
                raise StorageFull(f"no space left on the server's blob store ({self.url})") from err
            raise StorageError(f"the server's blob store failed: {err.strerror or err} ({self.url})") from err
        return key

    def get(self, key: str) -> bytes:
        """The bytes stored under ``key``; :class:`~coflux.errors.NotFound` if there are none."""
        path = self._path(key)
        try:
            data: bytes = self._fs.cat_file(path)
        except FileNotFoundError as err:
            raise NotFound(f"no blob {key}") from err
        return data

    def exists(self, key: str) -> bool:
        return bool(self._fs.exists(self._path(key)))

    def _folder(self, key: str) -> str:
        return f"{self._root}/{key[:2]}"

    def _path(self, key: str) -> str:
        if not valid_key(key):
            raise BadRequest(f"not a blob key (64 lowercase hex digits): {key!r}")
        return f"{self._folder(key)}/{key}"


def _write_atomically(path: str, data: bytes) -> None:
    """Write to a temporary file beside ``path`` and rename it into place, so a reader never sees a
    partial blob and concurrent writers of the same content both succeed."""
    folder = os.path.dirname(path)
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".tmp-")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
