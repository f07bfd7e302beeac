"""Opening a project's storage: a failed creation leaves nothing behind, and a database that can't be
opened is named with its project and cause (and left as it is)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa

from coflux.errors import StorageError, StorageFull
from coflux.storage import Batch, SqlStore, list_projects, schema_name
from tests.support.storage import StoreFactory, unique_project


def _fail_migrations(monkeypatch: pytest.MonkeyPatch, error: Exception) -> None:
    def migrate(self: SqlStore) -> None:
        raise error

    monkeypatch.setattr(SqlStore, "_migrate", migrate)


def test_a_file_that_is_not_a_database_is_named_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "projects" / "p.db"
    path.parent.mkdir()
    path.write_bytes(b"this is not a database, but someone's data: keep it" * 100)
    with pytest.raises(StorageError) as raised:
        SqlStore.open("p", tmp_path)
    assert str(raised.value) == f"project 'p': its database is not a SQLite database ({path})"
    assert not isinstance(raised.value, StorageFull)
    assert path.read_bytes().startswith(b"this is not a database")
    assert list_projects(tmp_path) == ["p"]


def test_a_creation_that_runs_out_of_space_leaves_no_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as patch:
        _fail_migrations(patch, sqlite3.OperationalError("database or disk is full"))
        with pytest.raises(StorageFull) as raised:
            SqlStore.open("p", tmp_path)
    assert str(raised.value).startswith("project 'p': no space left on the device holding its database (")
    assert list_projects(tmp_path) == []
    assert list((tmp_path / "projects").iterdir()) == []
    SqlStore.open("p", tmp_path).close()  # space is back: the project can be made
    assert list_projects(tmp_path) == ["p"]


def test_a_creation_a_crash_interrupted_is_not_a_project_and_is_made_again(tmp_path: Path) -> None:
    folder = tmp_path / "projects"
    folder.mkdir()
    (folder / "p.db.creating").write_bytes(b"half a database")
    (folder / "p.db.creating-wal").write_bytes(b"and its log")
    assert list_projects(tmp_path) == []
    store = SqlStore.open("p", tmp_path)
    try:
        assert store.workspaces() == []
    finally:
        store.close()
    assert sorted(p.name for p in folder.iterdir() if not p.name.endswith(("-wal", "-shm"))) == ["p.db"]


def test_an_existing_database_is_opened_in_place(tmp_path: Path) -> None:
    SqlStore.open("p", tmp_path).close()
    inode = (tmp_path / "projects" / "p.db").stat().st_ino
    SqlStore.open("p", tmp_path).close()
    assert (tmp_path / "projects" / "p.db").stat().st_ino == inode


@pytest.mark.parametrize(
    "store_factory", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_a_failed_schema_creation_is_dropped(
    store_factory: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = store_factory.database_url
    assert url is not None
    project = unique_project()
    store_factory.projects.add(project)  # dropped afterwards should the test fail
    with monkeypatch.context() as patch:
        _fail_migrations(patch, OSError(28, "No space left on device"))
        with pytest.raises(StorageFull, match=f"project '{project}': no space left"):
            SqlStore.open(project, store_factory.data_dir, url)
    assert project not in list_projects(store_factory.data_dir, url)
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            query = sa.text("SELECT 1 FROM information_schema.schemata WHERE schema_name = :s")
            assert conn.execute(query, {"s": schema_name(project)}).first() is None
    finally:
        engine.dispose()


class _FailingCommits(sqlite3.Connection):
    """A driver connection whose commits fail while ``failing`` is set (as a full disk fails them)."""

    failing = False

    def commit(self) -> None:
        if _FailingCommits.failing:
            raise sqlite3.OperationalError("database or disk is full")
        super().commit()


def _row(id_: int, name: str) -> dict[str, object]:
    return {"id": id_, "name": name, "base_id": None, "state": "active", "created_at": 1.0}


def test_after_a_failed_commit_the_store_reads_and_writes_again_without_the_failed_batch(
    tmp_path: Path,
) -> None:
    SqlStore.open("p", tmp_path).close()
    path = tmp_path / "projects" / "p.db"
    engine = sa.create_engine(
        f"sqlite:///{path}", poolclass=sa.pool.StaticPool, connect_args={"factory": _FailingCommits}
    )
    store = SqlStore(engine, None)
    try:
        _FailingCommits.failing = True
        with pytest.raises(StorageFull):
            store.apply(Batch(workspaces=[_row(1, "lost")]))
        _FailingCommits.failing = False
        assert store.workspaces() == []  # readable again, and the failed batch is gone
        store.apply(Batch(workspaces=[_row(1, "main")]))
        assert [w["name"] for w in store.workspaces()] == ["main"]
    finally:
        _FailingCommits.failing = False
        store.close()
    reopened = SqlStore.open("p", tmp_path)
    try:
        assert [w["name"] for w in reopened.workspaces()] == ["main"]
    finally:
        reopened.close()
