"""Where projects' databases live (one SQLite file per project under ``data_dir/projects``, or one
PostgreSQL schema per project), listing them, and opening one: created whole or not at all."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, Protocol, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from coflux.errors import StorageError
from coflux.storage.faults import opening_error, storage_error

log = logging.getLogger(__name__)


class _Store(Protocol):
    def close(self) -> None: ...


StoreT = TypeVar("StoreT", bound=_Store)

SCHEMA_PREFIX: Final = "coflux_"


def schema_name(project: str) -> str:
    """The PostgreSQL schema of a project: its name, prefixed, quoted by SQLAlchemy where needed."""
    return SCHEMA_PREFIX + project


def list_projects(data_dir: Path, database_url: str | None = None) -> list[str]:
    """Projects that have storage: SQLite files under ``data_dir``, or schemas in PostgreSQL."""
    if database_url:
        engine = sa.create_engine(database_url)
        try:
            with engine.connect() as conn:
                names = conn.execute(
                    sa.text(
                        "SELECT schema_name FROM information_schema.schemata"
                        " WHERE left(schema_name, :length) = :prefix"
                    ),
                    {"prefix": SCHEMA_PREFIX, "length": len(SCHEMA_PREFIX)},
                ).scalars()
                return sorted(n[len(SCHEMA_PREFIX) :] for n in names)
        except Exception as err:
            raise storage_error(f"listing projects failed: {err.__class__.__name__}: {err}", err) from err
        finally:
            engine.dispose()
    folder = data_dir / "projects"
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.glob("*.db"))


def open_project(
    project: str, data_dir: Path, database_url: str | None, make: Callable[[Engine, str | None], StoreT]
) -> StoreT:
    """``make(engine, schema)`` on the project's database (``make`` migrates it), which is created
    first if it doesn't exist: under a name no listing sees, then linked into place (SQLite), or
    dropped again if anything fails (PostgreSQL). Errors name the project and the cause."""
    if database_url:
        return _open_postgres(project, database_url, make)
    folder = data_dir / "projects"
    path = folder / f"{project}.db"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            _create_sqlite(path, make)
        return make(_sqlite_engine(path), None)
    except Exception as err:
        raise opening_error(project, str(path), err) from err


def _create_sqlite(path: Path, make: Callable[[Engine, str | None], _Store]) -> None:
    temporary = path.with_name(path.name + ".creating")
    files = [temporary, *(Path(f"{temporary}{suffix}") for suffix in ("-wal", "-shm", "-journal"))]
    for leftover in files:  # from a creation that a crash interrupted
        leftover.unlink(missing_ok=True)
    try:
        make(_sqlite_engine(temporary), None).close()
        if Path(f"{temporary}-wal").exists():  # closing writes the log back: what is left didn't fit
            raise StorageError(f"the new database's log could not be written back ({temporary})")
        try:
            os.link(temporary, path)  # never replaces a database made meanwhile
        except FileExistsError:
            return
        _fsync_folder(path.parent)
    finally:
        for leftover in files:
            leftover.unlink(missing_ok=True)


def _open_postgres(project: str, database_url: str, make: Callable[[Engine, str | None], StoreT]) -> StoreT:
    engine = sa.create_engine(database_url, pool_size=1, max_overflow=2)
    schema = schema_name(project)
    created = False
    try:
        with engine.begin() as conn:
            created = not _schema_exists(conn, schema)
            conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        return make(engine, schema)
    except Exception as err:
        if created:
            _remove_schema(engine, schema)
        engine.dispose()
        raise opening_error(project, f"schema {schema}", err) from err


def _remove_schema(engine: Engine, schema: str) -> None:
    """Drop a schema that a failed creation left behind (it holds nothing anyone saw)."""
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    except Exception:  # the creation's own error is what the caller needs; this one is logged
        log.exception("could not remove the schema %s that a failed creation left", schema)


def _sqlite_engine(path: Path) -> Engine:
    engine = sa.create_engine(f"sqlite:///{path}", poolclass=sa.pool.StaticPool)

    @sa.event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        # Small pages: each commit writes every page it touched to the WAL, and the history's rows
        # are small. Takes effect when the file is created; an existing file keeps its size.
        cursor.execute("PRAGMA page_size=1024")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.execute("PRAGMA foreign_keys=ON")  # as PostgreSQL enforces them
        cursor.close()

    return engine


def _schema_exists(conn: Connection, schema: str) -> bool:
    query = sa.text("SELECT 1 FROM information_schema.schemata WHERE schema_name = :schema")
    return conn.execute(query, {"schema": schema}).first() is not None


def _fsync_folder(folder: Path) -> None:
    """Make a new name in ``folder`` durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
