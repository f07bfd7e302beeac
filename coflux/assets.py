"""Assets: collections of files an execution persisted, passed between executions as values and
restored where they are needed (docs/python-api.md, "Assets").

This module is the part every side shares (workers, clients, the command line): :class:`Asset`,
:class:`AssetEntry`, the rules for entry paths, media types, and :class:`AssetSource`, where an
asset's listing and blobs come from (a worker's connection, or :class:`coflux.Client`). It does no
I/O of its own beyond writing restored files.
"""

from __future__ import annotations

import fnmatch
import mimetypes
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any, Final, NamedTuple, Protocol

from coflux.errors import CofluxError

ASSET_ID: Final = re.compile(r"A[0-9a-f]{24}")
BLOB_KEY: Final = re.compile(r"[0-9a-f]{64}")
MAX_PATH: Final = 1024
MAX_ENTRIES: Final = 10_000
DEFAULT_MEDIA_TYPE: Final = "application/octet-stream"
_PREVIEW_FILES: Final = 5


class AssetError(CofluxError, ValueError):
    """An asset or one of its paths was refused (a path leaving its folder, an unknown entry...)."""


class AssetSource(Protocol):
    """Where assets' listings and blobs come from, and where restorations are recorded."""

    def asset_listing(self, asset_id: str) -> dict[str, Any]:
        """``GET assets/{id}``: ``{"asset_id", "name", "entries": [entry...], ...}``."""
        ...

    def copy_blob(self, key: str, size: int, target: Path) -> None:
        """Write the blob's bytes (checked against ``key``) to ``target``, replacing it."""
        ...

    def restored(self, asset_id: str) -> None:
        """The asset was restored (recorded when inside an execution; else nothing)."""
        ...


_current_source: list[Callable[[], AssetSource | None]] = []
_working_directory: list[Callable[[], Path]] = [Path.cwd]


def set_current_source(finder: Callable[[], AssetSource | None], folder: Callable[[], Path]) -> None:
    """Install how to find a source for objects that carry none (an ``AssetEntry`` built by hand, an
    ``Asset`` unpickled): the worker installs "the connection of the running execution"; and
    where files are restored by default: its execution directory."""
    _current_source[:] = [finder]
    _working_directory[:] = [folder]


def _find_source(bound: AssetSource | None) -> AssetSource:
    if bound is not None:
        return bound
    found = _current_source[0]() if _current_source else None
    if found is None:
        raise AssetError(
            "this asset is not bound to a Coflux server: restore it inside an execution, or get it "
            "with cf.Client(...).asset(id)"
        )
    return found


def check_path(path: str) -> str:
    """``path`` if it is a valid entry path (relative POSIX, no ``.``/``..``/empty segment, no
    backslash or NUL, 1..1024 characters); else :class:`AssetError` saying why."""
    if not isinstance(path, str) or not 1 <= len(path) <= MAX_PATH:
        raise AssetError(f"an asset path must be 1 to {MAX_PATH} characters: {path!r}")
    if "\\" in path or "\0" in path:
        raise AssetError(f"an asset path may not contain a backslash or NUL: {path!r}")
    if path.startswith("/"):
        raise AssetError(f"an asset path must be relative: {path!r}")
    if any(segment in ("", ".", "..") for segment in path.split("/")):
        raise AssetError(f"an asset path may not have an empty, '.' or '..' segment: {path!r}")
    return path


def media_type(path: str) -> str:
    """The media type ``mimetypes`` guesses from the name, else ``application/octet-stream``."""
    guessed, _ = mimetypes.guess_type(path, strict=False)
    return guessed or DEFAULT_MEDIA_TYPE


def matches(path: str, pattern: str | None) -> bool:
    """Whether an entry path matches a glob: ``*.csv`` matches by name at any depth (as
    ``PurePath.match``), ``data/*.csv`` from the right; ``**`` spans folders (``fnmatch``)."""
    if pattern is None:
        return True
    return PurePosixPath(path).match(pattern) or fnmatch.fnmatchcase(path, pattern)


def _folder(at: str | os.PathLike[str] | None) -> Path:
    """Where files are restored: ``at`` (relative to the working directory), else the working
    directory (the execution's, in a worker; else the current directory); absolute."""
    folder = _working_directory[0]()
    return folder / at if at is not None else folder


def inside(root: Path, path: str) -> Path:
    """``root / path`` for a checked entry path (it can't leave ``root``)."""
    return root.joinpath(*check_path(path).split("/"))


class _EntryFields(NamedTuple):
    path: str
    blob_key: str
    size: int
    metadata: dict[str, Any]


