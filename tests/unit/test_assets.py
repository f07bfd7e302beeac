"""Assets on the worker's side, without a server: which files ``cf.asset()`` takes (and which paths
it refuses), entry paths, matching, the values they travel as, and the disk cache of blobs."""

from __future__ import annotations

import hashlib
import os
import pickle
import threading
from pathlib import Path
from typing import Any

import pytest

import coflux as cf
from coflux import serialization
from coflux.assets import AssetError, check_path, matches, media_type, preview_text
from coflux.worker import assets as worker_assets
from coflux.worker.blobcache import BlobCache, parse_size
from coflux.worker.blobclient import BlobClient
from tests.support.worker_server import FakeServer

ASSET_ID = "A" + "0123456789abcdef01234567"


def files(root: Path, *names: str) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"content of {name}")


def collected(root: Path, entries: Any) -> dict[str, Path]:
    pairs = worker_assets._collect(root, entries)
    return {path: item for path, item in pairs if isinstance(item, Path)}


# -- entry paths -------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["a.csv", "data/b.png", "x" * 1024, "naïve é.txt"])
def test_valid_entry_paths(path: str) -> None:
    assert check_path(path) == path


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("", "1 to 1024"),
        ("x" * 1025, "1 to 1024"),
        ("/etc/passwd", "relative"),
        ("../x", "'..'"),
        ("a/../b", "'..'"),
        ("a//b", "empty"),
        ("./a", "'.'"),
        ("a/", "empty"),
        ("a\\b", "backslash"),
        ("a\0b", "NUL"),
    ],
)
def test_invalid_entry_paths_say_why(path: str, why: str) -> None:
    with pytest.raises(AssetError, match=why):
        check_path(path)


def test_media_types_come_from_the_name() -> None:
    assert media_type("x.csv") == "text/csv"
    assert media_type("plots/a.png") == "image/png"
    assert media_type("README") == "application/octet-stream"


@pytest.mark.parametrize(
    ("path", "pattern", "expected"),
    [
        ("x.csv", "*.csv", True),
        ("data/x.csv", "*.csv", True),
        ("data/x.csv", "data/*.csv", True),
        ("data/deep/x.csv", "data/**", True),
        ("x.png", "*.csv", False),
        ("other/x.csv", "data/*.csv", False),
        ("anything", None, True),
    ],
)
def test_match_globs(path: str, pattern: str | None, expected: bool) -> None:
    assert matches(path, pattern) is expected


# -- what cf.asset() collects ------------------------------------------------------------------------


def test_no_argument_takes_every_file_under_the_folder(tmp_path: Path) -> None:
    files(tmp_path, "b.csv", "a.png", "plots/c.png", "plots/deep/d.txt")
    assert list(collected(tmp_path, None)) == ["a.png", "b.csv", "plots/c.png", "plots/deep/d.txt"]


def test_a_path_a_folder_and_a_list(tmp_path: Path) -> None:
    files(tmp_path, "a.csv", "plots/c.png", "plots/d.png", "other.txt")
    assert collected(tmp_path, "a.csv") == {"a.csv": tmp_path / "a.csv"}
    assert list(collected(tmp_path, "plots")) == ["plots/c.png", "plots/d.png"]
    assert list(collected(tmp_path, ["a.csv", Path("plots/d.png")])) == ["a.csv", "plots/d.png"]
    assert list(collected(tmp_path, [str(tmp_path / "other.txt")])) == ["other.txt"]  # absolute inside


def test_the_dict_form_names_entries_and_composes_other_assets_entries(tmp_path: Path) -> None:
    files(tmp_path, "raw/a.csv", "plots/c.png")
    reused = cf.AssetEntry("old/x.bin", "f" * 64, 12, {"media_type": "application/octet-stream"})
    pairs = dict(
        worker_assets._collect(tmp_path, {"data.csv": "raw/a.csv", "figs": "plots", "x.bin": reused})
    )
    assert pairs == {
        "data.csv": tmp_path / "raw/a.csv",
        "figs/c.png": tmp_path / "plots/c.png",
        "x.bin": reused,
    }
    with pytest.raises(AssetError, match=r"'\.\.'"):
        worker_assets._collect(tmp_path, {"../out.csv": "raw/a.csv"})


def test_a_file_given_twice_is_refused(tmp_path: Path) -> None:
    files(tmp_path, "a.csv")
    with pytest.raises(AssetError, match="given twice"):
        worker_assets._collect(tmp_path, ["a.csv", "./a.csv"])


@pytest.mark.parametrize("given", ["../secret.txt", "sub/../../secret.txt"])
def test_a_relative_path_leaving_the_folder_is_refused(tmp_path: Path, given: str) -> None:
    root = tmp_path / "work"
    files(root, "sub/a.csv")
    files(tmp_path, "secret.txt")
    with pytest.raises(AssetError, match="outside the folder it is persisted from"):
        worker_assets._collect(root, given)


