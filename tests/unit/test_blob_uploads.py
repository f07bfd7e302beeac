"""Blobs in chunks: an upload spooled to a temporary file and filed only if it matches its key,
reading a blob in chunks, its size; on a local folder and on another fsspec store."""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from pathlib import Path

import pytest

from coflux.blobs import STALE_UPLOAD, BlobStore, Upload
from coflux.errors import BadRequest, NotFound

DATA = bytes(range(256)) * 1000


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


@pytest.fixture(params=["local", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "local":
        return BlobStore(str(tmp_path / "blobs"))
    return BlobStore(f"memory://uploads-{uuid.uuid4().hex}")


def _upload(store: BlobStore, key: str, data: bytes, piece: int = 4096) -> Upload:
    upload = Upload(store, key)
    for start in range(0, len(data), piece):
        upload.write(data[start : start + piece])
    return upload


def test_an_upload_in_chunks_is_filed_under_its_key_and_read_back_in_chunks(store: BlobStore) -> None:
    key = hashlib.sha256(DATA).hexdigest()
    upload = _upload(store, key, DATA)
    assert store.size(key) is None
    upload.commit()
    assert upload.size == len(DATA) and store.size(key) == len(DATA)
    with store.open(key) as file:
        pieces = iter(lambda: file.read(1000), b"")
        assert b"".join(pieces) == DATA
    _upload(store, key, DATA).commit()  # the same blob again changes nothing
    assert store.get(key) == DATA


def test_an_upload_that_does_not_match_its_key_is_refused_and_leaves_nothing(
    store: BlobStore, tmp_path: Path
) -> None:
    key = hashlib.sha256(b"another body").hexdigest()
    upload = _upload(store, key, DATA)
    with pytest.raises(BadRequest, match="nothing was stored"):
        upload.commit()
    assert store.size(key) is None and not store.exists(key)
    assert _files(tmp_path) == []


def test_an_abandoned_upload_leaves_nothing_and_takes_no_more(store: BlobStore, tmp_path: Path) -> None:
    key = hashlib.sha256(DATA).hexdigest()
    upload = _upload(store, key, DATA[:1000])
    upload.discard()
    upload.discard()
    with pytest.raises(BadRequest, match="abandoned"):
        upload.write(b"more")
    assert _files(tmp_path) == [] and store.size(key) is None


def test_a_bad_key_is_refused_before_anything_is_written(store: BlobStore, tmp_path: Path) -> None:
    for key in ("abc", "A" * 64, "../" + "a" * 61):
        with pytest.raises(BadRequest, match="64 lowercase hex digits"):
            Upload(store, key)
        with pytest.raises(BadRequest):
            store.size(key)
    assert _files(tmp_path) == []


def test_a_missing_blob_cannot_be_opened(store: BlobStore) -> None:
    with pytest.raises(NotFound):
        store.open("0" * 64)


def test_a_local_upload_is_moved_in_not_copied(tmp_path: Path) -> None:
    store = BlobStore(str(tmp_path / "blobs"))
    key = hashlib.sha256(DATA).hexdigest()
    folder = store.spool_folder()
    assert folder is not None and Path(folder).parent == tmp_path / "blobs"
    source = Path(folder) / "finished"
    source.write_bytes(DATA)
    store.put_file(str(source), key)
    assert not source.exists()
    assert _files(tmp_path) == [tmp_path / "blobs" / key[:2] / key]


def test_uploads_a_crash_left_behind_are_deleted_once_stale(tmp_path: Path) -> None:
    incoming = tmp_path / "blobs" / ".incoming"
    incoming.mkdir(parents=True)
    stale, fresh = incoming / ".upload-old", incoming / ".upload-new"
    stale.write_bytes(b"half")
    fresh.write_bytes(b"in flight")
    long_ago = time.time() - STALE_UPLOAD - 60
    os.utime(stale, (long_ago, long_ago))
    BlobStore(str(tmp_path / "blobs")).spool_folder()
    assert _files(tmp_path) == [fresh]
