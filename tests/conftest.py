"""Shared fixtures. PostgreSQL tests need COFLUX_TEST_PG_URL; in CI they must not be skipped."""

from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("COFLUX_TEST_PG_URL"):
        return
    if os.environ.get("CI"):
        raise pytest.UsageError("CI must run the PostgreSQL tests: set COFLUX_TEST_PG_URL")
    skip = pytest.mark.skip(reason="COFLUX_TEST_PG_URL is not set (export it from scripts/postgres)")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)