def test_an_absolute_path_outside_the_folder_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "work"
    files(root, "a.csv")
    with pytest.raises(AssetError, match=r"'/etc/passwd' is outside"):
        worker_assets._collect(root, "/etc/passwd")
    with pytest.raises(AssetError, match="outside"):
        worker_assets._collect(root, {"p": "/etc/passwd"})


def test_a_symlink_pointing_outside_is_refused_also_when_walking(tmp_path: Path) -> None:
    root = tmp_path / "work"
    files(root, "a.csv")
    files(tmp_path, "secret.txt")
    (root / "link.txt").symlink_to(tmp_path / "secret.txt")
    with pytest.raises(AssetError, match=r"symlink to .*secret\.txt"):
        worker_assets._collect(root, "link.txt")
    with pytest.raises(AssetError, match="symlink"):
        worker_assets._collect(root, None)
    (root / "link.txt").unlink()
    (root / "inner.txt").symlink_to(root / "a.csv")  # inside: fine
    assert collected(root, "inner.txt") == {"inner.txt": root / "inner.txt"}


def test_a_missing_path_is_refused(tmp_path: Path) -> None:
    with pytest.raises(AssetError, match=r"no such file or folder: 'nope\.csv'"):
        worker_assets._collect(tmp_path, "nope.csv")


def test_cf_asset_outside_an_execution_says_so() -> None:
    with pytest.raises(cf.CofluxError, match="inside a task or workflow"):
        cf.asset()


