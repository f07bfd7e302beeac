"""``cf.asset()``: persist files of the running execution as an asset, and the worker's
:class:`~coflux.assets.AssetSource` (its connection's REST calls, its disk cache of blobs).

Persisting: the files are found (refusing any path that leaves the working directory, or ``at``,
by ``..``, an absolute path or a symlink), hashed in chunks, uploaded only when the server lacks
their blob (``HEAD``, then ``PUT`` streamed from disk), and the listing is posted. Restoring: each
blob is fetched once into the worker's cache (:mod:`coflux.worker.blobcache`), then copied into
place; inside an execution the restoration is recorded.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coflux.assets import (
    MAX_ENTRIES,
    Asset,
    AssetEntry,
    AssetError,
    check_path,
    matches,
    media_type,
    set_current_source,
)
from coflux.errors import RequestError
from coflux.worker import blobcache, context, workdir

if TYPE_CHECKING:
    from coflux.worker.blobclient import BlobClient

PathLike = str | os.PathLike[str]
Entries = PathLike | Iterable[PathLike] | dict[str, PathLike | AssetEntry] | None
_CHUNK = 1024 * 1024
_logger = logging.getLogger("coflux.worker")


class WorkerAssets:
    """A worker connection as an :class:`~coflux.assets.AssetSource` (thread-safe)."""

    def __init__(self, blobs: Callable[[], BlobClient]) -> None:
        self._blobs = blobs
        self._listings: dict[str, dict[str, Any]] = {}
        self._recorded: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def asset_listing(self, asset_id: str) -> dict[str, Any]:
        with self._lock:
            cached = self._listings.get(asset_id)
        if cached is None:
            cached = dict(self._blobs().call("GET", f"assets/{asset_id}"))
            with self._lock:
                self._listings[asset_id] = cached
        return cached

    def copy_blob(self, key: str, size: int, target: Path) -> None:
        cache = blobcache.shared()
        for attempt in (1, 2):
            with cache.open(key, lambda path: self._blobs().download(key, path)) as cached:
                try:
                    shutil.copyfile(cached, target)
                    return
                except FileNotFoundError:  # another process's cache dropped it meanwhile
                    if attempt == 2 or not target.parent.is_dir():
                        raise
                    cache.forget(key)

    def restored(self, asset_id: str) -> None:
        """Record that the running execution restored the asset (once; best-effort: a failure to
        record is logged, the files are restored all the same)."""
        ctx = context.current()
        if ctx is None:
            return
        with self._lock:
            if (ctx.execution_id, asset_id) in self._recorded:
                return
            if len(self._recorded) > 10_000:
                self._recorded.clear()
            self._recorded.add((ctx.execution_id, asset_id))
        try:
            self._blobs().call("POST", f"assets/{asset_id}/restorations", {"execution_id": ctx.execution_id})
        except RequestError as err:
            _logger.warning(
                "coflux: could not record that %s restored %s: %s", ctx.execution_id, asset_id, err
            )

    def upload(self, path: Path) -> dict[str, Any]:
        """Hash ``path`` and upload it unless the server has its blob; its entry fields."""
        key, size = file_digest(path)
        blobs = self._blobs()
        if not blobs.has(key):
            blobs.put_file(path, key, size)
        return {"blob_key": key, "size": size}

    def persist(self, execution_id: str, name: str | None, entries: list[dict[str, Any]]) -> Asset:
        body = {"execution_id": execution_id, "name": name, "entries": entries}
        data = dict(self._blobs().call("POST", "assets", body))
        with self._lock:
            self._listings[str(data["asset_id"])] = data
        return Asset.from_listing(data, self)


def _running_source() -> WorkerAssets | None:
    ctx = context.current()
    return ctx.channel.asset_source() if ctx is not None else None


set_current_source(_running_source, workdir.execution_dir)


def file_digest(path: Path) -> tuple[str, int]:
    """The SHA-256 (hex) and size of a file, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def asset(
    entries: Entries = None,
    *,
    at: PathLike | None = None,
    match: str | None = None,
    name: str | None = None,
) -> Asset:
    """Persist files of the running execution as an asset and return it.

    ``entries``: ``None`` (every file under the working directory, or under ``at``), a path (a file,
    or a folder: its files), a list of paths, or ``{entry path: path | AssetEntry}`` (an entry of
    another asset is reused as it is, not uploaded again). Relative paths resolve against ``at``
    (default: the execution's working directory) and entry paths are relative to it; a path that
    leaves it is refused. ``match``: keep only entry paths matching this glob."""
    ctx = context.current()
    if ctx is None:
        raise AssetError("cf.asset() persists files of an execution: call it inside a task or workflow")
    root = _root(at)
    found = [(path, item) for path, item in _collect(root, entries) if matches(path, match)]
    if len(found) > MAX_ENTRIES:
        raise AssetError(f"an asset holds at most {MAX_ENTRIES} files, not {len(found)}")
    source = ctx.channel.asset_source()
    listing = []
    for path, item in found:
        if isinstance(item, AssetEntry):
            listing.append({**item.to_json(), "path": path})
        else:
            listing.append({"path": path, **source.upload(item), "media_type": media_type(path)})
    return source.persist(ctx.execution_id, name, listing)


