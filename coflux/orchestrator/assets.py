"""Assets: named collections of files that an execution persisted, each file's bytes a blob.

An asset is history: its row, its entries and each restoration of it are written once, through
the project's writer, and a request is answered only once they are durable. The server checks
what a worker sends (paths that stay inside the asset, blob keys, that every blob is in the store
with the size given) and never reads the files themselves.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Awaitable, Callable
from typing import Any, Final, NewType

from coflux.blobs import valid_key
from coflux.errors import BadRequest, NotFound
from coflux.models import ExecutionId, split_execution_id
from coflux.orchestrator.clock import Clock
from coflux.orchestrator.engine import Engine
from coflux.orchestrator.writer import Writer
from coflux.storage import SqlStore

AssetId = NewType("AssetId", str)
Entry = dict[str, Any]
BlobSizes = Callable[[list[str]], Awaitable[dict[str, int | None]]]
"""Blob key -> its size in the store (None: not there). It reads the blob store, so whoever
gives it runs it away from the event loop."""

MAX_ENTRIES: Final = 10_000
MAX_PATH: Final = 1024
MAX_PATH_BYTES: Final = 2048
"""In UTF-8: a path is part of an index key, which PostgreSQL caps at about 2,700 bytes."""
MAX_MEDIA_TYPE: Final = 255
MAX_NAME: Final = 1024
DEFAULT_MEDIA_TYPE: Final = "application/octet-stream"
_ASSET_ID = re.compile(r"A[0-9a-f]{24}")
_MEDIA_TYPE = re.compile(r"[\x21-\x7e][\x20-\x7e]*")  # printable ASCII: it becomes a header


def new_asset_id() -> AssetId:
    return AssetId("A" + secrets.token_hex(12))


def check_asset_id(value: object) -> AssetId:
    """``value`` if it is an asset id (``A`` and 24 lowercase hex digits); BadRequest otherwise."""
    if not isinstance(value, str) or _ASSET_ID.fullmatch(value) is None:
        raise BadRequest(f"not an asset id (A and 24 lowercase hex digits): {str(value)[:80]!r}")
    return AssetId(value)


def check_path(value: object) -> str:
    """``value`` if it is an entry's path: relative, "/"-separated, 1 to 1024 characters (2048
    bytes in UTF-8), with no empty, "." or ".." segment, no backslash and no NUL (so it can't
    leave its asset)."""
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_PATH:
        raise BadRequest(f"an asset path must be a string of 1 to {MAX_PATH} characters")
    if len(_utf8(value, "an asset path")) > MAX_PATH_BYTES:
        raise BadRequest(f"an asset path is at most {MAX_PATH_BYTES} bytes in UTF-8: {value[:100]!r}...")
    if "\\" in value or "\x00" in value:
        raise BadRequest(f"an asset path can't hold a backslash or a NUL: {value[:200]!r}")
    if value.startswith("/"):
        raise BadRequest(f"an asset path must be relative, not {value[:200]!r}")
    for segment in value.split("/"):
        if segment in ("", ".", ".."):
            which = f"a {segment!r}" if segment else "an empty"
            raise BadRequest(f"an asset path can't have {which} segment: {value[:200]!r}")
    return value


def _utf8(value: str, what: str) -> bytes:
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError as err:
        raise BadRequest(f"{what} must be valid Unicode text (it holds a lone surrogate)") from err


def check_entry(value: object) -> Entry:
    """A well-formed entry: path, blob_key, size, media_type (see :func:`check_path`)."""
    if not isinstance(value, dict):
        raise BadRequest("an asset entry must be an object with path, blob_key, size and media_type")
    path = check_path(value.get("path"))
    key = value.get("blob_key")
    if not valid_key(key):
        raise BadRequest(f"entry {path!r}: blob_key must be 64 lowercase hex digits, not {str(key)[:80]!r}")
    size = value.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size < 2**63:
        raise BadRequest(f"entry {path!r}: size must be an integer >= 0 (and below 2**63)")
    media_type = value.get("media_type", DEFAULT_MEDIA_TYPE) or DEFAULT_MEDIA_TYPE
    if (
        not isinstance(media_type, str)
        or len(media_type) > MAX_MEDIA_TYPE
        or not _MEDIA_TYPE.fullmatch(media_type)
    ):
        raise BadRequest(f"entry {path!r}: media_type must be printable ASCII of at most {MAX_MEDIA_TYPE}")
    return {"path": path, "blob_key": key, "size": size, "media_type": media_type}


def check_entries(value: object) -> list[Entry]:
    if not isinstance(value, list):
        raise BadRequest("field 'entries' must be a list")
    if len(value) > MAX_ENTRIES:
        raise BadRequest(f"an asset holds at most {MAX_ENTRIES} entries, not {len(value)}")
    entries = [check_entry(item) for item in value]
    seen: set[str] = set()
    for entry in entries:
        if entry["path"] in seen:
            raise BadRequest(f"path {entry['path']!r} appears twice in the asset")
        seen.add(entry["path"])
    return entries


def check_name(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_NAME:
        raise BadRequest(f"an asset's name must be null or a string of at most {MAX_NAME} characters")
    _utf8(value, "an asset's name")
    if "\x00" in value:
        raise BadRequest("an asset's name can't hold a NUL character")
    return value


async def check_blobs(entries: list[Entry], sizes: BlobSizes) -> None:
    """Every entry's blob is in the store, with the entry's size."""
    found = await sizes(sorted({e["blob_key"] for e in entries}))
    for entry in entries:
        stored = found.get(entry["blob_key"])
        if stored is None:
            raise BadRequest(f"blob {entry['blob_key']} is not in the store: upload it first")
        if stored != entry["size"]:
            raise BadRequest(
                f"entry {entry['path']!r} says {entry['size']} bytes, but blob {entry['blob_key']} "
                f"holds {stored}"
            )


def _public(entry: dict[str, Any]) -> Entry:
    return {k: entry[k] for k in ("path", "blob_key", "size", "media_type")}


class Assets:
    """A project's assets: persisted, read and restored through its orchestrator."""

    def __init__(
        self,
        writer: Writer,
        store: SqlStore,
        engine: Engine,
        clock: Clock,
        publish: Callable[[dict[str, Any]], None],
    ) -> None:
        """``publish``: how the project's event listeners hear of a new asset (once durable)."""
        self._writer = writer
        self._store = store
        self._engine = engine
        self._clock = clock
        self._publish = publish

    async def persist(self, execution_id: object, name: object, entries: object, sizes: BlobSizes) -> Entry:
        """Record an asset of ``execution_id`` (an execution of this project) once its entries and
        their blobs check out; answered once it is durable."""
        checked_name = check_name(name)
        checked = check_entries(entries)
        execution = self._execution(execution_id)
        await check_blobs(checked, sizes)
        asset_id = new_asset_id()
        created_at = self._clock.now()
        batch = self._writer.batch
        batch.assets.append(
            {"asset_id": asset_id, "execution_id": execution, "name": checked_name, "created_at": created_at}
        )
        batch.asset_entries.extend({"asset_id": asset_id, **entry} for entry in checked)
        await self._writer.durable()
        run_id, _, _ = split_execution_id(execution)
        self._publish({"type": "asset", "run_id": run_id, "execution_id": execution, "asset_id": asset_id})
        return {
            "asset_id": asset_id,
            "name": checked_name,
            "execution_id": execution,
            "created_at": created_at,
            "entries": checked,
        }

    async def get(self, asset_id: str) -> Entry:
        row = self._asset(asset_id)
        return {
            "asset_id": row["asset_id"],
            "name": row["name"],
            "execution_id": row["execution_id"],
            "created_at": row["created_at"],
            "entries": [_public(e) for e in self._store.asset_entries(row["asset_id"])],
            "restored_by": self._store.restorations(row["asset_id"]),
        }

    async def entry(self, asset_id: str, path: str) -> Entry:
        """One file of the asset: path, blob_key, size, media_type."""
        row = self._asset(asset_id)
        entry = self._store.asset_entry(row["asset_id"], check_path(path))
        if entry is None:
            raise NotFound(f"asset {asset_id} has no file {path!r}")
        return _public(entry)

    async def restored(self, asset_id: str, execution_id: object) -> None:
        """Record that ``execution_id`` restored the asset; answered once it is durable."""
        row = self._asset(asset_id)
        execution = self._execution(execution_id)
        self._writer.batch.asset_restorations.append(
            {"asset_id": row["asset_id"], "execution_id": execution, "restored_at": self._clock.now()}
        )
        await self._writer.durable()

    def _asset(self, asset_id: str) -> dict[str, Any]:
        row = self._store.asset(check_asset_id(asset_id))
        if row is None:
            raise NotFound(f"no asset {asset_id}")
        return row

    def _execution(self, value: object) -> ExecutionId:
        """``value`` if it names an execution of this project; BadRequest or NotFound otherwise."""
        if not isinstance(value, str):
            raise BadRequest("field 'execution_id' must be a string")
        try:
            _, step_id, _ = split_execution_id(value)
        except ValueError as err:
            raise BadRequest(str(err)) from err
        execution = ExecutionId(value)
        if execution in self._engine.executions:
            return execution
        if not any(r["execution_id"] == value for r in self._store.executions_of_step(step_id)):
            raise NotFound(f"no execution {value} in this project")
        return execution
