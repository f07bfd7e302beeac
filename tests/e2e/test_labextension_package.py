"""The JupyterLab extension ships inside the Python package: the set-up command leaves it enabled in
JupyterLab, and a wheel of the project carries it prebuilt (users never run npm)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.support.harness import ROOT, environment

pytestmark = pytest.mark.e2e

BIN = Path(sys.executable).parent
SHARE = "share/jupyter/labextensions/jupyter-coflux"


def test_jupyterlab_lists_the_extension_enabled() -> None:
    listed = subprocess.run(
        [str(BIN / "jupyter"), "labextension", "list"],
        env=environment(),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    output = re.sub(r"\x1b\[[0-9;]*m", "", listed.stdout + listed.stderr)  # no colours
    assert re.search(r"jupyter-coflux v0\.1\.0 enabled\s+OK", output), output


def test_the_wheel_carries_the_prebuilt_extension_and_its_configuration(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(ROOT),
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
        ],
        env=environment(),
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    (wheel,) = tmp_path.glob("jupyter_coflux-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        data = next(n.split("/data/")[0] + "/data/" for n in names if "/data/" in n)
        package = json.loads(archive.read(f"{data}{SHARE}/package.json"))
        install = json.loads(archive.read(f"{data}{SHARE}/install.json"))
        server_config = json.loads(
            archive.read(f"{data}etc/jupyter/jupyter_server_config.d/jupyter_ext.json")
        )
    assert package["name"] == "jupyter-coflux"
    assert package["jupyterlab"]["_build"]["load"].startswith("static/remoteEntry.")
    assert f"{data}{SHARE}/{package['jupyterlab']['_build']['load']}" in names
    assert install["packageName"] == "jupyter-coflux"
    assert server_config["ServerApp"]["jpserver_extensions"] == {"jupyter_ext": True}
    # Only the built files: no TypeScript sources or node_modules in the wheel.
    assert not [n for n in names if "node_modules" in n or n.endswith(".ts")]
