"""The storage tests run on every backend: a SQLite file under tmp_path, and a fresh PostgreSQL schema
per test (marked ``postgres``; needs COFLUX_TEST_PG_URL, see scripts/postgres)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from coflux.storage import schema_name
from tests.support.storage import StoreFactory, drop_schemas


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    if request.param == "sqlite":
        yield StoreFactory("sqlite", tmp_path, None)
        return
    url = os.environ["COFLUX_TEST_PG_URL"]
    factory = StoreFactory("postgres", tmp_path, url)
    try:
        yield factory
    finally:
        drop_schemas(url, [schema_name(p) for p in sorted(factory.projects)])
