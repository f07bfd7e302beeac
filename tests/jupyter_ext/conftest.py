"""A Jupyter server (pytest-jupyter) with only this extension, its data in the test's folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def jp_server_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    # The extension publishes these for its kernels; restore the test process's own afterwards.
    for name in ("COFLUX_URL", "COFLUX_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return {
        "ServerApp": {"jpserver_extensions": {"jupyter_ext": True}},
        "Coflux": {"data_dir": str(tmp_path / "coflux-data")},
    }
