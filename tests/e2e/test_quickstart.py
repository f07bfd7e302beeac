"""The README's quick start stays true."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.support.harness import ROOT, environment

pytestmark = pytest.mark.e2e


def test_quickstart_runs_the_fanout_and_prints_its_tree() -> None:
    completed = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart.py"), "6"],
        env=environment(),
        capture_output=True,
        timeout=120,
        check=False,
        text=True,
    )
    assert completed.returncode == 0, completed.stderr
    assert re.search(r"fanout\(6\) = 55 in \d+ ms", completed.stdout)
    assert completed.stdout.count("examples.fanout:square") == 6
    assert "succeeded" in completed.stdout
