"""A project's store on either backend, opened as often as a test likes (a SQLite file under the
test's folder, or a PostgreSQL schema of its own), and dropping those schemas afterwards."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

from coflux.storage import SqlStore, schema_name


def unique_project() -> str:
    return "t" + uuid.uuid4().hex[:12]


class StoreFactory:
    """Opens a project's store on one backend, as often as a test likes: closing and opening again is
    how a test restarts the server. Remembers every project it opened so that PostgreSQL schemas can be
    dropped afterwards."""

    def __init__(self, backend: str, data_dir: Path, database_url: str | None) -> None:
        self.backend = backend
        self.data_dir = data_dir
        self.database_url = database_url
        self.project = unique_project()
        self.projects: set[str] = set()

    @contextmanager
    def __call__(self, project: str | None = None) -> Iterator[SqlStore]:
        name = project or self.project
        self.projects.add(name)
        store = SqlStore.open(name, self.data_dir, self.database_url)
        try:
            yield store
        finally:
            store.close()

    @contextmanager
    def connect(self, project: str | None = None) -> Iterator[sa.Connection]:
        """A connection of our own to a project's database, to look past the store."""
        name = project or self.project
        if self.database_url:
            engine = sa.create_engine(self.database_url)
            options = {"schema_translate_map": {None: schema_name(name)}}
        else:
            engine = sa.create_engine(f"sqlite:///{self.data_dir / 'projects' / f'{name}.db'}")
            options = {}
        try:
            with engine.connect() as conn:
                yield conn.execution_options(**options)
        finally:
            engine.dispose()


def drop_schemas(database_url: str, schemas: list[str]) -> None:
    engine = sa.create_engine(database_url)
    try:
        with engine.begin() as conn:
            for schema in schemas:
                conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        engine.dispose()
