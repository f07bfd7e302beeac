"""The content-addressed blob store: bytes filed under the SHA-256 of their content, over fsspec.

Layout: ``<root>/<key[:2]>/<key>``. A key is exactly 64 lowercase hex digits; anything else is
refused before it gets near a path, so no key can name a file outside the store.

Large blobs never need to be held whole: :meth:`BlobStore.open` reads one in chunks, and an upload
is spooled to a temporary file (:meth:`BlobStore.spool_folder`), hashed as it arrives, then filed
with :meth:`BlobStore.put_file`.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import Any, BinaryIO

import fsspec
from fsspec.implementations.local import LocalFileSystem

from coflux.errors import BadRequest, NotFound, StorageError, StorageFull

_KEY = re.compile(r"[0-9a-f]{64}")
_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
STALE_UPLOAD = 24 * 3600.0
"""Seconds after which a temporary upload file is taken for one a crash left behind (and deleted)."""


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
        self._swept = False

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
        with self._failures():
            self._fs.makedirs(self._folder(key), exist_ok=True)
            if self._local:
                _write_atomically(path, data)
            else:
                self._fs.pipe_file(path, data)
        return key

    def put_file(self, path: str, key: str) -> None:
        """File the finished local file ``path`` under ``key`` (the caller has checked that ``key``
        is the SHA-256 of its bytes). In a local store it is moved in with one rename (so put it in
        :meth:`spool_folder`), elsewhere it is copied and left for the caller to delete. Filing a
        key that is already stored changes nothing."""
        target = self._path(key)
        if self._fs.exists(target):
            return
        with self._failures():
            self._fs.makedirs(self._folder(key), exist_ok=True)
            if self._local:
                _move_atomically(path, target)
            else:
                self._fs.put_file(path, target)

    def open(self, key: str) -> BinaryIO:
        """The blob, open for reading in chunks; :class:`~coflux.errors.NotFound` if there is none."""
        path = self._path(key)
        try:
            file: BinaryIO = self._fs.open(path, "rb")
        except FileNotFoundError as err:
            raise NotFound(f"no blob {key}") from err
        return file

    def size(self, key: str) -> int | None:
        """The blob's size in bytes, None if it is not stored."""
        try:
            return int(self._fs.size(self._path(key)))
        except FileNotFoundError:
            return None

    def spool_folder(self) -> str | None:
        """Where an upload to this store is best spooled: a folder inside a local store (on its
        file system, so :meth:`put_file` is a rename), None (the system's temporary folder) for
        any other store."""
        if not self._local:
            return None
        folder = f"{self._root}/.incoming"
        with self._failures():
            os.makedirs(folder, exist_ok=True)
        if not self._swept:
            self._swept = True
            _sweep(folder, time.time() - STALE_UPLOAD)
        return folder

    @contextlib.contextmanager
    def _failures(self) -> Iterator[None]:
        """A write that fails raises :class:`~coflux.errors.StorageFull` when no space is left,
        else :class:`~coflux.errors.StorageError`."""
        try:
            yield
        except OSError as err:
            if err.errno in _FULL_ERRNOS:
                raise StorageFull(f"no space left on the server's blob store ({self.url})") from err
            raise StorageError(f"the server's blob store failed: {err.strerror or err} ({self.url})") from err

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


class Upload:
    """A blob arriving in chunks, for ``store`` under ``key``: each chunk is hashed and written to
    a temporary file as it comes (none is kept in memory), and :meth:`commit` files it only if
    ``key`` is the SHA-256 of what came. Either way, nothing of the temporary file is left.

    Its methods block (a disk): call them off the event loop. They may be called from different
    threads, one at a time; :meth:`discard` may come from another thread at any time."""

    def __init__(self, store: BlobStore, key: str) -> None:
        if not valid_key(key):
            raise BadRequest(f"not a blob key (64 lowercase hex digits): {key[:80]!r}")
        self.store = store
        self.key = key
        self.size = 0
        self._hash = hashlib.sha256()
        self._lock = threading.RLock()
        with store._failures():
            handle, self._path = tempfile.mkstemp(dir=store.spool_folder(), prefix=".upload-")
        self._file: BinaryIO | None = os.fdopen(handle, "wb")

    def write(self, chunk: bytes) -> None:
        with self._lock:
            if self._file is None:
                raise BadRequest("the upload was abandoned")
            with self.store._failures():
                self._file.write(chunk)
            self._hash.update(chunk)
            self.size += len(chunk)

    def commit(self) -> None:
        """File the blob; :class:`~coflux.errors.BadRequest` if its bytes are not its key's."""
        try:
            with self._lock:
                if self._file is None:
                    raise BadRequest("the upload was abandoned")
                with self.store._failures():
                    self._file.close()
                self._file = None
                digest = self._hash.hexdigest()
                if digest != self.key:
                    raise BadRequest(
                        f"a blob's key must be the SHA-256 of its bytes: these {self.size} bytes hash "
                        f"to {digest}, not {self.key}; nothing was stored"
                    )
                self.store.put_file(self._path, self.key)
        finally:
            self.discard()

    def discard(self) -> None:
        """Close and delete the temporary file (if still there)."""
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._path)


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


def _move_atomically(source: str, path: str) -> None:
    """Rename ``source`` to ``path``; across file systems, copy it beside ``path`` first."""
    try:
        os.replace(source, path)
    except OSError as err:
        if err.errno != errno.EXDEV:
            raise
        folder = os.path.dirname(path)
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=".tmp-")
        os.close(handle)
        try:
            shutil.copyfile(source, temporary)
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise


def _sweep(folder: str, before: float) -> None:
    """Delete the temporary upload files in ``folder`` last written before ``before``: a server
    killed mid-upload leaves its file there."""
    with os.scandir(folder) as entries:
        for entry in entries:
            with contextlib.suppress(FileNotFoundError):
                if entry.name.startswith(".upload-") and entry.stat().st_mtime < before:
                    os.unlink(entry.path)