def _root(at: PathLike | None) -> Path:
    base = workdir.execution_dir()
    root = base / at if at is not None else base
    if not root.is_dir():
        raise AssetError(f"cf.asset(at=...): no such folder: {root}")
    return Path(os.path.abspath(root))


def _collect(root: Path, entries: Entries) -> list[tuple[str, Path | AssetEntry]]:
    """``(entry path, file or entry)`` pairs, paths unique, in a stable order."""
    found: dict[str, Path | AssetEntry] = {}
    if entries is None:
        pairs: Iterable[tuple[str, Path | AssetEntry]] = _walk(root, root)
    elif isinstance(entries, dict):
        pairs = _named(root, entries)
    elif isinstance(entries, (str, os.PathLike)):
        pairs = _walk(root, _contained(root, entries))
    else:
        pairs = [pair for item in entries for pair in _walk(root, _contained(root, item))]
    for path, item in pairs:
        if path in found:
            raise AssetError(f"cf.asset(): the path {path!r} is given twice")
        found[path] = item
    return list(found.items())


def _named(root: Path, entries: dict[str, PathLike | AssetEntry]) -> list[tuple[str, Path | AssetEntry]]:
    pairs: list[tuple[str, Path | AssetEntry]] = []
    for path, item in entries.items():
        check_path(path)
        if isinstance(item, AssetEntry):
            pairs.append((path, item))
            continue
        file = _contained(root, item)
        if file.is_dir():
            pairs.extend((f"{path}/{inner}", f) for inner, f in _walk(file, file))
        else:
            pairs.append((path, file))
    return pairs


def _contained(root: Path, given: PathLike) -> Path:
    """``given`` (relative to ``root``) if it exists inside ``root`` and its real path too."""
    path = Path(os.path.abspath(root / given))
    if not path.is_relative_to(root):
        raise AssetError(
            f"cf.asset(): {os.fspath(given)!r} is outside the folder it is persisted from ({root})"
        )
    real = Path(os.path.realpath(path))
    if not real.is_relative_to(os.path.realpath(root)):
        raise AssetError(f"cf.asset(): {os.fspath(given)!r} is a symlink to {real}, outside {root}")
    if not path.exists():
        raise AssetError(f"cf.asset(): no such file or folder: {os.fspath(given)!r}")
    return path


def _walk(root: Path, start: Path) -> list[tuple[str, Path | AssetEntry]]:
    """The files at or under ``start`` (a file or folder inside ``root``), by path from ``root``."""
    if not start.is_dir():
        _contained(root, start)
        return [(_entry_path(root, start), start)]
    pairs: list[tuple[str, Path | AssetEntry]] = []
    for folder, dirs, files in os.walk(start):
        dirs.sort()
        for name in sorted(files):
            file = _contained(root, Path(folder) / name)
            if file.is_file():
                pairs.append((_entry_path(root, file), file))
    return pairs


def _entry_path(root: Path, file: Path) -> str:
    return check_path(file.relative_to(root).as_posix())