class AssetEntry(_EntryFields):
    """One file of an asset: ``(path, blob_key, size, metadata)``; ``metadata["media_type"]``.

    Compares as its four fields. An entry read from an asset remembers where it came from, so
    ``entry.restore()`` works wherever the asset was read (a worker, a client)."""

    _origin: AssetSource | None
    _asset_id: str | None

    @property
    def media_type(self) -> str:
        return str(self.metadata.get("media_type") or DEFAULT_MEDIA_TYPE)

    def restore(self, *, at: str | os.PathLike[str] | None = None) -> Path:
        """Write the file under ``at`` (default: the current working directory) at its entry path,
        creating folders; returns the file's absolute path."""
        source = _find_source(getattr(self, "_origin", None))
        target = inside(_folder(at), self.path)
        target.parent.mkdir(parents=True, exist_ok=True)
        source.copy_blob(self.blob_key, self.size, target)
        asset_id = getattr(self, "_asset_id", None)
        if asset_id is not None:
            source.restored(asset_id)
        return target

    def __reduce__(self) -> tuple[Any, ...]:
        return (AssetEntry, tuple(self))

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "blob_key": self.blob_key,
            "size": self.size,
            "media_type": self.media_type,
        }

    @classmethod
    def from_json(
        cls, data: dict[str, Any], source: AssetSource | None = None, asset_id: str | None = None
    ) -> AssetEntry:
        entry = cls(
            str(data["path"]), str(data["blob_key"]), int(data["size"]), {"media_type": data["media_type"]}
        )
        entry._origin, entry._asset_id = source, asset_id
        return entry


class Asset:
    """Files an execution persisted (``cf.asset(...)``), by entry path. A value like any other:
    return it, pass it to another task, restore it there (``asset.restore()``,
    ``asset["x.csv"].restore()``). An asset read from a value fetches its listing when first
    needed (once: assets never change)."""

    def __init__(
        self,
        asset_id: str,
        *,
        source: AssetSource | None = None,
        name: str | None = None,
        entries: list[AssetEntry] | None = None,
        count: int | None = None,
    ) -> None:
        if not isinstance(asset_id, str) or not ASSET_ID.fullmatch(asset_id):
            raise AssetError(f"not an asset id: {asset_id!r}")
        self.id = asset_id
        self._source = source
        self._name = name
        self._count = count
        self._entries: dict[str, AssetEntry] | None = None
        if entries is not None:
            self._set(name, entries)

    @property
    def source(self) -> AssetSource | None:
        """Where its listing and files come from (a worker's connection, a client), if known."""
        return self._source

    @classmethod
    def from_listing(cls, data: dict[str, Any], source: AssetSource | None) -> Asset:
        asset_id = str(data["asset_id"])
        entries = [AssetEntry.from_json(e, source, asset_id) for e in data["entries"]]
        return cls(asset_id, source=source, name=data.get("name"), entries=entries)

    def _set(self, name: str | None, entries: list[AssetEntry]) -> None:
        self._name = name
        self._entries = {e.path: e for e in entries}
        self._count = len(entries)

    def _load(self) -> dict[str, AssetEntry]:
        if self._entries is None:
            source = _find_source(self._source)
            self._source = source
            data = source.asset_listing(self.id)
            self._set(data.get("name"), [AssetEntry.from_json(e, source, self.id) for e in data["entries"]])
        assert self._entries is not None
        return self._entries

    @property
    def name(self) -> str | None:
        if self._entries is None and self._name is None:
            self._load()
        return self._name

    @property
    def entries(self) -> dict[str, AssetEntry]:
        """The files, by entry path (in the order they were persisted)."""
        return dict(self._load())

    def __getitem__(self, path: str) -> AssetEntry:
        entries = self._load()
        if path not in entries:
            raise KeyError(f"asset {self.id} has no entry {path!r} (it has {_names(list(entries))})")
        return entries[path]

    def __contains__(self, path: object) -> bool:
        return path in self._load()

    def __iter__(self) -> Iterator[str]:
        return iter(self._load())

    def __len__(self) -> int:
        return self._count if self._count is not None else len(self._load())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Asset) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    def __repr__(self) -> str:
        label = f" {self._name!r}" if self._name else ""
        count = f", {self._count} files" if self._count is not None else ""
        return f"<Asset {self.id}{label}{count}>"

    def __reduce__(self) -> tuple[Any, ...]:
        return (Asset, (self.id,), {"_name": self._name, "_count": self._count})

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._source, self._entries = None, None
        self._name, self._count = state["_name"], state["_count"]

    def restore(
        self, *, match: str | None = None, at: str | os.PathLike[str] | None = None
    ) -> dict[str, Path]:
        """Write the files (those whose path matches the glob ``match``, if given) under ``at``
        (default: the current working directory); returns their absolute paths by entry path."""
        root = _folder(at)
        source = _find_source(self._source)
        restored: dict[str, Path] = {}
        for path, entry in self._load().items():
            if matches(path, match):
                target = inside(root, path)
                target.parent.mkdir(parents=True, exist_ok=True)
                source.copy_blob(entry.blob_key, entry.size, target)
                restored[path] = target
        source.restored(self.id)
        return restored

    def __coflux_reference__(self) -> tuple[str, str, dict[str, Any]]:
        count = len(self)  # first: an asset read from a value learns its name with its listing
        fields: dict[str, Any] = {"name": self._name, "entries": count}
        if self._entries is not None:
            fields["preview"] = {"text": preview_text(self._name, list(self._entries))}
        return ("asset", self.id, fields)


def preview_text(name: str | None, paths: list[str]) -> str:
    """``<asset NAME: 3 files: a.csv, b.png, c.txt>`` (at most five names shown)."""
    label = f" {name}" if name else ""
    noun = "file" if len(paths) == 1 else "files"
    return f"<asset{label}: {len(paths)} {noun}: {_names(paths)}>"[:1000]


def _names(paths: list[str]) -> str:
    shown = ", ".join(paths[:_PREVIEW_FILES])
    return shown + (", …" if len(paths) > _PREVIEW_FILES else "") if paths else "none"