def test_file_digest_reads_in_chunks_and_matches_sha256(tmp_path: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    (tmp_path / "big.bin").write_bytes(data)
    assert worker_assets.file_digest(tmp_path / "big.bin") == (hashlib.sha256(data).hexdigest(), len(data))


# -- assets as values --------------------------------------------------------------------------------


def test_an_asset_travels_as_its_reference_with_name_count_and_file_list() -> None:
    entries = [cf.AssetEntry(f"f{i}.csv", "a" * 64, i, {"media_type": "text/csv"}) for i in range(7)]
    asset = cf.Asset(ASSET_ID, name="tables", entries=entries)
    data = serialization.serialize({"out": asset}, lambda raw: "")
    assert data == {
        "out": {
            "$c": "asset",
            "asset_id": ASSET_ID,
            "name": "tables",
            "entries": 7,
            "preview": {"text": "<asset tables: 7 files: f0.csv, f1.csv, f2.csv, f3.csv, f4.csv, …>"},
        }
    }
    assert len(asset) == 7 and asset["f3.csv"].size == 3 and "f9.csv" not in asset
    with pytest.raises(KeyError, match=r"has no entry 'f9\.csv'"):
        asset["f9.csv"]


def test_a_bad_asset_id_is_refused() -> None:
    with pytest.raises(AssetError, match="not an asset id"):
        cf.Asset("A123")


def test_an_asset_without_a_server_says_how_to_get_one() -> None:
    asset = pickle.loads(pickle.dumps(cf.Asset(ASSET_ID, name="n", entries=[])))
    assert asset == cf.Asset(ASSET_ID) and asset.name == "n"
    with pytest.raises(AssetError, match=r"cf\.Client"):
        asset.restore()
    entry = cf.AssetEntry("x.csv", "b" * 64, 1, {"media_type": "text/csv"})
    assert pickle.loads(pickle.dumps(entry)) == entry
    with pytest.raises(AssetError, match="not bound"):
        entry.restore()


def test_preview_text_of_one_file_and_of_none() -> None:
    assert preview_text(None, ["a.csv"]) == "<asset: 1 file: a.csv>"
    assert preview_text("empty", []) == "<asset empty: 0 files: none>"


# -- the blob cache ----------------------------------------------------------------------------------


def blob(content: bytes) -> tuple[str, bytes]:
    return hashlib.sha256(content).hexdigest(), content


def writer(content: bytes, fetched: list[bytes]) -> Any:
    def fetch(path: Path) -> None:
        fetched.append(content)
        path.write_bytes(content)

    return fetch


def test_the_cache_fetches_each_blob_once_and_evicts_the_least_recently_used(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path / "cache", limit=250)
    fetched: list[bytes] = []
    blobs = [blob(bytes([i]) * 100) for i in range(3)]
    for key, content in blobs[:2]:
        with cache.open(key, writer(content, fetched)) as path:
            assert path.read_bytes() == content
    with cache.open(blobs[0][0], writer(blobs[0][1], fetched)):  # a hit: now the most recent
        pass
    assert len(fetched) == 2
    with cache.open(blobs[2][0], writer(blobs[2][1], fetched)):
        pass
    assert cache.used == 200  # the third would pass 250 bytes: the least recently used one went
    assert blobs[1][0] not in cache and blobs[0][0] in cache and blobs[2][0] in cache
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == sorted([blobs[0][0], blobs[2][0]])
    assert BlobCache(tmp_path / "cache", limit=250).used == 200  # a new process adopts the files


def test_a_blob_another_process_dropped_is_fetched_again(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path / "cache")
    key, content = blob(b"dropped")
    fetched: list[bytes] = []
    with cache.open(key, writer(content, fetched)):
        pass
    (tmp_path / "cache" / key).unlink()  # another worker process evicted it
    with cache.open(key, writer(content, fetched)) as path:
        assert path.read_bytes() == content
    assert len(fetched) == 2


def test_a_blob_larger_than_the_cache_is_readable_while_pinned(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path / "cache", limit=10)
    key, content = blob(b"x" * 100)
    with cache.open(key, writer(content, [])) as path:
        assert path.read_bytes() == content
    assert cache.used == 0 and not (tmp_path / "cache" / key).exists()


def test_concurrent_readers_fetch_a_blob_once(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path / "cache")
    key, content = blob(b"shared" * 1000)
    fetched: list[bytes] = []
    results: list[bytes] = []

    def read() -> None:
        with cache.open(key, writer(content, fetched)) as path:
            results.append(path.read_bytes())

    threads = [threading.Thread(target=read) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert fetched == [content] and results == [content] * 8


@pytest.mark.parametrize(
    ("text", "size"),
    [("1024", 1024), ("512M", 512 * 1024**2), ("2g", 2 * 1024**3), ("1.5GiB", 3 * 1024**3 // 2)],
)
def test_cache_sizes(text: str, size: int) -> None:
    assert parse_size(text) == size


def test_a_bad_cache_size_is_refused() -> None:
    with pytest.raises(cf.CofluxError, match="COFLUX_BLOB_CACHE_SIZE"):
        parse_size("lots")


# -- blob transfer -----------------------------------------------------------------------------------


def test_blobs_stream_to_and_from_files_and_a_corrupted_download_leaves_nothing(
    server: FakeServer, tmp_path: Path
) -> None:
    client = BlobClient(server.url, "proj", "T")
    content = os.urandom(2_500_000)
    key = hashlib.sha256(content).hexdigest()
    (tmp_path / "up.bin").write_bytes(content)
    assert not client.has(key)
    client.put_file(tmp_path / "up.bin", key, len(content))
    assert server.blobs[key] == content and client.has(key)
    client.download(key, tmp_path / "down.bin")
    assert (tmp_path / "down.bin").read_bytes() == content

    wrong = hashlib.sha256(b"other").hexdigest()
    server.blobs[wrong] = b"not what the key says"
    with pytest.raises(cf.RequestError, match="arrived corrupted"):
        client.download(wrong, tmp_path / "bad.bin")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["down.bin", "up.bin"]


class MemorySource:
    """Blobs from a dict: what Asset.restore asks of a source, without a server."""

    def __init__(self, blobs: dict[str, bytes]) -> None:
        self.blobs = blobs
        self.restorations: list[str] = []

    def asset_listing(self, asset_id: str) -> dict[str, Any]:
        raise AssertionError("the listing is known")

    def copy_blob(self, key: str, size: int, target: Path) -> None:
        target.write_bytes(self.blobs[key])

    def restored(self, asset_id: str) -> None:
        self.restorations.append(asset_id)


def listed(source: MemorySource, paths: dict[str, bytes]) -> cf.Asset:
    entries = []
    for path, content in paths.items():
        key = hashlib.sha256(content).hexdigest()
        source.blobs[key] = content
        entries.append({"path": path, "blob_key": key, "size": len(content), "media_type": media_type(path)})
    return cf.Asset.from_listing({"asset_id": ASSET_ID, "name": None, "entries": entries}, source)


def test_restore_writes_matching_files_under_a_folder_and_returns_absolute_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    source = MemorySource({})
    asset = listed(source, {"a.csv": b"1,2", "plots/b.png": b"png", "deep/c.csv": b"3"})
    restored = asset.restore(match="*.csv", at="out")
    assert restored == {
        "a.csv": tmp_path / "out" / "a.csv",
        "deep/c.csv": tmp_path / "out" / "deep" / "c.csv",
    }
    assert restored["deep/c.csv"].read_bytes() == b"3" and not (tmp_path / "out" / "plots").exists()
    assert asset["plots/b.png"].restore() == tmp_path / "plots" / "b.png"
    assert source.restorations == [ASSET_ID, ASSET_ID]


def test_restore_refuses_an_entry_path_that_would_leave_the_folder(tmp_path: Path) -> None:
    source = MemorySource({})
    asset = listed(source, {"../escaped.txt": b"x"})
    with pytest.raises(AssetError, match=r"'\.\.'"):
        asset.restore(at=tmp_path / "out")
    assert not (tmp_path / "escaped.txt").exists()
