"""A Jupyter server (pytest-jupyter) with only this extension, its data in the test's folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.jupyter import server_config


@pytest.fixture
def jp_server_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    return server_config(tmp_path, monkeypatch)
