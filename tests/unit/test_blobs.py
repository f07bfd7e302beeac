from __future__ import annotations

import errno
import hashlib
import os
import uuid
from pathlib import Path

import pytest

from coflux.blobs import BlobStore, valid_key
from coflux.errors import BadRequest, NotFound, StorageError, StorageFull


@pytest.fixture
def store(tmp_path: Path) -> BlobStore:
    return BlobStore(str(tmp_path / "blobs"))


def test_put_get_exists_on_a_folder(store: BlobStore, tmp_path: Path) -> None:
    data = b"hello blobs"
    key = store.put(data)
    assert key == hashlib.sha256(data).hexdigest()
    assert store.exists(key)
    assert store.get(key) == data
    assert (tmp_path / "blobs" / key[:2] / key).read_bytes() == data


def test_put_is_idempotent_and_leaves_no_temporary_files(store: BlobStore, tmp_path: Path) -> None:
    first = store.put(b"same")
    second = store.put(b"same")
    assert first == second
    files = [p for p in (tmp_path / "blobs").rglob("*") if p.is_file()]
    assert files == [tmp_path / "blobs" / first[:2] / first]


def test_empty_and_large_blobs(store: BlobStore) -> None:
    large = bytes(range(256)) * 10_000
    assert store.get(store.put(b"")) == b""
    assert store.get(store.put(large)) == large


def test_missing_blob_is_not_found(store: BlobStore) -> None:
    missing = hashlib.sha256(b"never stored").hexdigest()
    assert not store.exists(missing)
    with pytest.raises(NotFound):
        store.get(missing)


BAD_KEYS = [
    "../etc/passwd",
    "../../" + "a" * 58,
    "A" * 64,
    "a" * 63,
    "a" * 65,
    "a" * 63 + "/",
    "g" * 64,
    "",
    "a" * 64 + "\n",
]


@pytest.mark.parametrize("key", BAD_KEYS, ids=repr)
def test_bad_keys_are_refused(store: BlobStore, key: str) -> None:
    assert not valid_key(key)
    assert not BlobStore.valid_key(key)
    with pytest.raises(BadRequest):
        store.get(key)
    with pytest.raises(BadRequest):
        store.exists(key)


def test_valid_key() -> None:
    assert valid_key(hashlib.sha256(b"x").hexdigest())
    assert not valid_key(None)
    assert not valid_key(123)


def test_put_refuses_non_bytes(store: BlobStore) -> None:
    with pytest.raises(BadRequest):
        store.put("text")  # type: ignore[arg-type]


def test_fsspec_memory_url() -> None:
    store = BlobStore(f"memory://coflux-test-{uuid.uuid4().hex}")
    key = store.put(b"in memory")
    assert store.exists(key)
    assert store.get(key) == b"in memory"
    assert store.put(b"in memory") == key
    with pytest.raises(NotFound):
        store.get(hashlib.sha256(b"other").hexdigest())


def test_stores_with_different_roots_are_separate(tmp_path: Path) -> None:
    one = BlobStore(str(tmp_path / "one"))
    two = BlobStore(str(tmp_path / "two"))
    key = one.put(b"private")
    assert not two.exists(key)


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EACCES])
def test_a_failed_write_says_why_and_leaves_nothing(
    store: BlobStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    def refuse(source: str, target: str) -> None:
        raise OSError(code, os.strerror(code))

    with monkeypatch.context() as patch:
        patch.setattr(os, "replace", refuse)
        with pytest.raises(StorageError) as raised:
            store.put(b"a value too large to inline")
    full = code == errno.ENOSPC
    assert isinstance(raised.value, StorageFull) is full
    expected = "no space left on the server's blob store" if full else "the server's blob store failed"
    assert str(raised.value).startswith(expected)
    assert [p for p in (tmp_path / "blobs").rglob("*") if p.is_file()] == []
    key = store.put(b"a value too large to inline")  # the store goes on
    assert store.get(key) == b"a value too large to inline"
